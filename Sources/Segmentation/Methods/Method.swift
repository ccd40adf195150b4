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

/// A training recipe: given a batch returns named loss terms; the trainer stays method-agnostic.
public protocol SegmentationMethod: AnyObject {
    /// The CLI name ("cmc", "cml", "mean-teacher", "supervised").
    var name: String { get }
    /// Everything that is saved in a checkpoint (parameter paths are relative to it).
    var model: Module { get }
    /// What the optimizer updates.
    var trainableParameters: [Parameter] { get }
    /// Names of the prediction heads `predict` returns, e.g. the modality names or "fused".
    var outputNames: [String] { get }

    func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms
    /// Called after each optimizer step (mean teacher's EMA).
    func afterOptimizerStep(progress: TrainingProgress) throws
    /// Softmax probabilities per output head for per-modality inputs (B, 1, spatial...); nil inputs
    /// are absent modalities. The last entry is the method's final answer.
    func predict(_ images: [Tensor?]) throws -> [Tensor?]
}

extension SegmentationMethod {
    public func afterOptimizerStep(progress: TrainingProgress) throws {}
}

/// Sums weighted terms into a total, skipping zero weights (so a disabled term costs nothing).
func weightedTotal(_ parts: [(Tensor, Double)]) throws -> Tensor {
    var total: Tensor? = nil
    for (t, w) in parts where w != 0 { total = try total.map { try $0 + t * w } ?? (t * w) }
    guard let total else { throw TorchError("no loss term has a non-zero weight") }
    return total
}

/// Averages tensors of the same shape.
func mean(of tensors: [Tensor]) throws -> Tensor {
    var sum = tensors[0]
    for t in tensors.dropFirst() { sum = try sum + t }
    return try sum / Double(tensors.count)
}
