import Torch

/// Soft Dice loss on softmax probabilities, per sample and class:
///   dice_{b,k} = (2 sum(p y) + smooth) / (sum p + sum y + smooth),  loss = 1 - mean_{b,k} dice_{b,k}
/// or, with `batch` (nnU-Net's "batch Dice"), per class over the whole batch as one volume:
///   dice_k = (2 sum_{b,x}(p y) + smooth) / (sum_{b,x} p + sum_{b,x} y + smooth),  loss = 1 - mean_k dice_k.
/// Why batch Dice exists: a class absent from one patch (a small lesion) has per-sample Dice
/// smooth / (sum p + smooth), which punishes any probability mass on it as a complete miss and
/// swings between 0 and 1 from patch to patch; over the batch the class is usually present
/// somewhere and the term measures overlap. Its sums couple the samples of a batch, so a
/// data-parallel run with batch Dice is not the one-process run with the summed batch.
/// `target` is either int64 class indices (B, spatial...) or class probabilities shaped like the
/// logits (soft labels, PReL). `smooth` 1e-5 as in docs/methods.md (1.1). With `includeBackground` false class 0
/// is left out of the mean (nnU-Net style); default true (MONAI's default).
public struct DiceLoss: Sendable {
    public var smooth: Double
    public var includeBackground: Bool
    public var batch: Bool

    public init(smooth: Double = 1e-5, includeBackground: Bool = true, batch: Bool = false) {
        self.smooth = smooth; self.includeBackground = includeBackground; self.batch = batch
    }

    public func callAsFunction(logits: Tensor, target: Tensor) throws -> Tensor {
        try callAsFunction(probabilities: F.softmax(logits, dim: 1), target: target)
    }

    public func callAsFunction(probabilities p: Tensor, target: Tensor) throws -> Tensor {
        let classes = p.size(1)
        let y = try oneHotTarget(target, classes: classes, like: p)
        let dims = batch ? [0] + Array(2..<p.rank) : Array(2..<p.rank)
        let intersection = try (p * y).sum(dims: dims)
        let denominator = try p.sum(dims: dims) + y.sum(dims: dims)
        var dice = try (intersection * 2 + smooth) / (denominator + smooth)   // (B, K), or (K) with batch
        let classDim = batch ? 0 : 1
        if !includeBackground && classes > 1 { dice = try dice.narrow(dim: classDim, start: 1, length: classes - 1) }
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
