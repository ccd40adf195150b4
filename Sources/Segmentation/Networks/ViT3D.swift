import Foundation
import Torch

/// Settings of the ViT-3D encoder. The defaults are SAM-Med3D's `vit_b_ori` image encoder (img 128,
/// patch 16, embed 768, depth 12, 12 heads, MLP ratio 4, neck 384 channels, window 14, global
/// attention in blocks 2, 5, 8, 11, relative position embeddings), so its checkpoint loads as is.
public struct ViTConfig: Codable, Sendable, Equatable {
    /// Edge of the cubic image the absolute position embedding was made for (`pos_embed` holds
    /// (imageSize / patch)^3 positions); other token grids get it trilinearly resampled.
    public var imageSize: Int = 128
    /// Patch edge: the patch embedding is a Conv3d with kernel = stride = patch. A power of two.
    public var patch: Int = 16
    public var embedDim: Int = 768
    public var depth: Int = 12
    public var heads: Int = 12
    public var mlpRatio: Double = 4
    /// Channels of the neck (SAM-Med3D: the prompt embedding width, 384).
    public var outChannels: Int = 384
    /// Window edge (in tokens) of the windowed-attention blocks; 0 = global attention everywhere.
    public var windowSize: Int = 14
    /// Blocks (0-based) that attend globally; the others attend within windows.
    public var globalAttention: [Int] = [2, 5, 8, 11]
    /// Decomposed relative position embeddings (`rel_pos_d/h/w`) in every attention.
    public var relativePosition: Bool = true
    /// Hidden width of the residual adapter after each block (0 = no adapters).
    public var adapterDim: Int = 64
    /// A safetensors file with SAM-Med3D image-encoder weights ("" = train from scratch). Loaded
    /// when training starts (not on --resume: the checkpoint holds them).
    public var pretrained: String = ""
    /// Key prefix to strip from the file's tensor names: "auto" takes `image_encoder.` when the
    /// file's keys carry it (a whole SAM-Med3D model), else none; keys outside the prefix are ignored.
    public var pretrainedPrefix: String = "auto"
    /// After loading `pretrained`: freeze the patch embedding, position embedding and the blocks'
    /// attention, norms and MLPs (the adapters, the neck and everything after stay trainable).
    public var freezePretrained: Bool = true

    public init() {}

    /// A small encoder that trains on a CPU (embed 48, depth 2, 4 heads, patch 8, global attention).
    public static func small(imageSize: Int = 32) -> ViTConfig {
        var c = ViTConfig()
        c.imageSize = imageSize; c.patch = 8; c.embedDim = 48; c.depth = 2; c.heads = 4; c.outChannels = 48
        c.windowSize = 0; c.globalAttention = []; c.adapterDim = 16
        return c
    }

    public var mlpDim: Int { Int(Double(embedDim) * mlpRatio) }
    public var headDim: Int { embedDim / heads }
    public var positionGrid: Int { imageSize / patch }

    /// Window edge of block `i`: 0 for global attention.
    public func window(ofBlock i: Int) -> Int { globalAttention.contains(i) ? 0 : windowSize }

    enum CodingKeys: String, CodingKey {
        case imageSize, patch, embedDim, depth, heads, mlpRatio, outChannels, windowSize, globalAttention, relativePosition
        case adapterDim, pretrained, pretrainedPrefix, freezePretrained
    }

    // Files written before a key existed are read through `SettingsDecoding` (over the defaults),
    // so the synthesized decoder can stay strict.

    /// Problems with these settings, each naming its key (empty when valid).
    public func problems() -> [String] {
        var out: [String] = []
        if patch < 1 || patch & (patch - 1) != 0 { out.append("vit.patch must be a power of two, got \(patch)") }
        if embedDim < 1 || heads < 1 || embedDim % heads != 0 { out.append("vit.embedDim \(embedDim) must be divisible by vit.heads \(heads)") }
        if depth < 1 { out.append("vit.depth must be >= 1") }
        if mlpRatio <= 0 || mlpDim < 1 { out.append("vit.mlpRatio must be positive") }
        if outChannels < 1 { out.append("vit.outChannels must be >= 1") }
        if patch >= 1 && (imageSize < patch || imageSize % patch != 0) { out.append("vit.imageSize \(imageSize) must be a multiple of vit.patch \(patch)") }
        if windowSize < 0 { out.append("vit.windowSize must be >= 0") }
        if let bad = globalAttention.first(where: { !(0..<depth).contains($0) }) { out.append("vit.globalAttention index \(bad) outside 0..<\(depth)") }
        if adapterDim < 0 { out.append("vit.adapterDim must be >= 0") }
        return out
    }
}

