import Datasets
import Essentials
import Foundation
import Metrics
import Torch
import Volumes

/// A simulated test-time misalignment of the non-reference channels (see
/// `CaseVolumes.withSimulatedMisalignment`): random rigid motion up to these maxima.
public struct MisalignmentLevel: Codable, Equatable, Sendable {
    public var maxTranslationMM: Double
    public var maxRotationDegrees: Double
    public init(maxTranslationMM: Double, maxRotationDegrees: Double) {
        self.maxTranslationMM = maxTranslationMM; self.maxRotationDegrees = maxRotationDegrees
    }
    public var isAligned: Bool { maxTranslationMM == 0 && maxRotationDegrees == 0 }
}

/// One evaluation of a run: one misalignment level, one output head, every case of the split that
/// the head segments (a modality's head skips the cases without that modality).
public struct RunEvaluationResult: Codable, Sendable {
    public var misalignment: MisalignmentLevel
    public var head: String
    public var report: EvaluationReport
}

/// Evaluates a trained run on cases of its dataset in one process: each case is read once,
/// segmented once per misalignment level (all heads from one sliding-window pass) and compared
/// with its label in memory. Equivalent to `concord predict` (same misalignment seed, cases in
/// name order) followed by `concord evaluate` for every level and head, without the files and
/// the process start-ups in between (one CMC run, 4 levels x 3 heads: 11 s instead of 41 s).
public enum RunEvaluation {
    /// `cases`: names in the run's dataset (labelled cases; their labels are the reference).
    /// `labels` nil = every class of the run but background.
    public static func evaluate(predictor: Predictor, dataset: URL, cases: [String], heads: [Int],
                                levels: [MisalignmentLevel], seed: UInt64, labels: [Int]? = nil,
                                log: (String) -> Void = { print($0) }) throws -> [RunEvaluationResult] {
        guard !cases.isEmpty else { throw SegmentationError.invalidDataset(path: dataset.path, problem: "no cases to evaluate") }
        guard !heads.isEmpty, !levels.isEmpty else { throw SegmentationError.invalidSettings(source: "evaluation", problem: "no heads or no misalignment levels to evaluate") }
        let layout = try DatasetLayout.load(root: dataset)
        let channels = try layout.description.orderedChannelNames()
        guard channels == predictor.description.modalityNames else {
            throw SegmentationError.invalidDataset(path: dataset.path, problem: "channels \(channels) differ from the run's \(predictor.description.modalityNames)")
        }
        let classes = labels ?? Array(1..<predictor.description.numClasses)
        let names = predictor.method.outputNames
        // One generator per level, advanced case by case in name order: the same draws as one
        // `concord predict --seed S --misalign-mm ...` call over these cases.
        var generators = levels.map { _ in CaseVolumes.misalignmentGenerator(seed: seed) }
        var evaluations = [[CaseEvaluation]](repeating: [], count: levels.count * heads.count)
        for (i, name) in cases.sorted().enumerated() {
            guard let c = layout.case(named: name) else { throw SegmentationError.invalidDataset(path: dataset.path, problem: "no case \(name)") }
            guard let labelURL = c.label else { throw SegmentationError.invalidDataset(path: dataset.path, problem: "case \(name) has no label to evaluate against") }
            let started = Date()
            let volumes = CaseVolumes(name: name, channels: try c.channels.map { url in try url.map { try NIfTI.read($0).volume } })
            let reference = try NIfTI.read(labelURL).volume
            let truth = try FolderEvaluation.integerLabels(reference, file: labelURL)
            for (l, level) in levels.enumerated() {
                var input = volumes
                if !level.isAligned {
                    input = try volumes.withSimulatedMisalignment(maxTranslationMM: level.maxTranslationMM,
                                                                  maxRotationDegrees: level.maxRotationDegrees, rng: &generators[l]).volumes
                }
                let masks = try predictor.segment(input, heads: heads)
                for (h, mask) in masks.enumerated() {
                    // A head without a prediction (its modality is absent from this case, as in
                    // unpaired data) is scored on the cases it segments.
                    guard let mask else { continue }
                    guard mask.shape == reference.shape else {
                        throw SegmentationError.invalidLabels(file: labelURL.lastPathComponent, problem: "label shape \(reference.shape) differs from the reference channel's \(mask.shape)")
                    }
                    let predicted = mask.voxels.map { Int32($0) }   // argmax class indices
                    evaluations[l * heads.count + h].append(
                        SegmentationMetrics.evaluateCase(name: name, prediction: predicted, reference: truth, shape: reference.shape,
                                                         spacing: reference.spacing, labels: classes))
                }
            }
            log(String(format: "[%d/%d] %@: %d misalignment level(s) x %d head(s) (%.1f s)", i + 1, cases.count, name,
                       levels.count, heads.count, Date().timeIntervalSince(started)))
        }
        return levels.indices.flatMap { l in
            heads.indices.map { h in
                RunEvaluationResult(misalignment: levels[l], head: names[heads[h]],
                                    report: EvaluationReport(cases: evaluations[l * heads.count + h]))
            }
        }
    }
}
