import Torch

/// CMC's MIA (modality-independent aware) channel attention on a bottleneck feature F (C x N per
/// sample), the channel attention of DANet:
///   E = F F^T (C x C),  A = softmax(rowmax(E) - E) over the last axis,  out = gamma (A F) + F
/// with gamma learnable and initialised to 0, so the block starts as the identity.
public final class ModalityChannelAttention: Module, Layer, @unchecked Sendable {
    public let gamma: Parameter

    public override init() {
        gamma = try! Parameter(Tensor.zeros([1]))
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let shape = x.shape
        let f = try x.flatten(from: 2)                                     // (B, C, N)
        let energy = try f.bmm(f.transposed(1, 2))                          // (B, C, C)
        let inverted = try energy.max(dims: [2], keepDims: true) - energy
        let attention = try F.softmax(inverted, dim: 2)
        let attended = try attention.bmm(f).reshape(shape)
        return try attended * gamma.value + x
    }
}