/// SAM-Med3D's channels-first layer norm (`LayerNorm3d`): each voxel's C channels normalised to
/// zero mean and unit (biased) variance, then scaled and shifted per channel. eps 1e-6.
public final class LayerNorm3d: Module, Layer, @unchecked Sendable {
    public let weight: Parameter
    public let bias: Parameter
    public let eps: Double

    public init(_ channels: Int, eps: Double = 1e-6) throws {
        weight = try Parameter(.ones([channels]))
        bias = try Parameter(.zeros([channels]))
        self.eps = eps
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        // The same normalisation as layer_norm over a channels-last view.
        let last = try x.permute([0, 2, 3, 4, 1])
        return try F.layerNorm(last, normalizedShape: [x.size(1)], weight: weight.value, bias: bias.value, eps: eps)
            .permute([0, 4, 1, 2, 3])
    }
}

/// `patch_embed.proj`: a Conv3d with kernel = stride = patch; output channels-last (B, D, H, W, C).
public final class PatchEmbedding3D: Module, @unchecked Sendable {
    public let proj: ConvNd

    public init(inChannels: Int, embedDim: Int, patch: Int) throws {
        proj = try ConvNd(rank: 3, inChannels: inChannels, outChannels: embedDim, kernelSize: [patch], stride: [patch])
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try proj(x).permute([0, 2, 3, 4, 1]) }
}

/// SAM-Med3D's `MLPBlock`: lin1 -> GELU (exact) -> lin2.
public final class ViTMLP: Module, Layer, @unchecked Sendable {
    public let lin1: Linear
    public let lin2: Linear

    public init(dim: Int, hidden: Int) throws {
        lin1 = try Linear(inFeatures: dim, outFeatures: hidden)
        lin2 = try Linear(inFeatures: hidden, outFeatures: dim)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try lin2(F.gelu(lin1(x))) }
}

/// A bottleneck adapter with a residual: x + up(GELU(down(x))). `up` starts at zero so a freshly
/// added adapter is the identity and a pretrained encoder computes exactly what it did before.
public final class ViTAdapter: Module, Layer, @unchecked Sendable {
    public let down: Linear
    public let up: Linear

    public init(dim: Int, hidden: Int) throws {
        down = try Linear(inFeatures: dim, outFeatures: hidden)
        up = try Linear(inFeatures: hidden, outFeatures: dim)
        super.init()
        try withNoGrad {
            try up.weight.value.fill_(0)
            try up.bias?.value.fill_(0)
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x + up(F.gelu(down(x))) }
}

/// Multi-head self-attention over a (B, D, H, W, C) token grid with SAM-Med3D's decomposed
/// relative position embeddings.
///
/// Per axis a, SAM-Med3D computes rel_a[b, i_d, i_h, i_w, k] = q[b, i_d, i_h, i_w] . R_a[i_a - k]
/// (q unscaled, R_a learnt per offset) and adds the three to the logits
/// (b, i_d, i_h, i_w, j_d, j_h, j_w) through `rel_d[:, :, :, :, None, None]`,
/// `rel_h[:, :, :, None, :, None]`, `rel_w[:, :, :, None, None, :]`. Because each of those 5-D
/// tensors keeps its offset axis last, the terms land as
///   rel_d[b, i_d, i_h, i_w, j_w] + rel_h[b, i_d, i_h, j_d, j_w] + rel_w[b, i_d, i_h, j_h, j_w],
/// not as MViTv2's rel_d[.., j_d] + rel_h[.., j_h] + rel_w[.., j_w]. The pretrained weights were
/// trained with this form, so it is reproduced exactly (the fixture test compares against it). It
/// needs a cubic token grid, which windows always are; global-attention blocks need cubic patches.
public final class ViTAttention3D: Module, @unchecked Sendable {
    public let qkv: Linear
    public let proj: Linear
    public let rel_pos_d: Parameter?
    public let rel_pos_h: Parameter?
    public let rel_pos_w: Parameter?
    public let heads: Int

