import Torch

/// Configuration of the CMC network (docs/methods.md, 1.1).
public struct CMCConfig: Codable, Sendable, Equatable {
    public var modalities: Int
    public var numClasses: Int
    public var unet: UNetConfig
    /// Ablation switch: one encoder shared by all modalities (the public code's choice) instead of
    /// one per modality (the paper's).
    public var sharedEncoder: Bool

    public init(modalities: Int = 2, numClasses: Int = 4, unet: UNetConfig = UNetConfig(), sharedEncoder: Bool = false) {
        self.modalities = modalities; self.numClasses = numClasses; self.unet = unet; self.sharedEncoder = sharedEncoder
    }
}

/// What one CMC forward pass returns.
public struct CMCOutput {
    /// Per-modality logits (B, K, spatial...), nil for a modality that was absent.
    public var logits: [Tensor?]
    /// Per-modality encoder bottleneck features (before MIA), for L_CSC.
    public var bottlenecks: [Tensor?]
    /// Per-modality deep-supervision logits (finest first); empty unless requested with deep
    /// supervision on, or for an absent modality.
    public var auxiliaryLogits: [[Tensor]]
}

/// The CMC network: per modality an encoder E_m, MIA channel attention on its bottleneck, a fusion
/// layer shared by all branches (concat of the MIA outputs -> two conv blocks -> Z), the fused
/// information added back into each branch (MIA_m(F_m) + W_m(Z), W_m a 1x1x1 conv), and a decoder
/// D_m per modality with skips from its own encoder.
///
/// Missing modalities: pass nil for an absent input. Its branch is skipped (no prediction), and its
/// slot in the fusion input is zeros, which is what a present-but-blank channel would give after
/// MIA; present branches still receive the fused information of the others. A network trained on
/// complete inputs only has never seen this rule; `cmc.modalityDropout` trains under it
/// (CMCMethod); predictions say which branches ran.
///
/// Parameter paths: `encoders.0.stages.0.conv1.conv.weight`, `attention.0.gamma`,
/// `fusion.0.conv.weight`, `inject.0.weight`, `decoders.0.head.weight` (one index per modality;
/// with `sharedEncoder`, only `encoders.0`). With the ViT encoder (`unet.encoder: vit`) each
/// modality has its own ViT-3D (`encoders.0.vit.blocks.0...`) whose projected bottleneck is what
/// MIA, the fusion and L_CSC see; deep supervision adds `decoders.m.auxiliary_heads.k`.
public final class CMCNetwork: Module, MixedPrecisionNetwork, @unchecked Sendable {
    /// Autocast policy of the forward pass (`MixedPrecision`); nil = float32.
    public var mixedPrecision: MixedPrecision?
    public let encoders: [any FeatureEncoder]
    public let attention: [ModalityChannelAttention]
    public let fusion: Sequential
    public let inject: [ConvNd]
    public let decoders: [UNetDecoder]
    public let config: CMCConfig

    public init(config: CMCConfig) throws {
        guard config.modalities >= 2 else { throw SegmentationError.incompatibleData("CMC needs at least two modalities, got \(config.modalities)") }
        let c = config.unet.widths.last!
        let rank = config.unet.rank
        encoders = try (0..<(config.sharedEncoder ? 1 : config.modalities)).map { _ in try makeEncoder(inChannels: 1, config: config.unet) }
        attention = (0..<config.modalities).map { _ in ModalityChannelAttention() }
        fusion = Sequential([
            try ConvNormAct(rank: rank, config.modalities * c, c, norm: config.unet.norm),
            try ConvNormAct(rank: rank, c, c, norm: config.unet.norm),
        ])
        inject = try (0..<config.modalities).map { _ in try ConvNd(rank: rank, inChannels: c, outChannels: c, kernelSize: [1]) }
        decoders = try (0..<config.modalities).map { _ in try UNetDecoder(numClasses: config.numClasses, config: config.unet) }
        self.config = config
        super.init()
        try config.unet.initialize(encoders: encoders, others: [fusion as Module] + inject + decoders)
    }

    public override func children() -> [(String, Any)] {
        [("encoders", encoders.map { $0 as Module }), ("attention", attention), ("fusion", fusion), ("inject", inject),
         ("decoders", decoders)]
    }

    func encoder(_ m: Int) -> any FeatureEncoder { encoders[config.sharedEncoder ? 0 : m] }

    /// `inputs[m]` is modality m as (B, 1, spatial...) or nil when absent; at least one present.
    /// With `auxiliary` (and deep supervision in the config) the decoders' auxiliary logits are
    /// returned too (training); prediction leaves it off.
    public func callAsFunction(_ inputs: [Tensor?], auxiliary: Bool = false) throws -> CMCOutput {
        try forwardInPrecision({ try forward(inputs, auxiliary: auxiliary) }, widen: { out in
            CMCOutput(logits: try out.logits.map { try $0?.widenedToFloat32() },
                      bottlenecks: try out.bottlenecks.map { try $0?.widenedToFloat32() },
                      auxiliaryLogits: try out.auxiliaryLogits.map { try $0.map { try $0.widenedToFloat32() } })
        })
    }

    func forward(_ inputs: [Tensor?], auxiliary: Bool) throws -> CMCOutput {
        guard inputs.count == config.modalities else {
            throw TorchError("CMC built for \(config.modalities) modalities got \(inputs.count) inputs")
        }
        guard let reference = inputs.compactMap({ $0 }).first else { throw SegmentationError.incompatibleData("CMC needs at least one modality present") }
        var features: [[Tensor]?] = []
        for (m, x) in inputs.enumerated() {
            if let x { features.append(try encoder(m).callAsFunction(x)) } else { features.append(nil) }
        }
        guard let bottleneckShape = features.compactMap({ $0?.last?.shape }).first else { throw TorchError("no features") }
        var attended: [Tensor] = []
        for m in 0..<config.modalities {
            if let f = features[m] { attended.append(try attention[m](f.last!)) }
            else { attended.append(try Tensor.zeros(bottleneckShape, dtype: reference.dtype, device: reference.device)) }
        }
        let z = try fusion(Tensor.cat(attended, dim: 1))
        var logits: [Tensor?] = []
        var auxiliaryLogits: [[Tensor]] = []
        for m in 0..<config.modalities {
            guard var f = features[m] else { logits.append(nil); auxiliaryLogits.append([]); continue }
            f[f.count - 1] = try attended[m] + inject[m](z)
            let outputs = try decoders[m].outputs(f, auxiliary: auxiliary)
            logits.append(outputs[0])
            auxiliaryLogits.append(Array(outputs.dropFirst()))
        }
        return CMCOutput(logits: logits, bottlenecks: features.map { $0?.last }, auxiliaryLogits: auxiliaryLogits)
    }
}
