import Foundation

/// Uniform initialisation in [-bound, bound] from libtorch's seeded generator.
func uniform(_ shape: [Int], bound: Double) throws -> Tensor {
    try withNoGrad { try Tensor.rand(shape) * (2 * bound) - bound }
}

/// PyTorch's default for Linear/Conv: kaiming_uniform(a = sqrt(5)) on the weight, which is
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
func defaultInit(weightShape: [Int], fanIn: Int, bias: Bool) throws -> (Parameter, Parameter?) {
    let bound = 1 / Double(Swift.max(fanIn, 1)).squareRoot()
    let w = try Parameter(uniform(weightShape, bound: bound))
    let b = bias ? try Parameter(uniform([weightShape[0]], bound: bound)) : nil
    return (w, b)
}

public final class Linear: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter?

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        (weight, self.bias) = try defaultInit(weightShape: [outFeatures, inFeatures], fanIn: inFeatures, bias: bias)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.linear(x, weight: weight.value, bias: bias?.value) }
}

/// Convolution of spatial rank 1-3 (`Conv3d`, `Conv2d` are this with rank fixed).
public class ConvNd: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: [Int], padding: [Int], dilation: [Int], groups: Int

    public init(rank: Int, inChannels: Int, outChannels: Int, kernelSize: [Int], stride: [Int] = [1],
                padding: [Int] = [0], dilation: [Int] = [1], groups: Int = 1, bias: Bool = true) throws {
        let k = kernelSize.count == 1 ? Array(repeating: kernelSize[0], count: rank) : kernelSize
        guard k.count == rank, inChannels % groups == 0, outChannels % groups == 0 else {
            throw TorchError("invalid convolution: kernel \(kernelSize) for rank \(rank), channels \(inChannels)->\(outChannels), groups \(groups)")
        }
        let fanIn = inChannels / groups * k.reduce(1, *)
        (weight, self.bias) = try defaultInit(weightShape: [outChannels, inChannels / groups] + k, fanIn: fanIn, bias: bias)
        self.stride = stride; self.padding = padding; self.dilation = dilation; self.groups = groups
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.conv(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

public final class Conv3d: ConvNd, @unchecked Sendable {
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 3, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) throws {
        try super.init(rank: 3, inChannels: inChannels, outChannels: outChannels, kernelSize: [kernelSize], stride: [stride],
                       padding: [padding], dilation: [dilation], groups: groups, bias: bias)
    }
}

public final class Conv2d: ConvNd, @unchecked Sendable {
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 3, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) throws {
        try super.init(rank: 2, inChannels: inChannels, outChannels: outChannels, kernelSize: [kernelSize], stride: [stride],
                       padding: [padding], dilation: [dilation], groups: groups, bias: bias)
    }
}

/// Transposed convolution; weight shape (C_in, C_out / groups, k...) as in PyTorch.
public class ConvTransposeNd: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: [Int], padding: [Int], outputPadding: [Int], groups: Int

    public init(rank: Int, inChannels: Int, outChannels: Int, kernelSize: [Int], stride: [Int] = [1],
                padding: [Int] = [0], outputPadding: [Int] = [0], groups: Int = 1, bias: Bool = true) throws {
        let k = kernelSize.count == 1 ? Array(repeating: kernelSize[0], count: rank) : kernelSize
        guard k.count == rank, inChannels % groups == 0, outChannels % groups == 0 else {
            throw TorchError("invalid transposed convolution: kernel \(kernelSize) for rank \(rank)")
        }
        // PyTorch computes fan_in from dim 1 of the weight, i.e. C_out / groups * prod(k).
        let fanIn = outChannels / groups * k.reduce(1, *)
        let bound = 1 / Double(fanIn).squareRoot()
        weight = try Parameter(uniform([inChannels, outChannels / groups] + k, bound: bound))
        self.bias = bias ? try Parameter(uniform([outChannels], bound: bound)) : nil
        self.stride = stride; self.padding = padding; self.outputPadding = outputPadding; self.groups = groups
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.convTranspose(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                            outputPadding: outputPadding, groups: groups)
    }
}

