import Torch

/// Which encoder feeds the U-Net decoder.
public enum EncoderKind: String, Codable, Sendable, CaseIterable {
    /// The convolutional U-Net encoder (nnU-Net style).
    case unet
    /// A ViT-3D (SAM-Med3D layout) with UNETR-style projections to the skip resolutions.
    case vit
}

/// How a new network's convolutions are initialised.
public enum WeightInitialization: String, Codable, Sendable, CaseIterable {
    /// nnU-Net's He initialisation (`Initialization.he`, LeakyReLU slope 1e-2, zero biases).
    case he
    /// PyTorch's layer defaults (kaiming_uniform with a = sqrt(5)), as the public CMC code has.
    case pytorch
}

/// Shape of a U-Net: spatial rank (3 for volumes, 2 for the slice variant), stage widths, norm,
/// which encoder, and whether the decoder also emits deep-supervision outputs.
public struct UNetConfig: Codable, Sendable, Equatable {
    public var rank: Int
    public var widths: [Int]
    public var norm: NormKind
    /// Dropout probability applied to the bottleneck and decoder features (0 = none). PReL's
    /// stochastic passes need it > 0.
    public var dropout: Double
    /// nnU-Net's deep supervision: 1x1 heads on the decoder stages below full resolution (all but
    /// the lowest-resolution one) whose logits join the supervised loss with weights 1/2, 1/4, ...
    /// Prediction always uses the full-resolution head only. Needs at least 4 stages.
    public var deepSupervision: Bool
    /// `unet` (default) or `vit` (settings in `vit`, 3D only).
    public var encoder: EncoderKind
    public var vit: ViTConfig
    /// `he` (default, nnU-Net's) or `pytorch` (PyTorch's layer defaults). With PyTorch's default a
    /// narrow network (8 channels at full resolution) failed to learn some classes at some seeds.
    /// Applies to the convolutional encoder, the decoder and CMC's fusion layers; a ViT encoder
    /// keeps its own (SAM-Med3D's) initialisation.
    public var initialization: WeightInitialization
    /// Per-axis downsampling of each stage after the first, in tensor axis order (D, H, W in 3D):
    /// `strides[i]` is the stride of stage i + 1's first convolution, and the decoder upsamples by
    /// it. Empty = 2 along every axis (the cubic U-Net). A stride of 1 along an axis keeps that
    /// axis's resolution (an anisotropic axis is pooled later, as nnU-Net plans it).
    public var strides: [[Int]]
    /// Per-axis kernel size of each stage's convolutions (encoder stage i and the decoder stage at
    /// its resolution), odd sizes, padding k/2. Empty = 3 along every axis. A kernel of 1 along a
    /// coarse axis avoids mixing slices that are far apart.
    public var kernels: [[Int]]

    public init(rank: Int = 3, widths: [Int] = [16, 32, 64, 128, 256], norm: NormKind = .instance, dropout: Double = 0,
                deepSupervision: Bool = false, encoder: EncoderKind = .unet, vit: ViTConfig = ViTConfig(),
                initialization: WeightInitialization = .he, strides: [[Int]] = [], kernels: [[Int]] = []) {
        self.rank = rank; self.widths = widths; self.norm = norm; self.dropout = dropout
        self.deepSupervision = deepSupervision; self.encoder = encoder; self.vit = vit; self.initialization = initialization
        self.strides = strides; self.kernels = kernels
    }

    enum CodingKeys: String, CodingKey { case rank, widths, norm, dropout, deepSupervision, encoder, vit, initialization, strides, kernels }

    /// Stride of stage `stage` (>= 1) per axis.
    public func stride(ofStage stage: Int) -> [Int] {
        strides.isEmpty ? Array(repeating: 2, count: rank) : strides[stage - 1]
    }

    /// Kernel size of stage `stage` per axis.
    public func kernel(ofStage stage: Int) -> [Int] {
        kernels.isEmpty ? Array(repeating: 3, count: rank) : kernels[stage]
    }

