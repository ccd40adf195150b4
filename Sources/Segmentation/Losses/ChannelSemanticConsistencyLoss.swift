import Torch

/// CMC's channel-wise semantic consistency loss L_CSC (docs/methods.md, 1.1).
///
/// Each bottleneck channel c of modality m gives an embedding v_{m,c}: the channel's feature map
/// adaptively average-pooled to a small grid (default 4^3, cheap and tolerant to misalignment
/// within a cell), flattened and L2-normalised. For a modality pair the 2C embeddings of one
/// sample are compared in one normalised matmul (2C x 2C, NT-Xent): the positive of channel c is
/// the same channel in the other modality, all other channels (of both modalities) are negatives,
/// self-similarity is excluded. Symmetric by construction (every row is an anchor); averaged over
/// samples and modality pairs. Memory is O(B C^2 + B C g^3): at a 128^3 patch with 256 bottleneck
/// channels this is well under a megabyte beyond the features themselves.
///
/// In unpaired mode (different patients per modality) the same computation runs on the pooled
/// embeddings of the two cases drawn for one batch element.
public struct ChannelSemanticConsistencyLoss: Sendable {
    public var temperature: Double
    public var grid: Int

    public init(temperature: Double = 0.5, grid: Int = 4) { self.temperature = temperature; self.grid = grid }

    /// Pooled, normalised channel embeddings: (B, C, spatial) -> (B, C, grid^rank).
    public func embeddings(_ features: Tensor) throws -> Tensor {
        let rank = features.rank - 2
        let pooled = try F.adaptiveAvgPool(features, outputSize: Array(repeating: grid, count: rank))
        let flat = try pooled.flatten(from: 2)
        return try flat / (flat.norm(dims: [2], keepDims: true) + 1e-8)
    }

    /// Loss for a pair of bottleneck features (B, C, spatial...) of two modalities.
    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.shape[0] == b.shape[0], a.shape[1] == b.shape[1] else {
            throw TorchError("CSC needs the same batch and channel count, got \(a.shape) and \(b.shape)")
        }
        let c = a.size(1)
        let z = try Tensor.cat([embeddings(a), embeddings(b)], dim: 1)         // (B, 2C, G)
        var s = try z.bmm(z.transposed(1, 2)) / temperature                     // (B, 2C, 2C)
        let eye = try Tensor.arange(0, Double(2 * c), dtype: .int64)
        let diagonal = try eye.unsqueeze(dim: 1).eq(eye.unsqueeze(dim: 0))
        s = try s.maskedFill(diagonal, value: -1e9)
        // Positive of row i is i + C (mod 2C).
        let positives = try Tensor((0..<(2 * c)).map { Int64(($0 + c) % (2 * c)) }, shape: [1, 2 * c])
            .expand([a.size(0), 2 * c]).contiguous()
        return try F.crossEntropy(s.transposed(1, 2), target: positives)
    }

    /// Mean over all modality pairs.
    public func callAsFunction(_ features: [Tensor]) throws -> Tensor {
        try meanOverPairs(features.count) { i, j in try self(features[i], features[j]) }
    }
}

/// Averages `term(i, j)` over the unordered pairs i < j of `count` modalities.
func meanOverPairs(_ count: Int, _ term: (Int, Int) throws -> Tensor) throws -> Tensor {
    guard count >= 2 else { throw TorchError("a cross-modality loss needs at least two modalities") }
    var total: Tensor? = nil
    var pairs = 0
    for i in 0..<count { for j in (i + 1)..<count {
        let t = try term(i, j)
        total = try total.map { try $0 + t } ?? t
        pairs += 1
    } }
    return try total! / Double(pairs)
}
