import Foundation

/// The volumes of one case as read from disk: one entry per channel of the dataset (nil = the
/// modality was not acquired for this case) and the label map, if any, on the grid of the reference
/// channel (the first present channel, channel 0 in paired data).
public struct CaseVolumes: Sendable {
    public var name: String
    public var channels: [Volume?]
    public var label: Volume?

    public init(name: String, channels: [Volume?], label: Volume? = nil) {
        self.name = name
        self.channels = channels
        self.label = label
    }
}

/// A case on the network's grid: every channel (absent ones as zeros) and the label share one grid
/// (RAS orientation, cropped, at the plan's spacing).
public struct PreprocessedCase: Sendable {
    public var name: String
    /// One volume per dataset channel, all of one shape and affine.
    public var channels: [Volume]
    /// Whether channel m was acquired (false: `channels[m]` is zeros).
    public var present: [Bool]
    public var label: Volume?
    /// What `PreprocessingPlan.restore` needs to take a prediction back to the input's geometry.
    public var record: RestoreRecord

    public init(name: String, channels: [Volume], present: [Bool], label: Volume?, record: RestoreRecord) {
        self.name = name; self.channels = channels; self.present = present; self.label = label; self.record = record
    }
}

/// Everything needed to bring a volume on the preprocessed grid back to the input's reference grid.
/// Steps undone, in reverse order: reorientation (`orientation`) -> crop (`cropBox`) -> resampling
/// (`cropBox.shape` -> `preprocessedShape`).
public struct RestoreRecord: Codable, Sendable, Equatable {
    public var caseName: String
    /// The channel whose grid the case was preprocessed on and is restored to: the first present one.
    public var referenceChannel: Int
    /// The reference channel's grid as read (shape, affine, spacing as in the file).
    public var originalShape: [Int]
    public var originalAffine: Affine
    public var originalSpacing: [Double]
    /// Original voxel order -> reoriented (RAS) voxel order; identity when reorientation is off.
    public var orientation: AxisTransform
    /// The crop box in the reoriented grid; its shape is the shape before resampling.
    public var cropBox: BoundingBox
    /// The preprocessed grid.
    public var preprocessedShape: [Int]
    public var preprocessedAffine: Affine
    public var preprocessedSpacing: [Double]

    public init(caseName: String, referenceChannel: Int, originalShape: [Int], originalAffine: Affine, originalSpacing: [Double],
                orientation: AxisTransform, cropBox: BoundingBox, preprocessedShape: [Int], preprocessedAffine: Affine,
                preprocessedSpacing: [Double]) {
        self.caseName = caseName; self.referenceChannel = referenceChannel
        self.originalShape = originalShape; self.originalAffine = originalAffine; self.originalSpacing = originalSpacing
        self.orientation = orientation; self.cropBox = cropBox
        self.preprocessedShape = preprocessedShape; self.preprocessedAffine = preprocessedAffine
        self.preprocessedSpacing = preprocessedSpacing
    }

    /// Shape of the reoriented, uncropped grid.
    public var reorientedShape: [Int] { orientation.outputShape }
    /// Shape after cropping, before resampling.
    public var croppedShape: [Int] { cropBox.shape }
}

