import Torch

/// The ViT-3D encoder (`ViTUNetEncoder`: SAM-Med3D's image encoder, its neck, the conv stem and the
/// projections to the U-Net's stages) as TorchScript. Per-layer statements as for the U-Net, with
/// the shape-dependent parts (windows, relative positions, position-embedding resize) in helper
/// methods defined once per module (`vitHelpers`), each the TorchScript twin of the Swift code in
/// `Networks/ViT3D.swift`, so the export follows the input's token grid as Concord does.
extension TorchScriptSource {
    static let vitHelpers = """
    def vit_window_split(self, x: Tensor, s: int) -> Tensor:
        pd = (s - x.size(1) % s) % s
        ph = (s - x.size(2) % s) % s
        pw = (s - x.size(3) % s) % s
        if pd > 0 or ph > 0 or pw > 0:
            x = torch.constant_pad_nd(x, [0, 0, 0, pw, 0, ph, 0, pd], 0.0)
        b = x.size(0)
        d = x.size(1)
        h = x.size(2)
        w = x.size(3)
        c = x.size(4)
        x = x.reshape([b, d // s, s, h // s, s, w // s, s, c]).permute([0, 1, 3, 5, 2, 4, 6, 7])
        return x.reshape([-1, s, s, s, c])

    def vit_window_merge(self, windows: Tensor, s: int, b: int, d: int, h: int, w: int) -> Tensor:
        pd = (d + s - 1) // s * s
        ph = (h + s - 1) // s * s
        pw = (w + s - 1) // s * s
        c = windows.size(4)
        x = windows.reshape([b, pd // s, ph // s, pw // s, s, s, s, c]).permute([0, 1, 4, 2, 5, 3, 6, 7])
        x = x.reshape([b, pd, ph, pw, c])
        return x[:, :d, :h, :w, :]

    def vit_relative_table(self, table: Tensor, size: int) -> Tensor:
        offsets = 2 * size - 1
        t = table
        if table.size(0) != offsets:
            t = torch.upsample_linear1d(torch.transpose(table, 0, 1).unsqueeze(0), [offsets], False)
            t = torch.transpose(t.squeeze(0), 0, 1)
        r = torch.arange(size, device=table.device)
        index = (r.unsqueeze(1) - r.unsqueeze(0) + (size - 1)).reshape([-1])
        return torch.index_select(t, 0, index).reshape([size, size, table.size(1)])

    def vit_axis_term(self, rq: Tensor, axis: int, table: Tensor, size: int) -> Tensor:
        r = self.vit_relative_table(table, size)
        others: List[int] = []
        for a in [1, 2, 3]:
            if a != axis:
                others.append(a)
        bh = rq.size(0)
        hd = rq.size(4)
        front = rq.permute([axis, 0, others[0], others[1], 4]).reshape([size, -1, hd])
        product = torch.matmul(front, torch.transpose(r, 1, 2))
        shaped = product.reshape([size, bh, rq.size(others[0]), rq.size(others[1]), size])
        order = [1, 2, 3]
        order.insert(axis, 0)
        order.append(4)
        return shaped.permute(order)

    def vit_attention(self, x: Tensor, qkv_w: Tensor, qkv_b: Optional[Tensor], proj_w: Tensor, proj_b: Optional[Tensor],
                      heads: int, scale: float, relative: List[Tensor]) -> Tensor:
        b = x.size(0)
        d = x.size(1)
        h = x.size(2)
        w = x.size(3)
        c = x.size(4)
        n = d * h * w
        hd = c // heads
        packed = torch.linear(x, qkv_w, qkv_b).reshape([b, n, 3, heads, hd]).permute([2, 0, 3, 1, 4])
        packed = packed.reshape([3, b * heads, n, hd])
        q = packed[0]
        k = packed[1]
        v = packed[2]
        logits = torch.matmul(q * scale, torch.transpose(k, 1, 2))
        if len(relative) == 3:
            assert d == h and h == w, "relative position embeddings need a cubic token grid"
            rq = q.reshape([b * heads, d, h, w, hd])
            term_d = self.vit_axis_term(rq, 1, relative[0], d)
            term_h = self.vit_axis_term(rq, 2, relative[1], h)
            term_w = self.vit_axis_term(rq, 3, relative[2], w)
            grid = logits.reshape([b * heads, d, h, w, d, h, w])
            grid = grid + term_d.unsqueeze(4).unsqueeze(4) + term_h.unsqueeze(3).unsqueeze(5) + term_w.unsqueeze(3).unsqueeze(3)
            logits = grid.reshape([b * heads, n, n])
        attended = torch.matmul(torch.softmax(logits, -1), v)
        merged = attended.reshape([b, heads, d, h, w, hd]).permute([0, 2, 3, 4, 1, 5]).reshape([b, d, h, w, c])
        return torch.linear(merged, proj_w, proj_b)
    """

    private func bias(_ layer: Linear, at path: String) throws -> String {
        try layer.bias.map { try tensor(path + ".bias", $0.value) } ?? "None"
    }

    func linear(_ layer: Linear, at path: String, _ x: String) throws -> String {
        assign("torch.linear(\(x), \(try tensor(path + ".weight", layer.weight.value)), \(try bias(layer, at: path)))")
    }

    func layerNorm(_ layer: LayerNorm, at path: String, _ x: String) throws -> String {
        let w = try tensor(path + ".weight", layer.weight.value), b = try tensor(path + ".bias", layer.bias.value)
        return assign("torch.layer_norm(\(x), \(layer.shape), \(w), \(b), \(Self.number(layer.eps)))")
    }

