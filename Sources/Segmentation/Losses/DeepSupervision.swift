import Torch

/// nnU-Net's deep supervision: one loss per decoder output, the full-resolution output first and
/// each further one at half the previous resolution, weighted 1, 1/2, 1/4, ... and normalised so the
/// weights sum to 1. The target is downsampled to each output's size by nearest-neighbour
/// sampling, which keeps class indices (and one-hot or soft labels) valid without blending classes.
///
/// With a single output this is exactly the base loss, so methods call it unconditionally.
public enum DeepSupervision {
    /// 1, 1/2, 1/4, ... for `count` outputs, normalised to sum 1.
    public static func weights(count: Int) -> [Double] {
        let raw = (0..<count).map { 1 / Double(1 << $0) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }

    /// `target` resampled (nearest) to the spatial size of `logits` (B, K, spatial...). Class maps
    /// (B, spatial...) stay int64; soft labels (B, K, spatial...) stay floating point.
    public static func target(_ target: Tensor, like logits: Tensor) throws -> Tensor {
        let size = Array(logits.shape.dropFirst(2))
        if target.dtype.isFloatingPoint {
            if Array(target.shape.dropFirst(2)) == size { return target }
            return try F.interpolate(target, size: size, mode: .nearest)
        }
        if Array(target.shape.dropFirst(1)) == size { return target }
        // libtorch interpolates floating-point channels only: class indices go through float32
        // (exact for any realistic number of classes) and come back as int64.
        let channel = try target.unsqueeze(dim: 1).to(.float32)
        return try F.interpolate(channel, size: size, mode: .nearest).squeeze(dim: 1).to(.int64)
    }

    /// sum_i w_i loss(outputs[i], target at outputs[i]'s size).
    public static func loss(_ outputs: [Tensor], target: Tensor, _ base: (Tensor, Tensor) throws -> Tensor) throws -> Tensor {
        guard !outputs.isEmpty else { throw TorchError("deep supervision: no outputs") }
        if outputs.count == 1 { return try base(outputs[0], target) }
        let w = weights(count: outputs.count)
        var total: Tensor? = nil
        for (i, logits) in outputs.enumerated() {
            let term = try base(logits, Self.target(target, like: logits)) * w[i]
            total = try total.map { try $0 + term } ?? term
        }
        return total!
    }
}

extension DiceCELoss {
    /// The supervised loss over a network's outputs (full resolution first, then the deep
    /// supervision outputs); a single output gives the plain Dice + CE.
    public func callAsFunction(outputs: [Tensor], target: Tensor) throws -> Tensor {
        try DeepSupervision.loss(outputs, target: target) { try self(logits: $0, target: $1) }
    }
}

/// The first `n` samples of every output (the labelled part of a labelled + unlabelled batch).
func labeledPart(_ outputs: [Tensor], _ n: Int) throws -> [Tensor] {
    try outputs.map { try $0.narrow(dim: 0, start: 0, length: n) }
}
