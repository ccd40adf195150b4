import Foundation

/// Overlap and surface-distance metrics of one binary prediction against one binary reference,
/// following `medpy.metric.binary` (docs/methods.md, section 3).
///
/// Definitions (A = prediction, B = reference, distances in millimetres using the voxel spacing):
/// - `dice` = 2|A∩B| / (|A| + |B|), `jaccard` = |A∩B| / |A∪B|.
/// - Surface voxels of a mask: the mask minus its binary erosion by the 6-connected structuring
///   element, with everything outside the volume counted as background (so object voxels on the
///   volume border are surface voxels).
/// - Surface distances: the exact Euclidean distance (with anisotropic spacing) from each surface
///   voxel of one mask to the nearest surface voxel of the other, in both directions.
/// - `hd95`: 95th percentile (numpy's default linear interpolation) of the pooled distances of both
///   directions (`medpy.metric.binary.hd95`).
/// - `hd`: maximum of the pooled distances (`medpy.metric.binary.hd`).
/// - `asd`: mean distance from the prediction surface to the reference surface
///   (`medpy.metric.binary.asd(prediction, reference)`).
/// - `assd`: mean of the pooled distances of both directions, i.e. the sum of all distances of both
///   directions divided by the number of surface voxels of both masks. This is
///   `medpy.metric.binary.assd` as of medpy 0.5 (medpy 0.4 averaged the two directed means instead).
///
/// Edge cases:
/// - Both masks empty: `dice` = `jaccard` = 1 and every distance is 0.
/// - Exactly one mask empty: `dice` = `jaccard` = 0 and every distance is `nil` ("missing": never
///   NaN and never 0). `predictionEmpty` / `referenceEmpty` say which; summaries count such cases
///   (see `ClassSummary`).
/// - Otherwise every field is a finite number.
///
/// JSON: `{"dice":…, "jaccard":…, "hd95":…, "hd":…, "asd":…, "assd":…,
/// "prediction_empty":…, "reference_empty":…}`; missing distances are encoded as `null`.
public struct BinaryMetrics: Codable, Equatable, Sendable {
    /// Dice coefficient 2|A∩B| / (|A| + |B|); 1 when both masks are empty.
    public var dice: Double
    /// Jaccard index |A∩B| / |A∪B|; 1 when both masks are empty.
    public var jaccard: Double
    /// 95th percentile of the pooled symmetric surface distances (mm); `nil` when exactly one mask is empty.
    public var hd95: Double?
    /// Hausdorff distance: maximum of the pooled symmetric surface distances (mm); `nil` when exactly one mask is empty.
    public var hd: Double?
    /// Mean distance from the prediction surface to the reference surface (mm); `nil` when exactly one mask is empty.
    public var asd: Double?
    /// Mean of the pooled surface distances of both directions (mm); `nil` when exactly one mask is empty.
    public var assd: Double?
    /// The prediction mask has no foreground voxel.
    public var predictionEmpty: Bool
    /// The reference mask has no foreground voxel.
    public var referenceEmpty: Bool

    public init(dice: Double, jaccard: Double, hd95: Double?, hd: Double?, asd: Double?, assd: Double?,
                predictionEmpty: Bool, referenceEmpty: Bool) {
        self.dice = dice
        self.jaccard = jaccard
        self.hd95 = hd95
        self.hd = hd
        self.asd = asd
        self.assd = assd
        self.predictionEmpty = predictionEmpty
        self.referenceEmpty = referenceEmpty
    }

    /// True when exactly one of the two masks is empty, so that the distances are missing.
    public var distancesMissing: Bool { predictionEmpty != referenceEmpty }

    enum CodingKeys: String, CodingKey {
        case dice, jaccard, hd95, hd, asd, assd
        case predictionEmpty = "prediction_empty"
        case referenceEmpty = "reference_empty"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dice = try c.decode(Double.self, forKey: .dice)
        jaccard = try c.decode(Double.self, forKey: .jaccard)
        hd95 = try c.decodeIfPresent(Double.self, forKey: .hd95)
        hd = try c.decodeIfPresent(Double.self, forKey: .hd)
        asd = try c.decodeIfPresent(Double.self, forKey: .asd)
        assd = try c.decodeIfPresent(Double.self, forKey: .assd)
        predictionEmpty = try c.decodeIfPresent(Bool.self, forKey: .predictionEmpty) ?? false
        referenceEmpty = try c.decodeIfPresent(Bool.self, forKey: .referenceEmpty) ?? false
    }

    /// Encodes every key; missing distances are written as an explicit `null`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dice, forKey: .dice)
        try c.encode(jaccard, forKey: .jaccard)
        try c.encodeOptional(hd95, forKey: .hd95)
        try c.encodeOptional(hd, forKey: .hd)
        try c.encodeOptional(asd, forKey: .asd)
        try c.encodeOptional(assd, forKey: .assd)
        try c.encode(predictionEmpty, forKey: .predictionEmpty)
        try c.encode(referenceEmpty, forKey: .referenceEmpty)
    }
}

extension KeyedEncodingContainer {
    /// Encodes `value`, or an explicit `null` when it is `nil` (synthesised Codable would omit the key).
    mutating func encodeOptional<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}