    /// LayerNorm3d: layer norm over channels of (B, C, D, H, W), through a channels-last view.
    func layerNorm3d(_ layer: LayerNorm3d, at path: String, _ x: String) throws -> String {
        let w = try tensor(path + ".weight", layer.weight.value), b = try tensor(path + ".bias", layer.bias.value)
        let last = assign("torch.permute(\(x), [0, 2, 3, 4, 1])")
        let normed = assign("torch.layer_norm(\(last), [\(x).size(1)], \(w), \(b), \(Self.number(layer.eps)))")
        return assign("torch.permute(\(normed), [0, 4, 1, 2, 3])")
    }

    func vitBlock(_ block: ViTBlock3D, at path: String, _ x: String) throws -> String {
        let a = block.attn
        var relative = "torch.jit.annotate(List[Tensor], [])"
        if let rd = a.rel_pos_d, let rh = a.rel_pos_h, let rw = a.rel_pos_w {
            relative = "[\(try tensor(path + ".attn.rel_pos_d", rd.value)), \(try tensor(path + ".attn.rel_pos_h", rh.value)), "
                + "\(try tensor(path + ".attn.rel_pos_w", rw.value))]"
        }
        let headDim = a.qkv.weight.value.size(0) / 3 / a.heads
        let attentionArguments = "\(try tensor(path + ".attn.qkv.weight", a.qkv.weight.value)), \(try bias(a.qkv, at: path + ".attn.qkv")), "
            + "\(try tensor(path + ".attn.proj.weight", a.proj.weight.value)), \(try bias(a.proj, at: path + ".attn.proj")), "
            + "\(a.heads), \(Self.number(1 / Double(headDim).squareRoot())), \(relative)"
        let y = try layerNorm(block.norm1, at: path + ".norm1", x)
        let attended: String
        if block.window > 0 {
            let s = block.window
            let windows = assign("self.vit_window_split(\(y), \(s))")
            let inWindows = assign("self.vit_attention(\(windows), \(attentionArguments))")
            attended = assign("self.vit_window_merge(\(inWindows), \(s), \(x).size(0), \(x).size(1), \(x).size(2), \(x).size(3))")
        } else {
            attended = assign("self.vit_attention(\(y), \(attentionArguments))")
        }
        var out = assign("\(x) + \(attended)")
        let hidden = try linear(block.mlp.lin1, at: path + ".mlp.lin1", try layerNorm(block.norm2, at: path + ".norm2", out))
        out = assign("\(out) + \(try linear(block.mlp.lin2, at: path + ".mlp.lin2", assign("torch.gelu(\(hidden))")))")
        if let adapter = block.adapter {
            let down = try linear(adapter.down, at: path + ".adapter.down", out)
            out = assign("\(out) + \(try linear(adapter.up, at: path + ".adapter.up", assign("torch.gelu(\(down))")))")
        }
        return out
    }

    /// `ViTUNetEncoder`'s features: the stem at full resolution, the projected token grids of the
    /// skip blocks, the projected neck output.
    func vitEncoder(_ encoder: ViTUNetEncoder, at path: String, _ x: String) throws -> [String] {
        if !functions.contains(where: { $0.hasPrefix("def vit_window_split") }) { addFunction(Self.vitHelpers) }
        let vit = encoder.vit, v = path + ".vit", p = vit.config.patch
        let embedding = vit.patch_embed.proj
        let embedded = assign("torch.conv3d(\(x), \(try tensor(v + ".patch_embed.proj.weight", embedding.weight.value)), "
                              + "\(try embedding.bias.map { try tensor(v + ".patch_embed.proj.bias", $0.value) } ?? "None"), [\(p), \(p), \(p)], [0, 0, 0], [1, 1, 1], 1)")
        let tokens = assign("torch.permute(\(embedded), [0, 2, 3, 4, 1])")
        let position = assign(try tensor(v + ".pos_embed", vit.pos_embed.value))
        statement("if \(tokens).size(1) != \(position).size(1) or \(tokens).size(2) != \(position).size(2) or \(tokens).size(3) != \(position).size(3):")
        statement("    \(position) = torch.permute(torch.upsample_trilinear3d(torch.permute(\(position), [0, 4, 1, 2, 3]), "
                  + "[\(tokens).size(1), \(tokens).size(2), \(tokens).size(3)], False), [0, 2, 3, 4, 1])")
        var h = assign("\(tokens) + \(position)")
        var kept: [Int: String] = [:]
        for (i, block) in vit.blocks.enumerated() {
            h = try vitBlock(block, at: "\(v).blocks.\(i)", h)
            if encoder.skipBlocks.contains(i) { kept[i] = h }
        }
        var neck = assign("torch.permute(\(h), [0, 4, 1, 2, 3])")
        for (i, layer) in vit.neck.layers.enumerated() {
            switch layer {
            case let c as ConvNd: neck = try conv(c, at: "\(v).neck.\(i)", neck)
            case let n as LayerNorm3d: neck = try layerNorm3d(n, at: "\(v).neck.\(i)", neck)
            default: throw SegmentationError.unsupportedExport("export: layer \(type(of: layer)) in the ViT neck is not supported")
            }
        }
        var features = [try convNormAct(encoder.stem.conv2, at: "\(path).stem.conv2", try convNormAct(encoder.stem.conv1, at: "\(path).stem.conv1", x))]
        for (i, block) in encoder.skipBlocks.enumerated() {
            features.append(try sequential(encoder.projections[i], at: "\(path).projections.\(i)", assign("torch.permute(\(kept[block]!), [0, 4, 1, 2, 3])")))
        }
        features.append(try sequential(encoder.projections[encoder.projections.count - 1], at: "\(path).projections.\(encoder.projections.count - 1)", neck))
        return features
    }
}
