import Datasets
import Essentials
import Foundation
import Volumes

/// The cross-validation of one configuration: every fold run segments its own validation cases
/// (the `val` list of its splits.json, from the dataset it was trained on), each case is scored
/// per class, and the postprocessing is decided on the pooled Dice (`PostprocessingDecision`).
/// The predicted and reference label maps of every validation case are held in memory (4 bytes
/// per voxel each) until the decision is made.
public enum CrossValidation {
    public static func run(predictors: [Predictor], dataset: URL? = nil,
                           log: (String) -> Void = { print($0) }) throws -> PostprocessingDecision {
        let ensemble = try EnsemblePredictor(members: predictors)   // the runs must agree on classes and channels
        let classes = Array(1..<ensemble.description.numClasses)
        var cases: [PostprocessingDecision.ValidationCase] = []
        var seen: [String: String] = [:]
        for predictor in predictors {
            let splits = try Splits.load(from: predictor.run.appendingPathComponent(Splits.fileName))
            guard !splits.val.isEmpty else {
                throw SegmentationError.invalidRun(path: predictor.run.path, problem: "its splits.json has no validation cases (trained with --fold all?); cross-validation needs the fold runs")
            }
            let root = dataset ?? URL(fileURLWithPath: predictor.description.dataset)
            let layout = try DatasetLayout.load(root: root)
            for name in splits.val {
                if let other = seen[name] {
                    throw SegmentationError.invalidRun(path: predictor.run.path, problem: "validation case \(name) is also a validation case of \(other); the runs are not folds of one cross-validation")
                }
                seen[name] = predictor.run.path
                guard let c = layout.case(named: name) else { throw SegmentationError.invalidDataset(path: root.path, problem: "no case \(name) (validation case of \(predictor.run.path))") }
                guard let labelURL = c.label else { throw SegmentationError.invalidDataset(path: root.path, problem: "case \(name) has no label") }
                let started = Date()
                let volumes = CaseVolumes(name: name, channels: try c.channels.map { url in try url.map { try NIfTI.read($0).volume } })
                let mask = try predictor.segment(volumes)
                let reference = try NIfTI.read(labelURL).volume
                guard mask.shape == reference.shape else {
                    throw SegmentationError.invalidLabels(file: labelURL.lastPathComponent, problem: "label shape \(reference.shape) differs from the reference channel's \(mask.shape)")
                }
                cases.append(.init(run: predictor.run.path, fold: splits.fold, name: name, shape: mask.shape,
                                   prediction: mask.voxels.map { Int32($0) },
                                   truth: try FolderEvaluation.integerLabels(reference, file: labelURL)))
                log(String(format: "%@: %@ (%.1f s)", predictor.run.lastPathComponent, name, Date().timeIntervalSince(started)))
            }
        }
        return PostprocessingDecision.decide(cases: cases, classes: classes)
    }

    /// Writes the decision (atomically) as `folder/postprocessing.json`.
    public static func write(_ decision: PostprocessingDecision, to folder: URL) throws -> URL {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = folder.appendingPathComponent(Postprocessing.fileName)
        try AtomicFile.write(try encoder.encode(decision), to: url)
        return url
    }
}