/// nnU-Net-style preprocessing, fitted on a dataset (`make`) and applied per case (`apply`):
///
/// Spacings are taken from the affines (column norms), which is what the file's geometry says even
/// when pixdim disagrees; restored volumes get the file's own `spacing` back.
///
/// 1. Reference grid: the first present channel (channel 0 unless absent, as in unpaired CT-only
///    or MR-only cases). Every present channel is checked for NaN/infinite voxels.
/// 2. Reorientation of the reference to the closest RAS orientation (exact axis permutation/flips).
/// 3. Other present channels onto the reference grid through the affines (trilinear, 0 outside) when
///    `resampleChannelsToFirst`; a channel already on the reference grid (same shape, affine within
///    1e-3 mm) is copied exactly. A channel of the reference's shape whose world box does not
///    overlap the reference's is taken as voxel-aligned (its affine is unusable); of another shape,
///    it is an error. With `resampleChannelsToFirst` off, channels must have the reference's shape
///    and are taken as voxel-aligned. The label follows the same rules (nearest neighbour).
/// 4. Crop to the bounding box of voxels where any present channel is non-zero.
/// 5. Intensity normalisation per channel (`normalization`); the mask of `.zscore(nonZeroOnly:
///    true)` is the non-zero region of the case (any present channel non-zero).
/// 6. Resampling to `targetSpacing` (trilinear images, nearest labels; see `Volume.resampled(toSpacing:)`:
///    the world box is kept, so the final spacing is within half a voxel of the target per axis).
/// 7. Absent channels: zeros on the final grid, `present[m] = false`.
public struct PreprocessingPlan: Codable, Sendable, Equatable {
    /// Median spacing (after reorientation) of the cases `make` saw, per axis i, j, k.
    public var targetSpacing: [Double]
    /// One scheme per channel.
    public var normalization: [ChannelNormalization]
    /// Resample every channel onto the reference channel's grid through the affines.
    public var resampleChannelsToFirst: Bool
    /// Reorient to the closest RAS orientation.
    public var reorientToRAS: Bool
    /// Crop to the non-zero bounding box.
    public var cropToNonZero: Bool
    /// The dataset's channel names (for messages; may be empty).
    public var channelNames: [String]

    public init(targetSpacing: [Double], normalization: [ChannelNormalization], resampleChannelsToFirst: Bool = true,
                reorientToRAS: Bool = true, cropToNonZero: Bool = true, channelNames: [String] = []) {
        self.targetSpacing = targetSpacing
        self.normalization = normalization
        self.resampleChannelsToFirst = resampleChannelsToFirst
        self.reorientToRAS = reorientToRAS
        self.cropToNonZero = cropToNonZero
        self.channelNames = channelNames
    }

    enum CodingKeys: String, CodingKey {
        case targetSpacing, normalization, resampleChannelsToFirst, reorientToRAS, cropToNonZero, channelNames
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        targetSpacing = try c.decode([Double].self, forKey: .targetSpacing)
        normalization = try c.decode([ChannelNormalization].self, forKey: .normalization)
        resampleChannelsToFirst = try c.decodeIfPresent(Bool.self, forKey: .resampleChannelsToFirst) ?? true
        reorientToRAS = try c.decodeIfPresent(Bool.self, forKey: .reorientToRAS) ?? true
        cropToNonZero = try c.decodeIfPresent(Bool.self, forKey: .cropToNonZero) ?? true
        channelNames = try c.decodeIfPresent([String].self, forKey: .channelNames) ?? []
    }

    /// At most this many foreground voxels per case and CT channel enter the CT statistics (an even
    /// stride through the foreground, deterministic).
    public static let ctSamplesPerCase = 100_000

