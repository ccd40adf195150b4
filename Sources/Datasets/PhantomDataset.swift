import Foundation
import Essentials
import Volumes

/// What `Phantom.writeDataset` records in `phantom.json` next to `dataset.json`: how to regenerate
/// the dataset and the ground truth that is not in the images (misalignment per channel).
public struct PhantomDatasetRecord: Codable, Equatable, Sendable {
    public struct CaseRecord: Codable, Equatable, Sendable {
        public var name: String
        public var index: Int
        public var labeled: Bool
        public var hasScar: Bool
        /// Per channel, the rigid motion applied (nil for channel 0 / no misalignment).
        public var motions: [RigidTransform?]
    }

    /// Bumped whenever the generator's output for a given seed and config changes.
    public var generatorVersion: Int
    public var seed: UInt64
    public var config: PhantomConfig
    public var cases: [CaseRecord]

    public static let fileName = "phantom.json"
}

extension Phantom {
    /// Version of the generator's output (see `PhantomDatasetRecord.generatorVersion`).
    public static let generatorVersion = 1

    /// Writes a dataset in Concord's layout: `imagesTr/phantom_000_0000.nii.gz` ... (float32, one
    /// file per channel), `labelsTr/phantom_000.nii.gz` (uint8) for cases 0 ..< cases,
    /// `imagesUnlabeled/` for cases cases ..< cases + unlabeledCases, `phantom.json` (seed, config,
    /// per-case misalignment) and, last, `dataset.json` (so an interrupted run leaves no
    /// dataset.json behind).
    ///
    /// Cases are generated in parallel; `progress(done, total)` is called after each case, one call
    /// at a time (from worker threads). If `root` already holds a dataset (any of dataset.json,
    /// phantom.json, imagesTr, labelsTr, imagesUnlabeled) this throws unless `overwrite`, which
    /// removes exactly those entries first.
    public static func writeDataset(to root: URL, cases: Int, unlabeledCases: Int, seed: UInt64, config: PhantomConfig,
                                    overwrite: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws {
        try config.validate()
        guard cases >= 1 else { throw PhantomConfigError(field: "cases", problem: "at least one labelled case is needed, got \(cases)") }
        guard unlabeledCases >= 0 else { throw PhantomConfigError(field: "unlabeledCases", problem: "must be >= 0, got \(unlabeledCases)") }
        let fm = FileManager.default
        let owned = ["dataset.json", PhantomDatasetRecord.fileName, DatasetLayout.imagesTr, DatasetLayout.labelsTr, DatasetLayout.imagesUnlabeled]
        let existing = owned.filter { fm.fileExists(atPath: root.appendingPathComponent($0).path) }
        if !existing.isEmpty {
            guard overwrite else {
                throw DatasetDescriptionError(file: root.path, problem: "already holds a dataset (\(existing.joined(separator: ", "))); refusing to overwrite it without the overwrite option")
            }
            for e in existing { try fm.removeItem(at: root.appendingPathComponent(e)) }
        }
        try fm.createDirectory(at: root.appendingPathComponent(DatasetLayout.imagesTr), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent(DatasetLayout.labelsTr), withIntermediateDirectories: true)
        if unlabeledCases > 0 {
            try fm.createDirectory(at: root.appendingPathComponent(DatasetLayout.imagesUnlabeled), withIntermediateDirectories: true)
        }

        let total = cases + unlabeledCases
        var done = 0
        // Cases in parallel; each case's files are written before it counts as done.
        let records = try Parallel.map(count: total, { index -> PhantomDatasetRecord.CaseRecord in
            let labeled = index < cases
            let c = generateCase(index: index, seed: seed, config: config)
            let folder = labeled ? DatasetLayout.imagesTr : DatasetLayout.imagesUnlabeled
            for (ch, volume) in c.channels.enumerated() {
                let path = DatasetLayout.channelPath(folder: folder, caseName: c.name, channel: ch, fileEnding: ".nii.gz")
                try NIfTI.write(volume, to: root.appendingPathComponent(path), datatype: .float32)
            }
            if labeled {
                try NIfTI.write(c.label, to: root.appendingPathComponent("\(DatasetLayout.labelsTr)/\(c.name).nii.gz"), datatype: .uint8)
            }
            return PhantomDatasetRecord.CaseRecord(name: c.name, index: index, labeled: labeled, hasScar: c.hasScar, motions: c.motions)
        }, completed: { _, _ in
            done += 1
            progress?(done, total)
        })

        let record = PhantomDatasetRecord(generatorVersion: generatorVersion, seed: seed, config: config, cases: records)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(record), to: root.appendingPathComponent(PhantomDatasetRecord.fileName))

        let names = config.channelNames
        let description = DatasetDescription(
            channelNames: names,
            labels: config.labelNames.enumerated().map { ($0.element, $0.offset) },
            numTraining: cases, fileEnding: ".nii.gz", numUnlabeled: unlabeledCases, pairing: .paired,
            name: "ConcordPhantom",
            description: "Concord's built-in multimodal \(config.family.rawValue) phantom (\(names.joined(separator: " + "))), seed \(seed), generator v\(generatorVersion); settings in phantom.json")
        try description.save(to: root.appendingPathComponent("dataset.json"))
    }
}