    /// `inputSize`: the token grid edge the relative embeddings are sized for (2 n - 1 offsets).
    public init(dim: Int, heads: Int, relativePosition: Bool, inputSize: Int) throws {
        qkv = try Linear(inFeatures: dim, outFeatures: 3 * dim)
        proj = try Linear(inFeatures: dim, outFeatures: dim)
        let offsets = 2 * inputSize - 1, headDim = dim / heads
        rel_pos_d = relativePosition ? try Parameter(.zeros([offsets, headDim])) : nil
        rel_pos_h = relativePosition ? try Parameter(.zeros([offsets, headDim])) : nil
        rel_pos_w = relativePosition ? try Parameter(.zeros([offsets, headDim])) : nil
        self.heads = heads
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, d, h, w, c) = (x.size(0), x.size(1), x.size(2), x.size(3), x.size(4))
        let n = d * h * w, headDim = c / heads
        let packed = try qkv(x).reshape([b, n, 3, heads, headDim]).permute([2, 0, 3, 1, 4]).reshape([3, b * heads, n, headDim])
        let q = try packed.narrow(dim: 0, start: 0, length: 1).squeeze(dim: 0)
        let k = try packed.narrow(dim: 0, start: 1, length: 1).squeeze(dim: 0)
        let v = try packed.narrow(dim: 0, start: 2, length: 1).squeeze(dim: 0)
        var logits = try (q * (1 / Double(headDim).squareRoot())).matmul(k.transposed(1, 2))   // (B heads, n, n)
        if let rd = rel_pos_d, let rh = rel_pos_h, let rw = rel_pos_w {
            logits = try addRelativePosition(logits, q: q, grid: (d, h, w), rd.value, rh.value, rw.value)
        }
        let attended = try F.softmax(logits, dim: -1).matmul(v)                                  // (B heads, n, hd)
        let merged = try attended.reshape([b, heads, d, h, w, headDim]).permute([0, 2, 3, 4, 1, 5]).reshape([b, d, h, w, c])
        return try proj(merged)
    }

    /// logits (B', n, n) + the three axis terms, placed as SAM-Med3D places them (see the type).
    func addRelativePosition(_ logits: Tensor, q: Tensor, grid: (Int, Int, Int), _ rd: Tensor, _ rh: Tensor, _ rw: Tensor) throws -> Tensor {
        let (d, h, w) = grid
        guard d == h && h == w else {
            throw SegmentationError.config("SAM-Med3D's relative position embeddings need a cubic token grid, got \(d)x\(h)x\(w) in a global-attention block: use a cubic patch or vit.relativePosition false")
        }
        let bh = q.size(0), hd = q.size(2)
        let rq = try q.reshape([bh, d, h, w, hd])
        // Per axis a: out[b, .., i_a, .., k] = sum_c rq[b, .., i_a, .., c] R_a[i_a, k, c], done as a
        // batched matmul with the axis a in front.
        func axisTerm(_ axis: Int, _ table: Tensor, _ size: Int) throws -> Tensor {
            let r = try relativeTable(table, size: size)                                     // (size, size, hd)
            let others = [1, 2, 3].filter { $0 != axis }
            let front = try rq.permute([axis, 0] + others + [4]).reshape([size, -1, hd])
            let product = try front.matmul(r.transposed(1, 2))                                // (size, B' x others, size)
            let shaped = try product.reshape([size, bh, rq.size(others[0]), rq.size(others[1]), size])
            // Back to (B', d, h, w, k): dims are (axis, B', others, k) here, so B' and the others
            // keep their order and the axis goes back to position `axis`.
            var order = [1, 2, 3]; order.insert(0, at: axis)
            return try shaped.permute(order + [4])
        }
        let termD = try axisTerm(1, rd, d), termH = try axisTerm(2, rh, h), termW = try axisTerm(3, rw, w)
        let grid7 = try logits.reshape([bh, d, h, w, d, h, w])
        // (B', d, h, w, k) -> (B', d, h, w, 1, 1, k), (B', d, h, 1, w, 1, k), (B', d, h, 1, 1, w, k).
        let sum = try grid7
            + termD.unsqueeze(dim: 4).unsqueeze(dim: 4)
            + termH.unsqueeze(dim: 3).unsqueeze(dim: 5)
            + termW.unsqueeze(dim: 3).unsqueeze(dim: 3)
        return try sum.reshape([bh, d * h * w, d * h * w])
    }

