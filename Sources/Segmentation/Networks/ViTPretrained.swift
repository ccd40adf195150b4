import Foundation
import Torch

extension ViT3DEncoder {
    /// Loads SAM-Med3D image-encoder weights from a safetensors file (convert a `.pth` with
    /// `safetensors.torch.save_file(state_dict, path)`) and, with `freeze`, freezes the backbone.
    ///
    /// Strict: every parameter of this encoder except the adapters must be in the file with the
    /// same shape, and every file key (under the prefix) must belong to the encoder. Otherwise
    /// nothing is loaded and the error lists every missing key, unexpected key and wrong shape.
    /// Adapter keys may be absent (SAM-Med3D has no adapters; they stay the identity) and are
    /// loaded when present. `prefix` "auto" strips `image_encoder.` when the file has such keys
    /// (a whole SAM-Med3D model; its prompt encoder and mask decoder are then ignored).
    public func loadPretrained(from url: URL, prefix: String = "auto", freeze: Bool = true) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SegmentationError.invalidSettings(source: url.path, problem: "no such file (vit.pretrained)")
        }
        try loadPretrained(Safetensors.read(url).dictionary, source: url.path, prefix: prefix, freeze: freeze)
    }

    /// The same from tensors already read (`source` names them in errors).
    public func loadPretrained(_ file: [String: Tensor], source: String, prefix: String = "auto", freeze: Bool = true) throws {
        let strip = prefix == "auto" ? (file.keys.contains { $0.hasPrefix("image_encoder.") } ? "image_encoder." : "") : prefix
        var state: [String: Tensor] = [:]
        for (key, tensor) in file {
            if strip.isEmpty { state[key] = tensor } else if key.hasPrefix(strip) { state[String(key.dropFirst(strip.count))] = tensor }
        }
        var targets: [String: Tensor] = [:]
        for (name, p) in namedParameters() { targets[name] = p.value }
        for (name, b) in namedBuffers() { targets[name] = b.value }

        let missing = targets.keys.filter { state[$0] == nil && !ViT3DEncoder.isAdapterKey($0) }.sorted()
        let unexpected = state.keys.filter { targets[$0] == nil }.sorted()
        let wrongShape = targets.keys.sorted().compactMap { name -> String? in
            guard let s = state[name], s.shape != targets[name]!.shape else { return nil }
            return "\(name): \(s.shape) in the file, \(targets[name]!.shape) in the model"
        }
        if !(missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty) {
            var lines = ["\(source): cannot load the ViT-3D weights (key prefix '\(strip)'); nothing was loaded"]
            if !missing.isEmpty { lines.append("missing keys (\(missing.count)): " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { lines.append("unexpected keys (\(unexpected.count)): " + unexpected.joined(separator: ", ")) }
            if !wrongShape.isEmpty { lines.append("wrong shapes (\(wrongShape.count)): " + wrongShape.joined(separator: "; ")) }
            lines += hints(missing: missing, unexpected: unexpected, wrongShape: wrongShape, state: state)
            throw SegmentationError.invalidSettings(source: "vit.pretrained", problem: lines.joined(separator: "\n"))
        }
        try withNoGrad {
            for (name, target) in targets {
                if let source = state[name] { try target.copy_(source) }
            }
        }
        if freeze { freezeBackbone() }
    }

    /// What the settings probably need to be, from the file's shapes.
    func hints(missing: [String], unexpected: [String], wrongShape: [String], state: [String: Tensor]) -> [String] {
        var out: [String] = []
        if unexpected.contains(where: { $0.contains(".attn.rel_pos_") }) && !config.relativePosition {
            out.append("hint: the file has relative position embeddings: set vit.relativePosition true")
        }
        if config.relativePosition && !state.keys.contains(where: { $0.contains(".attn.rel_pos_") }) {
            out.append("hint: the file has no relative position embeddings: set vit.relativePosition false")
        }
        if let w = state["patch_embed.proj.weight"], w.rank == 5 {
            let fileShape = "embedDim \(w.size(0)), patch \(w.size(2))"
            if w.size(0) != config.embedDim || w.size(2) != config.patch { out.append("hint: the file's patch embedding has \(fileShape)") }
            let modelChannels = patch_embed.proj.weight.value.size(1)
            if w.size(1) != modelChannels {
                out.append("hint: the file's patch embedding takes \(w.size(1)) input channel(s), this encoder \(modelChannels): give each encoder one modality (cmc, cml, or inputModalities: [0])")
            }
        }
        if let p = state["pos_embed"], p.rank == 5, p.size(1) != config.positionGrid {
            out.append("hint: the file's pos_embed is a \(p.size(1))^3 grid: vit.imageSize = \(p.size(1)) x vit.patch")
        }
        let fileDepth = Set(state.keys.compactMap { k -> Int? in
            guard k.hasPrefix("blocks.") else { return nil }
            return Int(k.dropFirst("blocks.".count).prefix { $0.isNumber })
        }).count
        if fileDepth > 0 && fileDepth != config.depth { out.append("hint: the file has \(fileDepth) blocks, vit.depth is \(config.depth)") }
        if wrongShape.contains(where: { $0.contains(".attn.rel_pos_") }) {
            out.append("hint: relative position tables are 2 x window - 1 long in windowed blocks and 2 x imageSize/patch - 1 in global ones: check vit.windowSize and vit.globalAttention")
        }
        return out
    }
}

/// Loads (or, on resume, only re-freezes) the pretrained ViT weights of every ViT-3D encoder in a
/// model: what the trainer does before building its optimizer, so frozen parameters are never in
/// the optimizer (no update, no weight decay). Returns the number of encoders touched.
@discardableResult
public func preparePretrainedViT(in model: Module, config: ViTConfig, load: Bool) throws -> Int {
    guard !config.pretrained.isEmpty else { return 0 }
    let encoders = model.namedModules().compactMap { $0.1 as? ViT3DEncoder }
    guard !encoders.isEmpty else { return 0 }
    if load {
        let url = URL(fileURLWithPath: (config.pretrained as NSString).expandingTildeInPath)
        guard FileManager.default.fileExists(atPath: url.path) else { throw SegmentationError.invalidSettings(source: url.path, problem: "no such file (vit.pretrained)") }
        let file = try Safetensors.read(url).dictionary
        for encoder in encoders {
            try encoder.loadPretrained(file, source: url.path, prefix: config.pretrainedPrefix, freeze: config.freezePretrained)
        }
    } else if config.freezePretrained {
        for encoder in encoders { encoder.freezeBackbone() }
    }
    return encoders.count
}