public final class ConvTranspose3d: ConvTransposeNd, @unchecked Sendable {
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 2, stride: Int = 2, padding: Int = 0, bias: Bool = true) throws {
        try super.init(rank: 3, inChannels: inChannels, outChannels: outChannels, kernelSize: [kernelSize],
                       stride: [stride], padding: [padding], bias: bias)
    }
}

public final class ConvTranspose2d: ConvTransposeNd, @unchecked Sendable {
    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 2, stride: Int = 2, padding: Int = 0, bias: Bool = true) throws {
        try super.init(rank: 2, inChannels: inChannels, outChannels: outChannels, kernelSize: [kernelSize],
                       stride: [stride], padding: [padding], bias: bias)
    }
}

/// Batch normalisation for any spatial rank (BatchNorm1d/2d/3d), with PyTorch's buffers.
public final class BatchNorm: Module, Layer, @unchecked Sendable {
    public let weight: Parameter?
    public let bias: Parameter?
    public let running_mean: Buffer
    public let running_var: Buffer
    public let num_batches_tracked: Buffer
    public let momentum: Double, eps: Double

    public init(_ features: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true) throws {
        weight = affine ? try Parameter(.ones([features])) : nil
        bias = affine ? try Parameter(.zeros([features])) : nil
        running_mean = Buffer(try .zeros([features]))
        running_var = Buffer(try .ones([features]))
        num_batches_tracked = Buffer(try .zeros([], dtype: .int64))
        self.momentum = momentum; self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if isTraining { try num_batches_tracked.value.add_(1) }
        return try F.batchNorm(x, weight: weight?.value, bias: bias?.value, runningMean: running_mean.value,
                               runningVar: running_var.value, training: isTraining, momentum: momentum, eps: eps)
    }
}

/// Instance normalisation (per sample and channel statistics, no running stats), as
/// nn.InstanceNorm3d(affine: true) which nnU-Net uses.
public final class InstanceNorm: Module, Layer, @unchecked Sendable {
    public let weight: Parameter?
    public let bias: Parameter?
    public let eps: Double

    public init(_ features: Int, eps: Double = 1e-5, affine: Bool = true) throws {
        weight = affine ? try Parameter(.ones([features])) : nil
        bias = affine ? try Parameter(.zeros([features])) : nil
        self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.instanceNorm(x, weight: weight?.value, bias: bias?.value, eps: eps) }
}

public final class GroupNorm: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let groups: Int, eps: Double

    public init(groups: Int, channels: Int, eps: Double = 1e-5) throws {
        guard channels % groups == 0 else { throw TorchError("GroupNorm: \(channels) channels do not split into \(groups) groups") }
        weight = try Parameter(.ones([channels]))
        bias = try Parameter(.zeros([channels]))
        self.groups = groups; self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.groupNorm(x, groups: groups, weight: weight.value, bias: bias.value, eps: eps) }
}

public final class LayerNorm: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let shape: [Int], eps: Double

    public init(_ shape: [Int], eps: Double = 1e-5) throws {
        weight = try Parameter(.ones(shape))
        bias = try Parameter(.zeros(shape))
        self.shape = shape; self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.layerNorm(x, normalizedShape: shape, weight: weight.value, bias: bias.value, eps: eps)
    }
}

public final class Dropout: Module, Layer, @unchecked Sendable {
    public let p: Double
    public init(p: Double = 0.5) { self.p = p; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { p == 0 ? x : try F.dropout(x, p: p, training: isTraining) }
}

public final class LeakyReLU: Module, Layer, @unchecked Sendable {
    public let slope: Double
    public init(slope: Double = 0.01) { self.slope = slope; super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.leakyRelu(x, slope: slope) }
}

public final class ReLU: Module, Layer, @unchecked Sendable {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.relu(x) }
}

public final class GELU: Module, Layer, @unchecked Sendable {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.gelu(x) }
}

/// Layers applied in order; parameters are named "0.weight", "1.bias", ... as nn.Sequential.
public final class Sequential: Module, Layer, @unchecked Sendable {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers; super.init() }

    public override func children() -> [(String, Any)] {
        layers.enumerated().map { ("\($0.offset)", $0.element as Module) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1($0) }
    }
}