    /// R[i, j] = table[i - j + size - 1] for a grid edge `size`; a table made for another size is
    /// first resampled linearly to 2 size - 1 offsets (as SAM-Med3D's get_rel_pos).
    func relativeTable(_ table: Tensor, size: Int) throws -> Tensor {
        let offsets = 2 * size - 1
        var t = table
        if table.size(0) != offsets {
            let channelsFirst = try table.transposed(0, 1).unsqueeze(dim: 0)                    // (1, hd, L)
            t = try F.interpolate(channelsFirst, size: [offsets], mode: .linear).squeeze(dim: 0).transposed(0, 1)
        }
        var index: [Int64] = []
        index.reserveCapacity(size * size)
        for i in 0..<size { for j in 0..<size { index.append(Int64(i - j + size - 1)) } }
        let idx = try Tensor(index, shape: [size * size]).to(table.device)
        return try t.indexSelect(dim: 0, index: idx).reshape([size, size, table.size(1)])
    }
}

/// One transformer block: x + attn(norm1(x)) (windowed or global), then + mlp(norm2(x)), then the
/// adapter. Windowed blocks zero-pad the grid to a multiple of the window and attend within each
/// window, padded tokens included (as SAM-Med3D, whose weights were trained that way).
public final class ViTBlock3D: Module, @unchecked Sendable {
    public let norm1: LayerNorm
    public let attn: ViTAttention3D
    public let norm2: LayerNorm
    public let mlp: ViTMLP
    public let adapter: ViTAdapter?
    public let window: Int

    public init(config: ViTConfig, window: Int) throws {
        norm1 = try LayerNorm([config.embedDim], eps: 1e-6)
        attn = try ViTAttention3D(dim: config.embedDim, heads: config.heads, relativePosition: config.relativePosition,
                                  inputSize: window > 0 ? window : config.positionGrid)
        norm2 = try LayerNorm([config.embedDim], eps: 1e-6)
        mlp = try ViTMLP(dim: config.embedDim, hidden: config.mlpDim)
        adapter = config.adapterDim > 0 ? try ViTAdapter(dim: config.embedDim, hidden: config.adapterDim) : nil
        self.window = window
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var y = try norm1(x)
        if window > 0 {
            let grid = [x.size(1), x.size(2), x.size(3)]
            y = try windowMerge(attn(windowSplit(y, window)), window, batch: x.size(0), grid: grid)
        } else {
            y = try attn(y)
        }
        var out = try x + y
        out = try out + mlp(norm2(out))
        if let adapter { out = try adapter(out) }
        return out
    }
}

/// (B, D, H, W, C) -> (B * windows, s, s, s, C), zero-padding each spatial axis up to a multiple
/// of s; windows ordered by (d, h, w) window index.
func windowSplit(_ x: Tensor, _ s: Int) throws -> Tensor {
    var padded = x
    for axis in 1...3 {
        let extra = (s - padded.size(axis) % s) % s
        if extra > 0 {
            var shape = padded.shape; shape[axis] = extra
            padded = try Tensor.cat([padded, Tensor.zeros(shape, dtype: x.dtype, device: x.device)], dim: axis)
        }
    }
    let (b, d, h, w, c) = (padded.size(0), padded.size(1), padded.size(2), padded.size(3), padded.size(4))
    return try padded.reshape([b, d / s, s, h / s, s, w / s, s, c]).permute([0, 1, 3, 5, 2, 4, 6, 7]).reshape([-1, s, s, s, c])
}

/// Inverse of `windowSplit`, cropping the padding away.
func windowMerge(_ windows: Tensor, _ s: Int, batch: Int, grid: [Int]) throws -> Tensor {
    let padded = grid.map { ($0 + s - 1) / s * s }
    let c = windows.size(4)
    let x = try windows.reshape([batch, padded[0] / s, padded[1] / s, padded[2] / s, s, s, s, c])
        .permute([0, 1, 4, 2, 5, 3, 6, 7]).reshape([batch, padded[0], padded[1], padded[2], c])
    if padded == grid { return x }
    return try x.narrow(dim: 1, start: 0, length: grid[0]).narrow(dim: 2, start: 0, length: grid[1]).narrow(dim: 3, start: 0, length: grid[2])
}

