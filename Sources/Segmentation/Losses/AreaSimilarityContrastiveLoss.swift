import Torch

/// Semi-CML's area-similarity contrastive loss ASC (docs/methods.md, 1.2).
///
/// Area maps: the per-class probability maps p_k, k = 1..K-1 (softmax probabilities) of two
/// modality networks for the same batch (labelled and unlabelled together). For each foreground
/// class k and sample i the positive pair is (p^1_{k,i}, p^2_{k,i}), the negatives are
/// (p^1_{k,i}, p^2_{k,j}), j != i; similarity soft Dice
///   s^k_{ij} = 2 <p^1_{k,i}, p^2_{k,j}> / (|p^1_{k,i}|^2 + |p^2_{k,j}|^2 + eps);
/// per class the InfoNCE over samples with temperature tau (default 1.0), both directions averaged,
///   L_k = 1/(2B) sum_i [ -log softmax_j(s^k_{ij} / tau)_i - log softmax_j(s^k_{ji} / tau)_i ],
/// and ASC = mean over k of L_k. One map per class rather than the single foreground map
/// 1 - p_background: with several foreground classes the single map cannot tell a structure from
/// its neighbour (a network that swaps two classes scores as well as one that agrees), while per-
/// class maps ask each structure to be where the other modality puts it. With one foreground class
/// p_1 = 1 - p_0, so binary tasks are unchanged. Needs a batch of at least two samples (one sample
/// has no negatives and the loss would be the constant 0: this is an error, not a silent zero).
public struct AreaSimilarityContrastiveLoss: Sendable {
    public var temperature: Double

    public init(temperature: Double = 1.0) { self.temperature = temperature }

    /// Area maps (K-1, B, N), one (B, N) slice per foreground class, from logits (B, K, spatial...)
    /// or from probabilities when `probabilities` is true.
    public func areaMaps(_ x: Tensor, probabilities: Bool = false) throws -> Tensor {
        let p = probabilities ? x : try F.softmax(x, dim: 1)
        let k = p.size(1)
        guard k >= 2 else { throw TorchError("ASC needs at least two classes, got \(k)") }
        let foreground = try p.narrow(dim: 1, start: 1, length: k - 1).flatten(from: 2)   // (B, K-1, N)
        return try foreground.transposed(0, 1).contiguous()                                // (K-1, B, N)
    }

    public func callAsFunction(_ a: Tensor, _ b: Tensor, aIsProbability: Bool = false, bIsProbability: Bool = false) throws -> Tensor {
        guard a.size(0) >= 2 else { throw TorchError("ASC needs at least two samples per batch, got \(a.size(0))") }
        guard a.shape == b.shape else { throw TorchError("ASC needs predictions of equal shape, got \(a.shape) and \(b.shape)") }
        // (K-1, B, B): one similarity matrix per class; infoNCE's mean over all rows is the mean
        // over classes of the per-class means (every class has B rows).
        let s = try softDiceSimilarity(areaMaps(a, probabilities: aIsProbability), areaMaps(b, probabilities: bIsProbability))
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
