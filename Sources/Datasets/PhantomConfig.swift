import Foundation
import Volumes

/// The modalities the phantom can simulate, in channel order.
public enum PhantomModality: Int, CaseIterable, Codable, Sendable {
    /// Balanced SSFP cine: blood bright, myocardium dark, liver and chest wall nearly as dark as
    /// myocardium (weak epicardial boundary). Channel 0, the reference the labels belong to.
    case bSSFP = 0
    /// Late gadolinium enhancement: healthy myocardium nulled, scar bright (close to blood), blood
    /// mid-grey (weak endocardial boundary where there is scar).
    case lge = 1
    /// T2-weighted (black blood, fat suppressed): myocardium mid-bright with brighter edema, blood
    /// dark-ish, surrounding soft tissue close to myocardium; lower SNR and blurrier.
    case t2 = 2

    /// The channel name written to `dataset.json`.
    public var channelName: String {
        switch self {
        case .bSSFP: return "bSSFP"
        case .lge: return "LGE"
        case .t2: return "T2"
        }
    }
}

/// The anatomy a phantom shows.
public enum PhantomFamily: String, Codable, CaseIterable, Sendable {
    /// Cardiac MR (bSSFP, LGE, T2): LV blood pool, myocardium, RV (the default; docs/methods.md).
    case cardiac
    /// Brain MR (T1, FLAIR, T2): ventricles, white matter and small white-matter lesions, with a
    /// 192 mm field of view (`BrainPhantom.swift`).
    case brain

    /// In-plane field of view in mm when `inPlaneSpacingMM` is not set.
    public var fieldOfViewMM: Double { self == .cardiac ? 80 : 192 }
}

/// Knobs of the built-in phantom. Every field has a default; decoding accepts any subset of keys
/// (missing ones take the default) and rejects unknown keys.
///
/// The defaults make the task hard on purpose: at defaults no single modality separates
/// myocardium from the tissue around the heart by intensity, LGE alone leaves the endocardial
/// border ambiguous wherever there is scar, and LV and RV blood are indistinguishable by intensity
/// in every modality (see `PhantomStatistics`).
public struct PhantomConfig: Codable, Equatable, Sendable {
    /// The anatomy: cardiac (default) or brain.
    public var family: PhantomFamily = .cardiac
    /// In-plane voxels (nx = ny = size); nz = max(1, size / 2).
    public var size: Int = 64
    /// Number of modalities, 1...3, in the order bSSFP, LGE, T2 (brain: T1, FLAIR, T2).
    public var modalities: Int = 2
    /// In-plane voxel size in mm; nil: the family's field of view over `size` (cardiac 80 mm, i.e.
    /// 1.25 mm at size 64; brain 192 mm, 3 mm at size 64).
    public var inPlaneSpacingMM: Double? = nil
    /// Through-plane voxel size as a multiple of the in-plane one (2 -> 2.5 mm at size 64;
    /// `concord synth --family brain` uses 1: 3 mm isotropic at size 64).
    public var throughPlaneFactor: Double = 2
    /// Signal-to-noise ratio of blood (bSSFP) / the brightest structure, before per-modality
    /// factors (LGE 0.9x, T2 0.6x). Noise is Rician (magnitude of complex Gaussian noise).
    public var snr: Double = 12
    /// Amplitude of the smooth multiplicative bias field (0.25: roughly +-25% over the field of view).
    public var biasStrength: Double = 0.25
    /// Partial-volume blur: Gaussian sigma in in-plane voxels; through-plane sigma is
    /// `blurSigma * throughPlaneBlurFactor` through-plane voxels. T2 is blurred 1.4x more.
    public var blurSigma: Double = 0.7
    /// Through-plane blur relative to in-plane, in voxels of each axis (> 1: blurrier through-plane).
    public var throughPlaneBlurFactor: Double = 1.4
    /// Maximum amplitude in mm of the smooth random deformation applied to the anatomy.
    public var deformationMM: Double = 3
    /// Maximum tilt of the LV long axis away from the through-plane axis, degrees.
    public var maxTiltDegrees: Double = 20
    /// Non-reference modalities are moved by a random rigid transform: translation up to this
    /// length (mm) ...
    public var misalignMM: Double = 0
    /// ... and rotation by up to this angle (degrees, about a random axis through the grid centre).
    public var misalignDegrees: Double = 0
    /// 0...1: how close the confusing tissues' intensities are to the class they are confused with
    /// (liver / chest wall / mediastinum vs myocardium in bSSFP, scar vs blood in LGE, soft tissue vs
    /// myocardium in T2). 1 = identical means.
    public var contrastOverlap: Double = 0.8
    /// Per-case relative jitter (standard deviation) of every tissue's mean intensity.
    public var contrastJitter: Double = 0.06
    /// Probability that a case has myocardial scar (LGE enhancement, T2 edema).
    public var scarProbability: Double = 0.9
    /// Global intensity scale drawn per case and modality, log-uniform in this range.
    public var intensityScale: [Double] = [300, 1500]
    /// Global intensity offset drawn per case and modality, uniform in this range.
    public var intensityOffset: [Double] = [0, 40]
    /// Brain: lesions per case, uniform in [low, high].
    public var lesionCount: [Int] = [2, 8]
    /// Brain: lesion radius in mm, uniform in [low, high] (each semi-axis then varies by +-30 %).
    public var lesionRadiusMM: [Double] = [4, 8]

