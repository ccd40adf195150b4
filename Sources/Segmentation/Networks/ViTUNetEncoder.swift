import Torch

/// A ViT-3D as the encoder of the U-Net decoder, UNETR-style: the decoder wants one feature map per
/// stage (full resolution, 1/2, 1/4, ..., bottleneck at 1/2^(S-1) with `widths[i]` channels); the
/// ViT gives token grids at 1/patch. So:
/// - stage 0 (full resolution): a light conv stem on the image (two conv blocks, `stem`);
/// - stages 1 ..< S-1: the tokens after block b_i (spread evenly over the depth, as UNETR's
///   z3/z6/z9 for 12 blocks), reshaped to (B, C, D/p, H/p, W/p) and brought to 1/2^i by
///   transposed-conv upsampling (or strided convs when 1/2^i is coarser than the token grid);
/// - the bottleneck: the ViT's neck output (after the last block) projected the same way.
///
/// Parameter paths: `vit.*` (SAM-Med3D's keys, see `ViT3DEncoder`), `stem.conv1.conv.weight`,
/// `projections.{i-1}.{j}...` for stage i.
public final class ViTUNetEncoder: Module, FeatureEncoder, @unchecked Sendable {
    public let vit: ViT3DEncoder
    public let stem: EncoderStage
    public let projections: [Sequential]
    /// Block whose tokens feed stage i (index i - 1), for stages 1 ..< S-1.
    public let skipBlocks: [Int]

    public init(inChannels: Int, config: UNetConfig) throws {
        guard config.rank == 3 else { throw SegmentationError.config("the ViT encoder is 3D only (unet.rank 3), got rank \(config.rank)") }
        let v = config.vit, w = config.widths, stages = w.count
        guard stages >= 2 else { throw SegmentationError.config("the ViT encoder needs at least 2 U-Net stages (unet.widths)") }
        vit = try ViT3DEncoder(inChannels: inChannels, config: v)
        stem = try EncoderStage(rank: 3, inChannels, w[0], downsample: false, norm: config.norm)
        skipBlocks = (1..<(stages - 1)).map { i in Swift.min(Swift.max((v.depth * i + (stages - 1) / 2) / (stages - 1) - 1, 0), v.depth - 1) }
        projections = try (1..<stages).map { i in
            let source = i == stages - 1 ? v.outChannels : v.embedDim
            return try ViTUNetEncoder.projection(from: source, to: w[i], tokenScale: v.patch, stageScale: 1 << i, norm: config.norm)
        }
        super.init()
    }

    /// Tokens at 1/tokenScale to `channels` at 1/stageScale: log2(tokenScale / stageScale) steps of
    /// (transposed conv k2 s2, conv block) to go finer, strided conv blocks to go coarser, one conv
    /// block at equal scale.
    static func projection(from inChannels: Int, to channels: Int, tokenScale: Int, stageScale: Int, norm: NormKind) throws -> Sequential {
        var layers: [any Layer] = []
        var c = inChannels
        if tokenScale > stageScale {
            var scale = tokenScale
            while scale > stageScale {
                layers.append(try ConvTransposeNd(rank: 3, inChannels: c, outChannels: channels, kernelSize: [2], stride: [2]))
                layers.append(try ConvNormAct(rank: 3, channels, channels, norm: norm))
                c = channels; scale /= 2
            }
        } else if tokenScale < stageScale {
            var scale = tokenScale
            while scale < stageScale {
                layers.append(try ConvNormAct(rank: 3, c, channels, stride: 2, norm: norm))
                c = channels; scale *= 2
            }
        } else {
            layers.append(try ConvNormAct(rank: 3, c, channels, norm: norm))
        }
        return Sequential(layers)
    }

    public func callAsFunction(_ x: Tensor) throws -> [Tensor] {
        let (hidden, neck) = try vit.features(x, keeping: skipBlocks)
        var features = [try stem(x)]
        for (i, tokens) in hidden.enumerated() {
            features.append(try projections[i](tokens.permute([0, 4, 1, 2, 3])))
        }
        features.append(try projections[projections.count - 1](neck))
        return features
    }
}
