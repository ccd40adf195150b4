import Essentials
import Foundation
import Volumes

/// One generated phantom case.
public struct PhantomCase: Sendable {
    /// Case identifier, e.g. "phantom_007".
    public var name: String
    /// Index the case was generated from.
    public var index: Int
    /// One volume per modality, channel 0 (bSSFP) first; all on the same grid.
    public var channels: [Volume]
    /// Channel names ("bSSFP", "LGE", "T2").
    public var channelNames: [String]
    /// Labels on channel 0's grid (as Float). Cardiac: 0 background, 1 LV blood pool, 2 LV
    /// myocardium, 3 RV blood pool; brain: 0 background, 1 ventricles, 2 white matter, 3 lesions.
    public var label: Volume
    /// Per channel, the rigid motion (about the grid's centre) the channel's anatomy underwent
    /// relative to channel 0 (nil for channel 0 and when misalignment is off). A structure channel 0
    /// shows at world p appears in channel m at `motions[m]!.apply(p, centre: grid centre)`.
    public var motions: [RigidTransform?]
    /// Whether the case has myocardial scar (LGE enhancement / T2 edema); brain: any lesion.
    public var hasScar: Bool
}

/// The built-in multimodal phantoms: cardiac (docs/methods.md, the phantom) and brain
/// (`PhantomFamily.brain`).
///
/// Case `index` of a given `seed` and `PhantomConfig` is always the same (own xoshiro256** streams
/// keyed by seed, case index and purpose), whatever the number of cases generated; the labels and
/// the first channels do not change when `modalities` grows from 2 to 3.
public enum Phantom {
    /// Label names in value order (MS-CMRSeg's classes).
    public static let labelNames = ["background", "LV", "Myo", "RV"]

    /// The case name for an index.
    public static func caseName(_ index: Int) -> String { "phantom_" + String(format: "%03d", index) }

    /// Generates one case. `config` must be valid (`config.validate()`).
    public static func generateCase(index: Int, seed: UInt64, config: PhantomConfig) -> PhantomCase {
        do { try config.validate() } catch { preconditionFailure("\(error)") }
        precondition(index >= 0, "case index must be >= 0")
        let shape = config.shape, spacing = config.spacing, affine = config.affine
        let caseKey = UInt64(index)

        let tissue: [UInt8], labelVoxels: [Float], hasFinding: Bool
        switch config.family {
        case .cardiac:
            var anatomyRNG = SeededGenerator(seed: seed, stream: [caseKey, 0])
            let anatomy = PhantomAnatomy.sample(config: config, rng: &anatomyRNG)
            var cardiac = anatomy.render(shape: shape, affine: affine)
            PhantomAnatomy.closeMyocardium(&cardiac, shape: shape)
            tissue = cardiac
            labelVoxels = cardiac.map { Float(PhantomTissue(rawValue: $0)!.label) }
            hasFinding = !anatomy.scars.isEmpty
        case .brain:
            (tissue, labelVoxels, hasFinding) = BrainPhantom.tissue(index: index, seed: seed, config: config)
        }
        let label = Volume(shape: shape, voxels: labelVoxels, spacing: spacing, affine: affine)

        var channels: [Volume] = []
        var motions: [RigidTransform?] = []
        for channel in 0..<config.modalities {
            var motion: RigidTransform? = nil
            if channel > 0 && (config.misalignMM > 0 || config.misalignDegrees > 0) {
                var mr = SeededGenerator(seed: seed, stream: [caseKey, 2, UInt64(channel)])
                motion = RigidTransform.random(maxTranslationMM: config.misalignMM, maxRotationDegrees: config.misalignDegrees, rng: &mr)
            }
            let contrast = config.family == .cardiac
                ? PhantomContrast.nominal(config.modalityList[channel], overlap: config.contrastOverlap)
                : PhantomContrast.brain(channel: channel, overlap: config.contrastOverlap)
            var r = SeededGenerator(seed: seed, stream: [caseKey, 1, UInt64(channel)])
            let voxels = image(tissue: tissue, shape: shape, spacing: spacing, affine: affine, contrast: contrast,
                               config: config, motion: motion, rng: &r)
            channels.append(Volume(shape: shape, voxels: voxels, spacing: spacing, affine: affine))
            motions.append(motion)
        }
        return PhantomCase(name: caseName(index), index: index, channels: channels, channelNames: config.channelNames, label: label,
                           motions: motions, hasScar: hasFinding)
    }
}