    public init() {}

    /// The cardiac modalities present, in channel order.
    public var modalityList: [PhantomModality] { Array(PhantomModality.allCases.prefix(max(0, min(3, modalities)))) }

    /// The channel names written to `dataset.json`, in channel order.
    public var channelNames: [String] {
        family == .cardiac ? modalityList.map(\.channelName) : Array(BrainPhantom.channelNames.prefix(max(0, min(3, modalities))))
    }

    /// Label names in value order.
    public var labelNames: [String] { family == .cardiac ? Phantom.labelNames : BrainPhantom.labelNames }

    /// Grid shape (nx, ny, nz). Cardiac: nz = size / 2 (short-axis stacks cover less through-plane);
    /// brain: the head's height, nz = size / throughPlaneFactor (a cubic field of view).
    public var shape: [Int] {
        let nz = family == .cardiac ? size / 2 : Int((Double(size) / throughPlaneFactor).rounded())
        return [size, size, max(1, nz)]
    }

    /// Voxel spacing in mm.
    public var spacing: [Double] {
        let inPlane = inPlaneSpacingMM ?? family.fieldOfViewMM / Double(max(size, 1))
        return [inPlane, inPlane, inPlane * throughPlaneFactor]
    }

    /// Scale of the anatomy relative to the 80 mm reference field of view (1 at the defaults and
    /// whenever `inPlaneSpacingMM` is nil).
    public var anatomyScale: Double { Double(size) * spacing[0] / 80.0 }

    /// Voxel -> world affine: axis-aligned, grid centre at the world origin.
    public var affine: Affine {
        let s = spacing, n = shape
        return .scaling(s, origin: (0..<3).map { -Double(n[$0] - 1) / 2 * s[$0] })
    }