    /// Inconsistencies between `strides`, `kernels`, `widths` and `rank` (empty when none).
    public func topologyProblems() -> [String] {
        var out: [String] = []
        if !strides.isEmpty {
            if encoder == .vit { out.append("unet.strides applies to the convolutional encoder, not to unet.encoder vit") }
            if strides.count != widths.count - 1 { out.append("unet.strides has \(strides.count) entries; \(widths.count) stages (unet.widths) need \(widths.count - 1)") }
            if let bad = strides.first(where: { $0.count != rank || $0.contains { $0 < 1 } }) {
                out.append("unet.strides entry \(bad) must have \(rank) values >= 1")
            }
        }
        if !kernels.isEmpty {
            if encoder == .vit { out.append("unet.kernels applies to the convolutional encoder, not to unet.encoder vit") }
            if kernels.count != widths.count { out.append("unet.kernels has \(kernels.count) entries; \(widths.count) stages (unet.widths) need \(widths.count)") }
            if let bad = kernels.first(where: { $0.count != rank || $0.contains { $0 < 1 || $0 % 2 == 0 } }) {
                out.append("unet.kernels entry \(bad) must have \(rank) odd values >= 1")
            }
        }
        return out
    }

    // Files written before a key existed are read through `SettingsDecoding` (over the defaults),
    // so the synthesized decoder can stay strict.

    /// The input size must be divisible by this along each axis (the largest of `divisors`).
    public var divisor: Int { divisors.max() ?? 1 }

    /// Per axis, what the input size must be divisible by: the product of the strides along it
    /// (2^(stages-1) without `strides`); with the ViT encoder also its patch.
    public var divisors: [Int] {
        if encoder == .vit { return Array(repeating: Swift.max(1 << (widths.count - 1), vit.patch), count: rank) }
        guard strides.count == widths.count - 1 else { return Array(repeating: 1 << (widths.count - 1), count: rank) }
        return (0..<rank).map { a in strides.reduce(1) { $0 * ($1.count == rank ? $1[a] : 2) } }
    }

    /// Applies `initialization` to a freshly built network, in this order: the encoders (only
    /// convolutional ones: a ViT encoder keeps its reference SAM-Med3D initialisation, which
    /// pretrained weights replace anyway), then every other part. `pytorch` leaves the layers'
    /// own defaults.
    func initialize(encoders: [Module], others: [Module]) throws {
        guard initialization == .he else { return }
        if encoder == .unet { for e in encoders { try Initialization.he(e) } }
        for m in others { try Initialization.he(m) }
    }

    /// Number of deep-supervision outputs besides the full-resolution one.
    public var auxiliaryOutputs: Int { deepSupervision ? Swift.max(widths.count - 3, 0) : 0 }
}

/// What a U-Net decoder consumes: per stage a feature map, full resolution first, each next one
/// at half the resolution with `widths[i]` channels; the last is the bottleneck.
public protocol FeatureEncoder: Module {
    func callAsFunction(_ x: Tensor) throws -> [Tensor]
}

/// The encoder a config asks for.
public func makeEncoder(inChannels: Int, config: UNetConfig) throws -> any FeatureEncoder {
    switch config.encoder {
    case .unet: return try UNetEncoder(inChannels: inChannels, config: config)
    case .vit: return try ViTUNetEncoder(inChannels: inChannels, config: config)
    }
}

/// One encoder stage: two conv blocks, the first strided (except in stage 0) for downsampling.
public final class EncoderStage: Module, @unchecked Sendable {
    public let conv1: ConvNormAct
    public let conv2: ConvNormAct

    public init(rank: Int, _ inChannels: Int, _ outChannels: Int, downsample: Bool, norm: NormKind) throws {
        conv1 = try ConvNormAct(rank: rank, inChannels, outChannels, stride: downsample ? 2 : 1, norm: norm)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, norm: norm)
        super.init()
    }

    /// A stage with per-axis stride (all 1 for stage 0) and kernel size.
    public init(rank: Int, _ inChannels: Int, _ outChannels: Int, strides: [Int], kernels: [Int], norm: NormKind) throws {
        conv1 = try ConvNormAct(rank: rank, inChannels, outChannels, strides: strides, norm: norm, kernelSizes: kernels)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, strides: Array(repeating: 1, count: rank), norm: norm, kernelSizes: kernels)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try conv2(conv1(x)) }
}

