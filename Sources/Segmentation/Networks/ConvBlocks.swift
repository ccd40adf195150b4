import Torch

/// Normalisation layer choice for the U-Net family.
public enum NormKind: String, Codable, Sendable, CaseIterable {
    case instance, batch, group

    func make(_ channels: Int) throws -> any Layer {
        switch self {
        case .instance: try InstanceNorm(channels)
        case .batch: try BatchNorm(channels)
        case .group: try GroupNorm(groups: Swift.min(8, channels), channels: channels)
        }
    }
}

/// conv (3^n, padding 1) -> norm -> LeakyReLU(0.01), nnU-Net's basic block.
/// State-dict paths: `conv.weight`, `conv.bias`, `norm.weight`, `norm.bias`.
public final class ConvNormAct: Module, Layer, @unchecked Sendable {
    public let conv: ConvNd
    public let norm: any Layer
    public let slope: Double

    public init(rank: Int, _ inChannels: Int, _ outChannels: Int, stride: Int = 1, norm: NormKind = .instance,
                kernelSize: Int = 3, slope: Double = 0.01) throws {
        conv = try ConvNd(rank: rank, inChannels: inChannels, outChannels: outChannels, kernelSize: [kernelSize],
                          stride: [stride], padding: [kernelSize / 2])
        self.norm = try norm.make(outChannels)
        self.slope = slope
        super.init()
    }

    /// Per-axis stride and kernel size (padding k/2 per axis).
    public init(rank: Int, _ inChannels: Int, _ outChannels: Int, strides: [Int], norm: NormKind = .instance,
                kernelSizes: [Int], slope: Double = 0.01) throws {
        conv = try ConvNd(rank: rank, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSizes,
                          stride: strides, padding: kernelSizes.map { $0 / 2 })
        self.norm = try norm.make(outChannels)
        self.slope = slope
        super.init()
    }

    public override func children() -> [(String, Any)] { [("conv", conv), ("norm", norm as Module)] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.leakyRelu(norm(conv(x)), slope: slope)
    }
}
