import Torch

/// Soft Dice similarity between every pair of rows of `a` (B, P, N) and `b` (B, Q, N):
///   s_{pq} = 2 <a_p, b_q> / (|a_p|^2 + |b_q|^2 + eps)      -> (B, P, Q)
/// One batched matmul; never materialises anything voxel-by-voxel per pair.
public func softDiceSimilarity(_ a: Tensor, _ b: Tensor, eps: Double = 1e-6) throws -> Tensor {
    let inner = try a.bmm(b.transposed(1, 2))                                  // (B, P, Q)
    let na = try a.square().sum(dims: [2]).unsqueeze(dim: 2)                   // (B, P, 1)
    let nb = try b.square().sum(dims: [2]).unsqueeze(dim: 1)                   // (B, 1, Q)
    return try inner * 2 / (na + nb + eps)
}

/// InfoNCE over a batch of square similarity matrices (B, P, P) whose diagonal holds the positives:
/// mean over rows of -log softmax(s / tau)_{ii}. With `symmetric`, the columns are anchors too and
/// the two directions are averaged.
public func infoNCE(similarity s: Tensor, temperature: Double, symmetric: Bool = true) throws -> Tensor {
    let (b, p) = (s.size(0), s.size(1))
    guard s.size(2) == p else { throw TorchError("InfoNCE needs square similarity matrices, got \(s.shape)") }
    let targets = try Tensor.arange(0, Double(p), dtype: .int64).unsqueeze(dim: 0).expand([b, p]).contiguous()
    let logits = try s / temperature
    // cross_entropy wants (N, C, ...): rows of each matrix are the class scores.
    let rows = try F.crossEntropy(logits.transposed(1, 2), target: targets)
    if !symmetric { return rows }
    let cols = try F.crossEntropy(logits, target: targets)
    return try (rows + cols) * 0.5
}