/// The U-Net encoder: returns every stage's output (the last one is the bottleneck).
public final class UNetEncoder: Module, FeatureEncoder, @unchecked Sendable {
    public let stages: [EncoderStage]
    public let config: UNetConfig

    public init(inChannels: Int, config: UNetConfig) throws {
        var stages: [EncoderStage] = []
        var c = inChannels
        let perAxis = !config.strides.isEmpty || !config.kernels.isEmpty
        for (i, w) in config.widths.enumerated() {
            if perAxis {
                let stride = i == 0 ? Array(repeating: 1, count: config.rank) : config.stride(ofStage: i)
                stages.append(try EncoderStage(rank: config.rank, c, w, strides: stride, kernels: config.kernel(ofStage: i), norm: config.norm))
            } else {
                stages.append(try EncoderStage(rank: config.rank, c, w, downsample: i > 0, norm: config.norm))
            }
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
public final class DecoderStage: Module, @unchecked Sendable {
    public let up: ConvTransposeNd
    public let conv1: ConvNormAct
    public let conv2: ConvNormAct

    public init(rank: Int, _ inChannels: Int, skipChannels: Int, _ outChannels: Int, norm: NormKind) throws {
        up = try ConvTransposeNd(rank: rank, inChannels: inChannels, outChannels: outChannels, kernelSize: [2], stride: [2])
        conv1 = try ConvNormAct(rank: rank, outChannels + skipChannels, outChannels, norm: norm)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, norm: norm)
        super.init()
    }

    /// A stage that upsamples by `strides` per axis (transposed conv of that kernel and stride)
    /// and convolves with `kernels`.
    public init(rank: Int, _ inChannels: Int, skipChannels: Int, _ outChannels: Int, strides: [Int], kernels: [Int], norm: NormKind) throws {
        up = try ConvTransposeNd(rank: rank, inChannels: inChannels, outChannels: outChannels, kernelSize: strides, stride: strides)
        let one = Array(repeating: 1, count: rank)
        conv1 = try ConvNormAct(rank: rank, outChannels + skipChannels, outChannels, strides: one, norm: norm, kernelSizes: kernels)
        conv2 = try ConvNormAct(rank: rank, outChannels, outChannels, strides: one, norm: norm, kernelSizes: kernels)
        super.init()
    }

    public func callAsFunction(_ x: Tensor, skip: Tensor) throws -> Tensor {
        try conv2(conv1(Tensor.cat([up(x), skip], dim: 1)))
    }
}

/// The U-Net decoder: from the encoder's features to class logits.
///
/// With deep supervision, `auxiliary_heads.k` (a 1x1 conv) reads the decoder stage at 1/2^(k+1)
/// of the full resolution, k = 0 ..< stages - 3: every decoder output except the lowest-resolution
/// one, as nnU-Net (which gives that one weight 0). Without it the parameters are exactly those of
/// the plain decoder.
public final class UNetDecoder: Module, @unchecked Sendable {
    public let stages: [DecoderStage]
    public let head: ConvNd
    public let auxiliary_heads: [ConvNd]
    public let dropout: Double

    public init(numClasses: Int, config: UNetConfig) throws {
        let w = config.widths
        var stages: [DecoderStage] = []
        let perAxis = !config.strides.isEmpty || !config.kernels.isEmpty
        for i in stride(from: w.count - 1, to: 0, by: -1) {
            if perAxis {
                stages.append(try DecoderStage(rank: config.rank, w[i], skipChannels: w[i - 1], w[i - 1], strides: config.stride(ofStage: i),
                                               kernels: config.kernel(ofStage: i - 1), norm: config.norm))
            } else {
                stages.append(try DecoderStage(rank: config.rank, w[i], skipChannels: w[i - 1], w[i - 1], norm: config.norm))
            }
        }
        self.stages = stages
        head = try ConvNd(rank: config.rank, inChannels: w[0], outChannels: numClasses, kernelSize: [1])
        auxiliary_heads = try (0..<config.auxiliaryOutputs).map {
            try ConvNd(rank: config.rank, inChannels: w[$0 + 1], outChannels: numClasses, kernelSize: [1])
        }
        dropout = config.dropout
        super.init()
    }

    /// `features` as the encoder returns them; the last entry may be replaced (fusion adds to it).
    /// The full-resolution logits only.
    public func callAsFunction(_ features: [Tensor]) throws -> Tensor {
        try outputs(features, auxiliary: false)[0]
    }

    /// Full-resolution logits first, then (with `auxiliary` and deep supervision on) the auxiliary
    /// logits from the finest to the coarsest, each at its stage's resolution.
    public func outputs(_ features: [Tensor], auxiliary: Bool = true) throws -> [Tensor] {
        var h = try F.dropout(features.last!, p: dropout, training: isTraining && dropout > 0)
        var extra = [Tensor?](repeating: nil, count: auxiliary ? auxiliary_heads.count : 0)
        for (i, stage) in stages.enumerated() {
            h = try stage(h, skip: features[features.count - 2 - i])
            if dropout > 0 { h = try F.dropout(h, p: dropout, training: isTraining) }
            // Stage i sits 2^level below full resolution; level k + 1 feeds auxiliary head k.
            let level = stages.count - 1 - i
            if level >= 1 && level <= extra.count { extra[level - 1] = try auxiliary_heads[level - 1](h) }
        }
        return [try head(h)] + extra.map { $0! }
    }
}

/// A plain U-Net (encoder + decoder), the network of the supervised, mean-teacher and Semi-CML
/// methods. Parameter paths: `encoder.stages.0.conv1.conv.weight`, ..., `decoder.head.weight`
/// (with the ViT encoder: `encoder.vit.blocks.0...`, `encoder.stem...`, `encoder.projections...`).
public final class UNet: Module, Layer, MixedPrecisionNetwork, @unchecked Sendable {
    public let encoder: any FeatureEncoder
    public let decoder: UNetDecoder
    public let config: UNetConfig
    /// Autocast policy of the forward pass (`MixedPrecision`); nil = float32.
    public var mixedPrecision: MixedPrecision?

    public init(inChannels: Int, numClasses: Int, config: UNetConfig = UNetConfig()) throws {
        encoder = try makeEncoder(inChannels: inChannels, config: config)
        decoder = try UNetDecoder(numClasses: numClasses, config: config)
        self.config = config
        super.init()
        try config.initialize(encoders: [encoder], others: [decoder])
    }

    public override func children() -> [(String, Any)] { [("encoder", encoder as Module), ("decoder", decoder)] }

    /// A 2D U-Net also takes volumes of single slices, (B, C, 1, H, W), and returns (B, K, 1, H, W):
    /// that is how the slice-wise variant trains on 3D data (patches of depth 1) and predicts
    /// (windows of depth 1).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try outputs(x, auxiliary: false)[0]
    }

    /// Full-resolution logits, then the deep-supervision outputs (finest first) when they are on:
    /// what the supervised loss of a training step reads. `callAsFunction` is the first entry.
    public func outputs(_ x: Tensor, auxiliary: Bool = true) throws -> [Tensor] {
        try forwardInPrecision({
            if config.rank == 2 && x.rank == 5 {
                guard x.size(2) == 1 else { throw TorchError("a 2D U-Net takes slices: depth must be 1, got \(x.shape)") }
                return try decoder.outputs(encoder(x.squeeze(dim: 2)), auxiliary: auxiliary).map { try $0.unsqueeze(dim: 2) }
            }
            return try decoder.outputs(encoder(x), auxiliary: auxiliary)
        }, widen: { try $0.map { try $0.widenedToFloat32() } })
    }
}
