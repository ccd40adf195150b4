import Torch

/// Soft Dice loss on softmax probabilities, per sample and class:
///   dice_{b,k} = (2 sum(p y) + smooth) / (sum p + sum y + smooth),  loss = 1 - mean_{b,k} dice_{b,k}
/// `target` is either int64 class indices (B, spatial...) or class probabilities shaped like the
/// logits (soft labels, PReL). `smooth` 1e-5 as in docs/methods.md (1.1). With `includeBackground` false class 0
/// is left out of the mean (nnU-Net style); default true (MONAI's default).
public struct DiceLoss: Sendable {
    public var smooth: Double
    public var includeBackground: Bool

    public init(smooth: Double = 1e-5, includeBackground: Bool = true) {
        self.smooth = smooth; self.includeBackground = includeBackground
    }

    public func callAsFunction(logits: Tensor, target: Tensor) throws -> Tensor {
        try callAsFunction(probabilities: F.softmax(logits, dim: 1), target: target)
    }

    public func callAsFunction(probabilities p: Tensor, target: Tensor) throws -> Tensor {
        let classes = p.size(1)
        let y = try oneHotTarget(target, classes: classes, like: p)
        let dims = Array(2..<p.rank)
        let intersection = try (p * y).sum(dims: dims)
        let denominator = try p.sum(dims: dims) + y.sum(dims: dims)
        var dice = try (intersection * 2 + smooth) / (denominator + smooth)   // (B, K)
        if !includeBackground && classes > 1 { dice = try dice.narrow(dim: 1, start: 1, length: classes - 1) }
        return try 1 - dice.mean()
    }
}

/// Class indices (B, spatial...) -> one-hot float (B, K, spatial...); probabilities pass through.
func oneHotTarget(_ target: Tensor, classes: Int, like p: Tensor) throws -> Tensor {
    if target.dtype.isFloatingPoint {
        guard target.shape == p.shape else { throw TorchError("soft target shape \(target.shape) differs from prediction \(p.shape)") }
        return target
    }
    let hot = try F.oneHot(target.to(.int64), numClasses: classes)          // (B, spatial..., K)
    let rank = hot.rank
    return try hot.permute([0, rank - 1] + Array(1..<(rank - 1))).to(p.dtype)
}

/// Dice + cross-entropy (both mean-reduced), the supervised loss of every method.
public struct DiceCELoss: Sendable {
    public var dice: DiceLoss
    public var diceWeight: Double, ceWeight: Double

    public init(dice: DiceLoss = DiceLoss(), diceWeight: Double = 1, ceWeight: Double = 1) {
        self.dice = dice; self.diceWeight = diceWeight; self.ceWeight = ceWeight
    }

    public func callAsFunction(logits: Tensor, target: Tensor) throws -> Tensor {
        let ce = try F.crossEntropy(logits, target: target.dtype.isFloatingPoint ? target : target.to(.int64))
        return try dice(logits: logits, target: target) * diceWeight + ce * ceWeight
    }
}