    /// The statistics pass (nnU-Net's fingerprint + plan): target spacing = per-axis median of the
    /// reference spacings after reorientation; CT channels (name "CT", any case) get clip bounds =
    /// foreground 0.5/99.5 percentiles and mean/std of the foreground of the labelled cases (label > 0
    /// on the reference grid, after channel alignment); other channels per-image z-score, restricted
    /// to the non-zero region when cropping to it shrinks the median case below 3/4 of its size
    /// (nnU-Net's rule); "noNorm" channels are left alone.
    public static func make(cases: [CaseVolumes], channelNames: [String], resampleChannelsToFirst: Bool = true,
                            reorientToRAS: Bool = true, cropToNonZero: Bool = true) throws -> PreprocessingPlan {
        guard !channelNames.isEmpty else {
            throw PreprocessingError(field: "channel_names", problem: "the dataset declares no channel")
        }
        guard !cases.isEmpty else {
            throw PreprocessingError(field: "cases", problem: "no case to compute preprocessing statistics from")
        }
        let schemes = channelNames.map(ChannelNormalization.scheme(forChannelName:))
        // A provisional plan for the geometric steps.
        var plan = PreprocessingPlan(targetSpacing: [1, 1, 1], normalization: Array(repeating: .none, count: channelNames.count),
                                     resampleChannelsToFirst: resampleChannelsToFirst, reorientToRAS: reorientToRAS,
                                     cropToNonZero: cropToNonZero, channelNames: channelNames)
        var spacings: [[Double]] = []
        var relativeSizes: [Double] = []
        var foreground = [[Float]](repeating: [], count: channelNames.count)
        for c in cases {
            let aligned = try plan.align(c)
            spacings.append(aligned.spacing)
            let present = aligned.channels.compactMap { $0 }
            let box = try withPreprocessingContext(caseName: c.name, channel: nil) { try Cropping.nonZeroBox(present) }
            let total = Double(aligned.shape.reduce(1, *))
            relativeSizes.append(Double(box?.count ?? 0) / total)
            guard let label = aligned.label else { continue }
            let fg = label.voxels.indices.filter { label.voxels[$0] > 0 }
            if fg.isEmpty { continue }
            let stride = Swift.max(1, (fg.count + ctSamplesPerCase - 1) / ctSamplesPerCase)
            for m in channelNames.indices where schemes[m] == .ct {
                guard let v = aligned.channels[m] else { continue }
                for n in Swift.stride(from: 0, to: fg.count, by: stride) { foreground[m].append(v.voxels[fg[n]]) }
            }
        }
        plan.targetSpacing = (0..<3).map { a in median(spacings.map { $0[a] }) }
        let useMask = median(relativeSizes) < 0.75
        plan.normalization = try channelNames.indices.map { m in
            switch schemes[m] {
            case .none: return .none
            case .zscore: return .zscore(nonZeroOnly: useMask)
            case .ct:
                guard !foreground[m].isEmpty else {
                    throw PreprocessingError(channel: m, channelName: channelNames[m], field: "normalization",
                                             problem: "CT statistics need labelled cases with this channel present and a non-empty foreground (label > 0); none of the \(cases.count) cases has one")
                }
                return try withPreprocessingContext(caseName: nil, channel: m, channelName: channelNames[m]) {
                    try ChannelNormalization.ct(foregroundIntensities: foreground[m])
                }
            }
        }
        return plan
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        if s.isEmpty { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }

    func name(_ m: Int) -> String? { m >= 0 && m < channelNames.count ? channelNames[m] : nil }

    /// Channels (present ones) and label on the reoriented reference grid.
    struct Aligned {
        var reference: Int
        var original: Volume            // the reference channel as given
        var orientation: AxisTransform
        var channels: [Volume?]
        var label: Volume?
        var shape: [Int]
        var spacing: [Double]
    }

    func align(_ c: CaseVolumes) throws -> Aligned {
        guard c.channels.count == normalization.count else {
            throw PreprocessingError(caseName: c.name, field: "channels",
                                     problem: "the case has \(c.channels.count) channel(s), the plan \(normalization.count)")
        }
        guard let reference = c.channels.firstIndex(where: { $0 != nil }), let ref = c.channels[reference] else {
            throw PreprocessingError(caseName: c.name, field: "channels", problem: "no channel is present")
        }
        for (m, v) in c.channels.enumerated() {
            guard let v else { continue }
            try Self.checkFinite(v, caseName: c.name, channel: m, channelName: name(m))
            guard v.affine.inverse() != nil, v.affine.m.allSatisfy({ $0.isFinite }) else {
                throw PreprocessingError(caseName: c.name, channel: m, channelName: name(m), field: "affine",
                                         problem: "the affine is singular or not finite: \(v.affine.m)")
            }
        }
        if let label = c.label { try Self.checkFinite(label, caseName: c.name, channel: -1, channelName: nil) }

        let orientation = reorientToRAS ? ref.axisTransform(to: .ras) : .identity(shape: ref.shape)
        var refR = try withPreprocessingContext(caseName: c.name, channel: reference, channelName: name(reference)) { try ref.applying(orientation) }
        // From here on the spacing is the affine's (the geometry the resampling follows); the
        // restored volume gets the file's own spacing back.
        refR.spacing = refR.affine.spacing
        var channels = [Volume?](repeating: nil, count: c.channels.count)
        channels[reference] = refR
        for (m, v) in c.channels.enumerated() where m != reference {
            guard let v else { continue }
            channels[m] = try onReference(v, ref: ref, refR: refR, orientation: orientation, interpolation: .linear,
                                          caseName: c.name, channel: m, referenceChannel: reference)
        }
        var label: Volume?
        if let l = c.label {
            label = try onReference(l, ref: ref, refR: refR, orientation: orientation, interpolation: .nearest,
                                    caseName: c.name, channel: -1, referenceChannel: reference)
        }
        return Aligned(reference: reference, original: ref, orientation: orientation, channels: channels, label: label,
                       shape: refR.shape, spacing: refR.spacing)
    }

    /// One channel (or the label, channel -1) onto the reoriented reference grid (rules in the type's notes).
    private func onReference(_ v: Volume, ref: Volume, refR: Volume, orientation: AxisTransform, interpolation: Interpolation,
                             caseName: String, channel: Int, referenceChannel: Int) throws -> Volume {
        let what = channel < 0 ? "the label" : "this channel"
        let voxelAligned: Bool
        if v.shape == ref.shape && (!resampleChannelsToFirst || v.grid.matches(ref.grid) || !ref.grid.overlaps(v.grid)) {
            voxelAligned = true
        } else if !resampleChannelsToFirst {
            throw PreprocessingError(caseName: caseName, channel: channel, channelName: name(channel), field: "shape",
                                     problem: "\(what) has shape \(v.shape) but the reference channel \(referenceChannel) has \(ref.shape), and resampling channels onto the reference grid is off")
        } else if !ref.grid.overlaps(v.grid) {
            throw PreprocessingError(caseName: caseName, channel: channel, channelName: name(channel), field: "affine",
                                     problem: "\(what) (shape \(v.shape)) has a world box that does not overlap the reference channel \(referenceChannel)'s (shape \(ref.shape)); the affines cannot align them")
        } else {
            voxelAligned = false
        }
        return try withPreprocessingContext(caseName: caseName, channel: channel, channelName: name(channel)) {
            if voxelAligned {
                var out = try Volume(shape: v.shape, voxels: v.voxels, spacing: ref.spacing, affine: ref.affine).applying(orientation)
                out.spacing = refR.spacing
                return out
            }
            var out = try v.resampled(onto: refR.grid, interpolation: interpolation, fill: 0)
            out.spacing = refR.spacing
            return out
        }
    }

    static func checkFinite(_ v: Volume, caseName: String, channel: Int, channelName: String?) throws {
        guard let first = v.voxels.firstIndex(where: { !$0.isFinite }) else { return }
        let nan = v.voxels.lazy.filter { $0.isNaN }.count
        let inf = v.voxels.lazy.filter { $0.isInfinite }.count
        let i = first % v.shape[0], j = (first / v.shape[0]) % v.shape[1], k = first / (v.shape[0] * v.shape[1])
        var parts: [String] = []
        if nan > 0 { parts.append("\(nan) NaN") }
        if inf > 0 { parts.append("\(inf) infinite") }
        throw PreprocessingError(caseName: caseName, channel: channel, channelName: channelName, field: "voxel values",
                                 problem: "\(parts.joined(separator: " and ")) voxel(s), the first at ijk (\(i), \(j), \(k))")
    }

    /// Preprocesses one case (see the type's notes for the steps).
    public func apply(_ c: CaseVolumes) throws -> PreprocessedCase {
        guard targetSpacing.count == 3, targetSpacing.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw PreprocessingError(caseName: c.name, field: "targetSpacing", problem: "\(targetSpacing) must be three positive finite numbers")
        }
        let aligned = try align(c)
        let present = aligned.channels.map { $0 != nil }
        let presentVolumes = aligned.channels.compactMap { $0 }
        var box = BoundingBox.full(aligned.shape)
        if cropToNonZero, let b = try withPreprocessingContext(caseName: c.name, channel: nil, { try Cropping.nonZeroBox(presentVolumes) }) {
            box = b
        }
        var channels = try aligned.channels.enumerated().map { m, v in
            try v.map { v in try withPreprocessingContext(caseName: c.name, channel: m, channelName: name(m)) { try v.cropped(to: box) } }
        }
        var label = try aligned.label.map { l in try withPreprocessingContext(caseName: c.name, channel: -1) { try l.cropped(to: box) } }

        // Normalisation on the cropped grid.
        let needsMask = normalization.enumerated().contains { m, n in present[m] && n == .zscore(nonZeroOnly: true) }
        var mask: [Bool]?
        if needsMask {
            let vols = channels.compactMap { $0 }
            var mk = [Bool](repeating: false, count: box.count)
            for v in vols { for n in mk.indices where !mk[n] && v.voxels[n] != 0 { mk[n] = true } }
            mask = mk
        }
        for m in channels.indices {
            guard let v = channels[m] else { continue }
            channels[m] = try withPreprocessingContext(caseName: c.name, channel: m, channelName: name(m)) {
                try normalization[m].apply(to: v, mask: mask)
            }
        }

        // Resampling to the target spacing.
        let refCropped = channels[aligned.reference]!
        let newShape = Volume.shape(refCropped.shape, spacing: refCropped.spacing, target: targetSpacing)
        for m in channels.indices {
            guard let v = channels[m] else { continue }
            channels[m] = try withPreprocessingContext(caseName: c.name, channel: m, channelName: name(m)) {
                try v.resampled(toShape: newShape, interpolation: .linear)
            }
        }
        label = try label.map { l in try withPreprocessingContext(caseName: c.name, channel: -1) { try l.resampled(toShape: newShape, interpolation: .nearest) } }
        let grid = channels[aligned.reference]!
        let out: [Volume] = channels.map { v in
            v ?? Volume(shape: grid.shape, voxels: [Float](repeating: 0, count: grid.count), spacing: grid.spacing, affine: grid.affine)
        }
        let record = RestoreRecord(caseName: c.name, referenceChannel: aligned.reference, originalShape: aligned.original.shape,
                                   originalAffine: aligned.original.affine, originalSpacing: aligned.original.spacing,
                                   orientation: aligned.orientation, cropBox: box, preprocessedShape: grid.shape,
                                   preprocessedAffine: grid.affine, preprocessedSpacing: grid.spacing)
        return PreprocessedCase(name: c.name, channels: out, present: present, label: label, record: record)
    }