    /// Throws `PhantomConfigError` naming the first field out of range.
    public func validate() throws {
        func fail(_ field: String, _ why: String) -> PhantomConfigError { PhantomConfigError(field: field, problem: why) }
        guard (8...1024).contains(size) else { throw fail("size", "must be 8...1024, got \(size)") }
        guard (1...3).contains(modalities) else { throw fail("modalities", "must be 1...3 (\(family == .cardiac ? "bSSFP, LGE, T2" : "T1, FLAIR, T2")), got \(modalities)") }
        if let s = inPlaneSpacingMM, !(s.isFinite && s > 0) { throw fail("inPlaneSpacingMM", "must be > 0, got \(s)") }
        guard throughPlaneFactor.isFinite && throughPlaneFactor > 0 else { throw fail("throughPlaneFactor", "must be > 0") }
        guard snr.isFinite && snr > 0 else { throw fail("snr", "must be > 0 (use a large value for nearly no noise), got \(snr)") }
        guard biasStrength.isFinite && (0...2).contains(biasStrength) else { throw fail("biasStrength", "must be 0...2, got \(biasStrength)") }
        guard blurSigma.isFinite && (0...5).contains(blurSigma) else { throw fail("blurSigma", "must be 0...5 voxels, got \(blurSigma)") }
        guard throughPlaneBlurFactor.isFinite && throughPlaneBlurFactor >= 0 else { throw fail("throughPlaneBlurFactor", "must be >= 0") }
        guard deformationMM.isFinite && (0...20).contains(deformationMM) else { throw fail("deformationMM", "must be 0...20 mm, got \(deformationMM)") }
        guard maxTiltDegrees.isFinite && (0...90).contains(maxTiltDegrees) else { throw fail("maxTiltDegrees", "must be 0...90, got \(maxTiltDegrees)") }
        guard misalignMM.isFinite && misalignMM >= 0 else { throw fail("misalignMM", "must be >= 0, got \(misalignMM)") }
        guard misalignDegrees.isFinite && (0...180).contains(misalignDegrees) else { throw fail("misalignDegrees", "must be 0...180, got \(misalignDegrees)") }
        guard contrastOverlap.isFinite && (0...1).contains(contrastOverlap) else { throw fail("contrastOverlap", "must be 0...1, got \(contrastOverlap)") }
        guard contrastJitter.isFinite && (0...0.5).contains(contrastJitter) else { throw fail("contrastJitter", "must be 0...0.5, got \(contrastJitter)") }
        guard scarProbability.isFinite && (0...1).contains(scarProbability) else { throw fail("scarProbability", "must be 0...1, got \(scarProbability)") }
        guard intensityScale.count == 2, intensityScale.allSatisfy({ $0.isFinite && $0 > 0 }), intensityScale[0] <= intensityScale[1] else {
            throw fail("intensityScale", "must be [low, high] with 0 < low <= high, got \(intensityScale)")
        }
        guard intensityOffset.count == 2, intensityOffset.allSatisfy({ $0.isFinite && $0 >= 0 }), intensityOffset[0] <= intensityOffset[1] else {
            throw fail("intensityOffset", "must be [low, high] with 0 <= low <= high, got \(intensityOffset)")
        }
        guard lesionCount.count == 2, lesionCount[0] >= 0, lesionCount[0] <= lesionCount[1], lesionCount[1] <= 50 else {
            throw fail("lesionCount", "must be [low, high] with 0 <= low <= high <= 50, got \(lesionCount)")
        }
        guard lesionRadiusMM.count == 2, lesionRadiusMM.allSatisfy({ $0.isFinite && $0 > 0 }), lesionRadiusMM[0] <= lesionRadiusMM[1] else {
            throw fail("lesionRadiusMM", "must be [low, high] with 0 < low <= high, got \(lesionRadiusMM)")
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case family, size, modalities, inPlaneSpacingMM, throughPlaneFactor, snr, biasStrength, blurSigma, throughPlaneBlurFactor
        case deformationMM, maxTiltDegrees, misalignMM, misalignDegrees, contrastOverlap, contrastJitter, scarProbability
        case intensityScale, intensityOffset, lesionCount, lesionRadiusMM
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        if let unknown = any.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw DecodingError.dataCorruptedError(forKey: AnyKey(stringValue: unknown), in: any,
                debugDescription: "unknown phantom setting '\(unknown)'; known: \(CodingKeys.allCases.map(\.stringValue).joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = PhantomConfig()
        func get<T: Decodable>(_ k: CodingKeys, _ v: inout T) throws { if let x = try c.decodeIfPresent(T.self, forKey: k) { v = x } }
        try get(.family, &d.family); try get(.size, &d.size); try get(.modalities, &d.modalities)
        d.inPlaneSpacingMM = try c.decodeIfPresent(Double.self, forKey: .inPlaneSpacingMM)
        try get(.throughPlaneFactor, &d.throughPlaneFactor); try get(.snr, &d.snr)
        try get(.biasStrength, &d.biasStrength); try get(.blurSigma, &d.blurSigma)
        try get(.throughPlaneBlurFactor, &d.throughPlaneBlurFactor); try get(.deformationMM, &d.deformationMM)
        try get(.maxTiltDegrees, &d.maxTiltDegrees); try get(.misalignMM, &d.misalignMM)
        try get(.misalignDegrees, &d.misalignDegrees); try get(.contrastOverlap, &d.contrastOverlap)
        try get(.contrastJitter, &d.contrastJitter); try get(.scarProbability, &d.scarProbability)
        try get(.intensityScale, &d.intensityScale); try get(.intensityOffset, &d.intensityOffset)
        try get(.lesionCount, &d.lesionCount); try get(.lesionRadiusMM, &d.lesionRadiusMM)
        self = d
    }
}

/// A phantom setting out of range.
public struct PhantomConfigError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var field: String
    public var problem: String
    public var description: String { "phantom setting '\(field)': \(problem)" }
    public var errorDescription: String? { description }
}
