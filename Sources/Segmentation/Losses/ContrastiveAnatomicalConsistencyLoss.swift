import Torch

/// CMC's contrastive consistent learning loss L_CAC on unlabelled data (docs/methods.md, 1.1).
///
/// For each foreground class k the region maps p_{m,k} (softmax probabilities, optionally average-
/// pooled by `pool` per axis to tolerate misalignment; default 2) of two modalities should agree:
/// similarity s = soft Dice, positive (p_{1,k}, p_{2,k}), negatives (p_{1,k}, p_{2,j}), j != k,
/// InfoNCE over classes with temperature tau (default 0.5), both directions averaged, then the mean
/// over samples and modality pairs. It decreases as the modalities agree class by class.
///
/// Unpaired mode (modalities from different patients): voxel correspondence is meaningless, so
/// the region maps are adaptively pooled to a coarse `grid`^3 layout first (set `grid`), which
/// compares where each structure lies and how large it is, not its voxels.
///
/// With only one foreground class (binary tasks) an InfoNCE over one class is constant, so the
/// background class is included as a second region in that case.
public struct ContrastiveAnatomicalConsistencyLoss: Sendable {
    public var temperature: Double
    public var pool: Int
    /// When set, region maps are adaptively pooled to this many cells per axis (unpaired mode).
    public var grid: Int?

    public init(temperature: Double = 0.5, pool: Int = 2, grid: Int? = nil) {
        self.temperature = temperature; self.pool = pool; self.grid = grid
    }

    /// Region maps (B, K', N) from logits (B, K, spatial...).
    public func regions(logits: Tensor) throws -> Tensor {
        var p = try F.softmax(logits, dim: 1)
        if let grid { p = try F.adaptiveAvgPool(p, outputSize: [grid]) }
        else if pool > 1 { p = try F.avgPool(p, kernel: [pool]) }
        let k = p.size(1)
        let foreground = k > 2 ? try p.narrow(dim: 1, start: 1, length: k - 1) : p
        return try foreground.flatten(from: 2)
    }

    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.shape == b.shape else { throw TorchError("CAC needs predictions of equal shape, got \(a.shape) and \(b.shape)") }
        let s = try softDiceSimilarity(regions(logits: a), regions(logits: b))
        return try infoNCE(similarity: s, temperature: temperature)
    }

    /// Mean over modality pairs of per-modality logits.
    public func callAsFunction(_ logits: [Tensor]) throws -> Tensor {
        try meanOverPairs(logits.count) { i, j in try self(logits[i], logits[j]) }
    }
}