    /// Takes a label map (or, with `.linear`, a probability/intensity map) on the preprocessed grid
    /// back to the input's reference grid: resampled to the cropped shape, padded with `fill` to the
    /// reoriented shape, axes permuted back; the result has exactly the original shape, affine and
    /// spacing of the reference channel's file (channel 0 unless it was absent).
    public func restore(_ labels: Volume, record: RestoreRecord, interpolation: Interpolation = .nearest,
                        fill: Float = 0) throws -> Volume {
        guard labels.shape == record.preprocessedShape else {
            throw PreprocessingError(caseName: record.caseName, field: "shape",
                                     problem: "the volume to restore has shape \(labels.shape), the preprocessed grid \(record.preprocessedShape)")
        }
        guard [record.originalAffine, record.preprocessedAffine].allSatisfy({ $0.m.count == 16 }),
              record.originalSpacing.count == 3, record.preprocessedSpacing.count == 3 else {
            throw PreprocessingError(caseName: record.caseName, field: "restore record",
                                     problem: "affines need 16 entries and spacings 3")
        }
        guard record.cropBox.fits(in: record.reorientedShape), record.orientation.inputShape == record.originalShape else {
            throw PreprocessingError(caseName: record.caseName, field: "restore record",
                                     problem: "inconsistent record: crop box \(record.cropBox) in reoriented shape \(record.reorientedShape), orientation input \(record.orientation.inputShape) vs original \(record.originalShape)")
        }
        return try withPreprocessingContext(caseName: record.caseName, channel: nil) {
            var v = labels
            v.affine = record.preprocessedAffine
            v.spacing = record.preprocessedSpacing
            v = try v.resampled(toShape: record.croppedShape, interpolation: interpolation)
            v = try v.uncropped(from: record.cropBox, into: record.reorientedShape, fill: fill)
            v = try v.applying(record.orientation.inverse)
            v.affine = record.originalAffine
            v.spacing = record.originalSpacing
            return v
        }
    }
}
