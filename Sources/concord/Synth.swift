import ArgumentParser
import Datasets
import Foundation

/// `concord synth`: a built-in multimodal phantom (cardiac or brain) as a dataset folder.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the built-in multimodal phantom dataset (deterministic per seed).",
        discussion: """
        Cardiac (default): cardiac-like anatomy (1 LV blood pool, 2 myocardium, 3 RV) seen by 2 or 3 modalities
        with complementary contrasts (bSSFP, LGE, T2). Brain (--family brain): a head with cortex, 1 lateral
        ventricles, 2 white matter and 3 small white-matter lesions, seen by T1, FLAIR (and T2), 192 mm field of
        view. Both with noise, bias field, partial-volume blur, anisotropic spacing and optional
        misalignment of the non-reference modalities. Writes dataset.json, imagesTr/, labelsTr/,
        imagesUnlabeled/ and phantom.json (seed, settings, per-case misalignment).
        """
    )

    @Option(help: "Output folder.") var out: String
    @Option(help: "Labelled cases.") var cases = 20
    @Option(help: "Additional unlabelled cases (imagesUnlabeled/).") var unlabeled = 0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "In-plane size in voxels (through-plane is half).") var size = 64
    @Option(help: "Anatomy: cardiac or brain.") var family = "cardiac"
    @Option(help: "Modalities: 2 (bSSFP, LGE; brain: T1, FLAIR) or 3 (+ T2).") var modalities = 2
    @Option(help: "Through-plane voxel size over in-plane (default: cardiac 2, brain 1).") var throughPlaneFactor: Double?
    @Option(help: "Maximum misalignment of non-reference modalities, mm.") var misalignMm: Double = 0
    @Option(help: "Maximum misalignment rotation, degrees.") var misalignDeg: Double = 0
    @Flag(help: "Replace a dataset already in --out.") var overwrite = false
    @Flag(help: "Also print how hard the phantom is: per modality, the intensity overlap of class pairs and the accuracy an intensity-only classifier reaches (12 cases).") var stats = false

    func run() throws {
        var config = PhantomConfig()
        guard let parsed = PhantomFamily(rawValue: family) else {
            throw ValidationError("--family \(family): must be \(PhantomFamily.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        config.family = parsed
        if stats && parsed != .cardiac { throw ValidationError("--stats measures the cardiac phantom only") }
        config.size = size
        config.throughPlaneFactor = throughPlaneFactor ?? (parsed == .cardiac ? 2 : 1)
        config.modalities = modalities
        config.misalignMM = misalignMm
        config.misalignDegrees = misalignDeg
        let start = Date()
        try Phantom.writeDataset(to: URL(fileURLWithPath: out), cases: cases, unlabeledCases: unlabeled, seed: seed, config: config,
                                 overwrite: overwrite) { done, total in
            FileHandle.standardError.write(Data("\rsynth: case \(done)/\(total)   ".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        if stats { print(PhantomStatistics.measure(seed: seed, cases: 12, config: config).markdown) }
        print(String(format: "wrote %d labelled + %d unlabelled phantom cases to %@ in %.1f s", cases, unlabeled, out, Date().timeIntervalSince(start)))
    }
}
