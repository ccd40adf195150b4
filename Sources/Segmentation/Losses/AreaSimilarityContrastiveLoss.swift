import Torch

/// Semi-CML's area-similarity contrastive loss ASC (SPEC 1.2).
///
/// Foreground probability maps (1 - p_background) of two modality networks for the same batch
/// (labelled and unlabelled together): for sample i the positive is (p^1_i, p^2_i), negatives
/// are (p^1_i, p^2_j), j != i; similarity soft Dice; InfoNCE with temperature tau (default 1.0),
/// both directions averaged. Needs a batch of at least two samples (one sample has no negatives and
/// the loss would be the constant 0: this is an error, not a silent zero).
public struct AreaSimilarityContrastiveLoss: Sendable {
    public var temperature: Double

    public init(temperature: Double = 1.0) { self.temperature = temperature }

    /// Foreground maps (1, B, N) from logits (B, K, spatial...) or from probabilities when
    /// `probabilities` is true.
    public func foreground(_ x: Tensor, probabilities: Bool = false) throws -> Tensor {
        let p = probabilities ? x : try F.softmax(x, dim: 1)
        let fg = try 1 - p.narrow(dim: 1, start: 0, length: 1)                // (B, 1, spatial)
        return try fg.flatten(from: 1).unsqueeze(dim: 0)                        // (1, B, N)
    }

    public func callAsFunction(_ a: Tensor, _ b: Tensor, aIsProbability: Bool = false, bIsProbability: Bool = false) throws -> Tensor {
        guard a.size(0) >= 2 else { throw TorchError("ASC needs at least two samples per batch, got \(a.size(0))") }
        guard a.shape == b.shape else { throw TorchError("ASC needs predictions of equal shape, got \(a.shape) and \(b.shape)") }
        let s = try softDiceSimilarity(foreground(a, probabilities: aIsProbability), foreground(b, probabilities: bIsProbability))
        return try infoNCE(similarity: s, temperature: temperature)
    }
}

/// Mean squared difference of two predictions' softmax probabilities (mean teacher, Semi-CML).
public struct SoftmaxMSELoss: Sendable {
    public init() {}
    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try F.mseLoss(F.softmax(a, dim: 1), F.softmax(b, dim: 1))
    }
}