/// SAM-Med3D's image encoder (`ImageEncoderViT3D`) plus residual adapters. State-dict keys are
/// SAM-Med3D's: `patch_embed.proj.weight`, `pos_embed`, `blocks.{i}.norm1.weight`,
/// `blocks.{i}.attn.qkv.weight`, `blocks.{i}.attn.proj.weight`, `blocks.{i}.attn.rel_pos_{d,h,w}`,
/// `blocks.{i}.norm2.weight`, `blocks.{i}.mlp.lin{1,2}.weight`, `neck.{0,1,2,3}.weight`; the adapters
/// add `blocks.{i}.adapter.{down,up}.{weight,bias}`, which SAM-Med3D checkpoints do not contain.
///
/// Input (B, C, D, H, W) with every spatial size a multiple of the patch. When the token grid
/// differs from the position embedding's (imageSize / patch), the embedding is resampled
/// trilinearly: SAM-Med3D itself only runs at its training size.
public final class ViT3DEncoder: Module, @unchecked Sendable {
    public let patch_embed: PatchEmbedding3D
    public let pos_embed: Parameter
    public let blocks: [ViTBlock3D]
    public let neck: Sequential
    public let config: ViTConfig

    public init(inChannels: Int = 1, config: ViTConfig) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw SegmentationError.invalidSettings(source: "ViT-3D", problem: problems.joined(separator: "; ")) }
        patch_embed = try PatchEmbedding3D(inChannels: inChannels, embedDim: config.embedDim, patch: config.patch)
        let g = config.positionGrid
        // SAM-Med3D starts the position embedding at zero and always loads pretrained weights; from
        // scratch a small random start (as ViT/UNETR) gives the tokens positions to tell apart.
        pos_embed = try Parameter(withNoGrad { try Tensor.randn([1, g, g, g, config.embedDim]) * 0.02 })
        blocks = try (0..<config.depth).map { try ViTBlock3D(config: config, window: config.window(ofBlock: $0)) }
        neck = Sequential([
            try ConvNd(rank: 3, inChannels: config.embedDim, outChannels: config.outChannels, kernelSize: [1], bias: false),
            try LayerNorm3d(config.outChannels),
            try ConvNd(rank: 3, inChannels: config.outChannels, outChannels: config.outChannels, kernelSize: [3], padding: [1], bias: false),
            try LayerNorm3d(config.outChannels),
        ])
        self.config = config
        super.init()
    }

    /// Tokens after the patch embedding and the (resampled if needed) position embedding.
    func embed(_ x: Tensor) throws -> Tensor {
        let p = config.patch
        guard x.rank == 5, (2...4).allSatisfy({ x.size($0) % p == 0 }) else {
            throw TorchError("ViT-3D with patch \(p) needs (B, C, D, H, W) with sizes divisible by \(p), got \(x.shape)")
        }
        let tokens = try patch_embed(x)
        let grid = [tokens.size(1), tokens.size(2), tokens.size(3)]
        var position = pos_embed.value
        if grid != [position.size(1), position.size(2), position.size(3)] {
            let channelsFirst = try position.permute([0, 4, 1, 2, 3])
            position = try F.interpolate(channelsFirst, size: grid, mode: .linear).permute([0, 2, 3, 4, 1])
        }
        return try tokens + position
    }

    /// The neck's output (B, outChannels, D/p, H/p, W/p), as SAM-Med3D's encoder returns.
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try features(x, keeping: []).neck }

    /// The neck output plus the token grids (channels-last, (B, D/p, H/p, W/p, C)) after the
    /// blocks listed in `keeping`, in that order.
    public func features(_ x: Tensor, keeping: [Int]) throws -> (hidden: [Tensor], neck: Tensor) {
        var h = try embed(x)
        var kept = [Int: Tensor]()
        for (i, block) in blocks.enumerated() {
            h = try block(h)
            if keeping.contains(i) { kept[i] = h }
        }
        let neckOut = try neck(h.permute([0, 4, 1, 2, 3]))
        return (keeping.map { kept[$0]! }, neckOut)
    }

    /// Parameters the pretrained weights provide and `freezePretrained` freezes: all but the
    /// adapters and the neck.
    public func backboneParameters() -> [(String, Parameter)] {
        namedParameters().filter { !ViT3DEncoder.isAdapterKey($0.0) && !$0.0.hasPrefix("neck.") }
    }

    static func isAdapterKey(_ key: String) -> Bool { key.contains(".adapter.") }

    /// Freezes the backbone (see `backboneParameters`).
    public func freezeBackbone() {
        for (_, p) in backboneParameters() { p.isFrozen = true }
    }
}
