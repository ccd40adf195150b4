import Foundation
import Torch

/// One training batch, per modality so that paired and unpaired data look the same to a method.
///
/// `labeledImages[m]` is modality m of the labelled part, (B, 1, spatial...); `labels[m]` are the
/// int64 class maps (B, spatial...) that belong to `labeledImages[m]` — in paired mode the same
/// tensor for every m, in unpaired mode each modality's own cases. `unlabeledImages` likewise, or
/// empty when the batch has no unlabelled part.
public struct TrainingBatch {
    public var labeledImages: [Tensor]
    public var labels: [Tensor]
    public var unlabeledImages: [Tensor]
    /// True when modality m of element b comes from the same patient for all m.
    public var paired: Bool

    public init(labeledImages: [Tensor], labels: [Tensor], unlabeledImages: [Tensor] = [], paired: Bool = true) {
        self.labeledImages = labeledImages; self.labels = labels; self.unlabeledImages = unlabeledImages; self.paired = paired
    }

    public var modalities: Int { labeledImages.count }

    /// The same batch on `device` (a no-op on the CPU).
    public func to(_ device: Device) throws -> TrainingBatch {
        if device == .cpu { return self }
        return TrainingBatch(labeledImages: try labeledImages.map { try $0.to(device) }, labels: try labels.map { try $0.to(device) },
                             unlabeledImages: try unlabeledImages.map { try $0.to(device) }, paired: paired)
    }
    public var hasUnlabeled: Bool { !unlabeledImages.isEmpty }
}

/// The loss terms of one step, by name (the trainer logs each), and their weighted total.
public struct LossTerms {
    public var terms: [(name: String, value: Tensor)]
    public var total: Tensor

    public init(terms: [(name: String, value: Tensor)], total: Tensor) { self.terms = terms; self.total = total }

    /// Term values as numbers (forces evaluation).
    public func values() throws -> [(String, Double)] { try terms.map { ($0.name, try $0.value.item()) } + [("total", try total.item())] }
}

/// Training progress handed to a method each step.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public init(step: Int, totalSteps: Int) { self.step = step; self.totalSteps = totalSteps }
    /// t in [0, 1].
    public var fraction: Double { totalSteps > 0 ? Swift.min(Double(step) / Double(totalSteps), 1) : 1 }
}

/// What a method adds to a checkpoint besides its model and the optimizer: named groups of extra
/// tensors (stored as `GROUP.NAME`, e.g. PReL's frozen teacher under `prel_teacher.`) and string
/// metadata. The names must not collide with the trainer's own metadata (`iteration`, `best_dice`,
/// `best_iteration`, `method`, `format`).
public struct MethodCheckpointState {
    public var tensors: [String: [(String, Tensor)]]
    public var metadata: [String: String]
    public init(tensors: [String: [(String, Tensor)]] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata
    }
}

/// What the trainer offers a method's lifecycle hooks. A hook that changes which parameters are
/// trainable (PReL freezing all but the student) needs nothing more: the trainer compares the
/// method's `trainableParameters` with the optimizer's after every hook and rebuilds the optimizer
/// when they differ.
public protocol MethodTrainingContext: AnyObject {
    /// The run's checkpoint folder; a method may keep its own files below it (e.g. snapshots).
    var checkpointDirectory: URL { get }
    /// Channel names of the dataset, in order.
    var modalityNames: [String] { get }
    /// Writes an event to the run's log (log.jsonl) and to the output.
    func event(iteration: Int, _ message: String)
    /// Validates now (logging it, keeping the best checkpoint and calling `didValidate` as a
    /// periodic validation does); returns the per-head class Dice.
    func validateNow(iteration: Int) throws -> [[Int: Double]?]
}

/// A training recipe: networks, losses per batch, prediction heads and lifecycle hooks. The
/// trainer, the predictor and the CLI see only this protocol; a method is registered by name in
/// `MethodRegistry`, with its own settings type (`MethodSettings`).
public protocol SegmentationMethod: AnyObject {
    /// The registry name ("cmc", "cml", ...), saved in checkpoints.
    var name: String { get }
    /// Everything that is saved in a checkpoint (parameter paths are relative to it).
    var model: Module { get }
    /// What the optimizer updates.
    var trainableParameters: [Parameter] { get }
    /// Names of the prediction heads `predict` returns, e.g. the modality names or "fused".
    var outputNames: [String] { get }
    /// Whether the unlabelled cases are part of the batches (false for a purely supervised method:
    /// the batch source then draws labelled cases only, as a supervised baseline must).
    var usesUnlabeledData: Bool { get }

    func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms
    /// Called after each optimizer step (mean teacher's EMA).
    func afterOptimizerStep(progress: TrainingProgress) throws
    /// Softmax probabilities per output head for per-modality inputs (B, 1, spatial...); nil inputs
    /// are absent modalities. The last entry is the method's final answer.
    func predict(_ images: [Tensor?]) throws -> [Tensor?]
    /// The class Dice that model selection (the best checkpoint) and the logged validation Dice
    /// use, from a validation's per-head class Dice (`predict`'s heads; nil = head without cases).
    /// By default the final answer's (the last head).
    func selectionDice(_ heads: [[Int: Double]?]) -> [Int: Double]?

    // Lifecycle hooks (all optional).

    /// Before iteration `iteration` is computed (before its seeding), e.g. a switch of stage.
    func willStartIteration(_ iteration: Int, context: MethodTrainingContext) throws
    /// After a validation at `iteration` with the per-head class Dice (nil = head without cases).
    func didValidate(iteration: Int, heads: [[Int: Double]?], context: MethodTrainingContext) throws
    /// The method's part of a checkpoint written now.
    func checkpointState() throws -> MethodCheckpointState
    /// Restores that part from a checkpoint (for resuming training and for prediction alike);
    /// called with the checkpoint's extra tensors and metadata, whatever wrote them.
    func restore(from state: MethodCheckpointState) throws
}

extension SegmentationMethod {
    public var usesUnlabeledData: Bool { true }
    public func selectionDice(_ heads: [[Int: Double]?]) -> [Int: Double]? { heads.last ?? nil }
    public func afterOptimizerStep(progress: TrainingProgress) throws {}
    public func willStartIteration(_ iteration: Int, context: MethodTrainingContext) throws {}
    public func didValidate(iteration: Int, heads: [[Int: Double]?], context: MethodTrainingContext) throws {}
    public func checkpointState() throws -> MethodCheckpointState { MethodCheckpointState() }
    public func restore(from state: MethodCheckpointState) throws {}
}

/// A method whose labelled term is Dice + CE (every built-in one); `MethodContext.supervisedLoss`
/// builds it from the run's Dice options. Lets tests check that the options reach each method.
public protocol SupervisedLossOwner: AnyObject {
    var supervised: DiceCELoss { get }
}

/// Sums weighted terms into a total, skipping zero weights (so a disabled term costs nothing).
public func weightedTotal(_ parts: [(Tensor, Double)]) throws -> Tensor {
    var total: Tensor? = nil
    for (t, w) in parts where w != 0 { total = try total.map { try $0 + t * w } ?? (t * w) }
    guard let total else { throw SegmentationError.config("no loss term has a non-zero weight") }
    return total
}

/// Averages tensors of the same shape.
public func mean(of tensors: [Tensor]) throws -> Tensor {
    var sum = tensors[0]
    for t in tensors.dropFirst() { sum = try sum + t }
    return try sum / Double(tensors.count)
}
