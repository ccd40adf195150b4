import Torch

/// Shape of a U-Net: spatial rank (3 for volumes, 2 for the slice variant), stage widths, norm.
public struct UNetConfig: Codable, Sendable, Equatable {
    public var rank: Int
    public var widths: [Int]
    public var norm: NormKind
    /// Dropout probability applied to the bottleneck and decoder features (0 = none). PReL's
    /// stochastic passes need it > 0.
    public var dropout: Double

    public init(rank: Int = 3, widths: [Int] = [16, 32, 64, 128, 256], norm: NormKind = .instance, dropout: Double = 0) {
        self.rank = rank; self.widths = widths; self.norm = norm; self.dropout = dropout
    }

    /// The input size must be divisible by this along each axis.
    public var divisor: Int { 1 << (widths.count - 1) }
}

/// One encoder stage: two conv blocks, the first strided (except in stage 0) for downsampling.
public final class EncoderStage: Module {
    public let conv1: ConvNormAct
    public let conv2: ConvNormAct

    public init(rank: Int, _ inChannels: Int, _ outChannels: Int, downsample: Bool, norm: NormKind) throws {
        conv1 = try ConvNormAct(rank: rank, inChannels, outChannels, stride: downsample ? 2 : 1, norm: norm)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, norm: norm)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try conv2(conv1(x)) }
}

/// The U-Net encoder: returns every stage's output (the last one is the bottleneck).
public final class UNetEncoder: Module {
    public let stages: [EncoderStage]
    public let config: UNetConfig

    public init(inChannels: Int, config: UNetConfig) throws {
        var stages: [EncoderStage] = []
        var c = inChannels
        for (i, w) in config.widths.enumerated() {
            stages.append(try EncoderStage(rank: config.rank, c, w, downsample: i > 0, norm: config.norm))
            c = w
        }
        self.stages = stages
        self.config = config
        super.init()
    }

    public var bottleneckChannels: Int { config.widths.last! }

    public func callAsFunction(_ x: Tensor) throws -> [Tensor] {
        var features: [Tensor] = []
        var h = x
        for stage in stages {
            h = try stage(h)
            features.append(h)
        }
        return features
    }
}

/// One decoder stage: transposed-conv upsampling, concatenation with the skip, two conv blocks.
public final class DecoderStage: Module {
    public let up: ConvTransposeNd
    public let conv1: ConvNormAct
    public let conv2: ConvNormAct

    public init(rank: Int, _ inChannels: Int, skipChannels: Int, _ outChannels: Int, norm: NormKind) throws {
        up = try ConvTransposeNd(rank: rank, inChannels: inChannels, outChannels: outChannels, kernelSize: [2], stride: [2])
        conv1 = try ConvNormAct(rank: rank, outChannels + skipChannels, outChannels, norm: norm)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, norm: norm)
        super.init()
    }

    public func callAsFunction(_ x: Tensor, skip: Tensor) throws -> Tensor {
        try conv2(conv1(Tensor.cat([up(x), skip], dim: 1)))
    }
}

/// The U-Net decoder: from the encoder's features to class logits.
public final class UNetDecoder: Module {
    public let stages: [DecoderStage]
    public let head: ConvNd
    public let dropout: Double

    public init(numClasses: Int, config: UNetConfig) throws {
        let w = config.widths
        var stages: [DecoderStage] = []
        for i in stride(from: w.count - 1, to: 0, by: -1) {
            stages.append(try DecoderStage(rank: config.rank, w[i], skipChannels: w[i - 1], w[i - 1], norm: config.norm))
        }
        self.stages = stages
        head = try ConvNd(rank: config.rank, inChannels: w[0], outChannels: numClasses, kernelSize: [1])
        dropout = config.dropout
        super.init()
    }

    /// `features` as the encoder returns them; the last entry may be replaced (fusion adds to it).
    public func callAsFunction(_ features: [Tensor]) throws -> Tensor {
        var h = try F.dropout(features.last!, p: dropout, training: isTraining && dropout > 0)
        for (i, stage) in stages.enumerated() {
            h = try stage(h, skip: features[features.count - 2 - i])
            if dropout > 0 { h = try F.dropout(h, p: dropout, training: isTraining) }
        }
        return try head(h)
    }
}

/// A plain U-Net (encoder + decoder), the network of the supervised, mean-teacher and Semi-CML
/// methods. Parameter paths: `encoder.stages.0.conv1.conv.weight`, ..., `decoder.head.weight`.
public final class UNet: Module, Layer {
    public let encoder: UNetEncoder
    public let decoder: UNetDecoder
    public let config: UNetConfig

    public init(inChannels: Int, numClasses: Int, config: UNetConfig = UNetConfig()) throws {
        encoder = try UNetEncoder(inChannels: inChannels, config: config)
        decoder = try UNetDecoder(numClasses: numClasses, config: config)
        self.config = config
        super.init()
    }

    /// A 2D U-Net also takes volumes of single slices, (B, C, 1, H, W), and returns (B, K, 1, H, W):
    /// that is how the slice-wise variant trains on 3D data (patches of depth 1) and predicts
    /// (windows of depth 1).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if config.rank == 2 && x.rank == 5 {
            guard x.size(2) == 1 else { throw TorchError("a 2D U-Net takes slices: depth must be 1, got \(x.shape)") }
            return try decoder(encoder(x.squeeze(dim: 2))).unsqueeze(dim: 2)
        }
        return try decoder(encoder(x))
    }
}
