import Torch

/// Writes TorchScript source for Concord's networks, one statement per layer, and collects the
/// tensors the source reads as attributes of the exported module.
///
/// Attribute naming: a tensor's state-dict path (relative to the run's saved model, e.g.
/// `encoders.0.stages.1.conv1.conv.weight`) with every `.` replaced by `__` (TorchScript attribute
/// names cannot contain dots), so `name.replace("__", ".")` gives back the checkpoint key. Dropout
/// is an identity at inference and is left out; deep-supervision heads are not used by the source
/// and are not exported.
final class TorchScriptSource {
    struct Attribute { let name: String; let path: String; let tensor: Tensor; let isParameter: Bool }

    private(set) var attributes: [Attribute] = []
    private var registered: Set<String> = []
    private var lines: [String] = []
    private(set) var functions: [String] = []
    private var counter = 0

    /// The attribute separator standing for `.` in a state-dict path.
    static let separator = "__"

    static func attributeName(forPath path: String) throws -> String {
        guard !path.contains(separator) else {
            throw SegmentationError.unsupportedExport("state-dict path \(path) contains '\(separator)', which the export's attribute naming reserves")
        }
        return path.replacingOccurrences(of: ".", with: separator)
    }

    /// `self.<attribute>` for a tensor at `path`, registering it on first use.
    func tensor(_ path: String, _ value: Tensor, parameter: Bool = true) throws -> String {
        let name = try Self.attributeName(forPath: path)
        if registered.insert(name).inserted {
            attributes.append(Attribute(name: name, path: path, tensor: value, isParameter: parameter))
        }
        return "self.\(name)"
    }

    func fresh() -> String { counter += 1; return "t\(counter)" }

    /// Emits `tN = expression` and returns `tN`.
    @discardableResult
    func assign(_ expression: String) -> String {
        let v = fresh()
        lines.append("    \(v) = \(expression)")
        return v
    }

    func statement(_ s: String) { lines.append("    " + s) }

    /// Starts a method `def name(self, signature) -> returns:`; its body is what is emitted until
    /// `end(returning:)`.
    func begin(_ name: String, signature: String, returns: String = "Tensor") {
        precondition(lines.isEmpty, "a function is already open")
        lines = ["def \(name)(self, \(signature)) -> \(returns):"]
    }

    func end(returning value: String) {
        lines.append("    return \(value)")
        functions.append(lines.joined(separator: "\n"))
        lines = []
    }

    var source: String { functions.joined(separator: "\n\n") + "\n" }

    /// A whole method (helpers shared by several layers), defined once.
    func addFunction(_ text: String) { functions.append(text) }

    // MARK: layers

    private static func list(_ values: [Int], rank: Int) -> String {
        let full = values.count == 1 ? Array(repeating: values[0], count: rank) : values
        return "[" + full.map(String.init).joined(separator: ", ") + "]"
    }

    static func number(_ x: Double) -> String {
        // TorchScript float literals: always with a decimal point or exponent.
        let s = "\(x)"
        return s.contains(".") || s.contains("e") ? s : s + ".0"
    }

    func conv(_ layer: ConvNd, at path: String, _ x: String) throws -> String {
        let rank = layer.weight.value.rank - 2
        let w = try tensor(path + ".weight", layer.weight.value)
        let b = try layer.bias.map { try tensor(path + ".bias", $0.value) } ?? "None"
        return assign("torch.conv\(rank)d(\(x), \(w), \(b), \(Self.list(layer.stride, rank: rank)), "
                      + "\(Self.list(layer.padding, rank: rank)), \(Self.list(layer.dilation, rank: rank)), \(layer.groups))")
    }

    func convTranspose(_ layer: ConvTransposeNd, at path: String, _ x: String) throws -> String {
        let rank = layer.weight.value.rank - 2
        let w = try tensor(path + ".weight", layer.weight.value)
        let b = try layer.bias.map { try tensor(path + ".bias", $0.value) } ?? "None"
        return assign("torch.conv_transpose\(rank)d(\(x), \(w), \(b), \(Self.list(layer.stride, rank: rank)), "
                      + "\(Self.list(layer.padding, rank: rank)), \(Self.list(layer.outputPadding, rank: rank)), \(layer.groups), "
                      + "\(Self.list([1], rank: rank)))")
    }

    /// Instance norm (statistics of the input), batch norm (running statistics: eval mode) or
    /// group norm, with the same arguments the shim passes to ATen.
    func norm(_ layer: any Layer, at path: String, _ x: String) throws -> String {
        switch layer {
        case let n as InstanceNorm:
            let w = try n.weight.map { try tensor(path + ".weight", $0.value) } ?? "None"
            let b = try n.bias.map { try tensor(path + ".bias", $0.value) } ?? "None"
            return assign("torch.instance_norm(\(x), \(w), \(b), None, None, True, 0.1, \(Self.number(n.eps)), True)")
        case let n as BatchNorm:
            let w = try n.weight.map { try tensor(path + ".weight", $0.value) } ?? "None"
            let b = try n.bias.map { try tensor(path + ".bias", $0.value) } ?? "None"
            let mean = try tensor(path + ".running_mean", n.running_mean.value, parameter: false)
            let variance = try tensor(path + ".running_var", n.running_var.value, parameter: false)
            return assign("torch.batch_norm(\(x), \(w), \(b), \(mean), \(variance), False, \(Self.number(n.momentum)), \(Self.number(n.eps)), True)")
        case let n as GroupNorm:
            let w = try tensor(path + ".weight", n.weight.value)
            let b = try tensor(path + ".bias", n.bias.value)
            return assign("torch.group_norm(\(x), \(n.groups), \(w), \(b), \(Self.number(n.eps)), True)")
        default:
            throw SegmentationError.unsupportedExport("export: normalisation layer \(type(of: layer)) at \(path) is not supported")
        }
    }

    func convNormAct(_ block: ConvNormAct, at path: String, _ x: String) throws -> String {
        let c = try conv(block.conv, at: path + ".conv", x)
        let n = try norm(block.norm, at: path + ".norm", c)
        return assign("torch.leaky_relu(\(n), \(Self.number(block.slope)))")
    }

    func sequential(_ seq: Sequential, at path: String, _ x: String) throws -> String {
        var h = x
        for (i, layer) in seq.layers.enumerated() {
            switch layer {
            case let block as ConvNormAct: h = try convNormAct(block, at: "\(path).\(i)", h)
            case let up as ConvTransposeNd: h = try convTranspose(up, at: "\(path).\(i)", h)
            default: throw SegmentationError.unsupportedExport("export: layer \(type(of: layer)) at \(path).\(i) is not supported")
            }
        }
        return h
    }

    /// The encoder's per-stage features (full resolution first, bottleneck last).
    func encoder(_ encoder: any FeatureEncoder, at path: String, _ x: String) throws -> [String] {
        if let vit = encoder as? ViTUNetEncoder { return try vitEncoder(vit, at: path, x) }
        guard let unet = encoder as? UNetEncoder else {
            throw SegmentationError.unsupportedExport("export: the \(type(of: encoder)) encoder is not supported by the TorchScript export")
        }
        var h = x
        var features: [String] = []
        for (i, stage) in unet.stages.enumerated() {
            h = try convNormAct(stage.conv1, at: "\(path).stages.\(i).conv1", h)
            h = try convNormAct(stage.conv2, at: "\(path).stages.\(i).conv2", h)
            features.append(h)
        }
        return features
    }

    /// The decoder's full-resolution logits (deep-supervision heads are not part of prediction).
    func decoder(_ decoder: UNetDecoder, at path: String, _ features: [String]) throws -> String {
        var h = features.last!
        for (i, stage) in decoder.stages.enumerated() {
            let up = try convTranspose(stage.up, at: "\(path).stages.\(i).up", h)
            let joined = assign("torch.cat([\(up), \(features[features.count - 2 - i])], 1)")
            h = try convNormAct(stage.conv1, at: "\(path).stages.\(i).conv1", joined)
            h = try convNormAct(stage.conv2, at: "\(path).stages.\(i).conv2", h)
        }
        return try conv(decoder.head, at: "\(path).head", h)
    }

    /// MIA channel attention: gamma (A F) + F with A = softmax(rowmax(E) - E), E = F F^T.
    func attention(_ block: ModalityChannelAttention, at path: String, _ x: String) throws -> String {
        let gamma = try tensor(path + ".gamma", block.gamma.value)
        let f = assign("torch.flatten(\(x), 2)")
        let energy = assign("torch.bmm(\(f), torch.transpose(\(f), 1, 2))")
        let inverted = assign("torch.amax(\(energy), [2], True) - \(energy)")
        let weights = assign("torch.softmax(\(inverted), 2)")
        let attended = assign("torch.reshape(torch.bmm(\(weights), \(f)), \(x).size())")
        return assign("\(attended) * \(gamma) + \(x)")
    }

    /// Opens the input of a network of spatial rank `rank`: a 2D network also takes (B, C, 1, H, W)
    /// slices, as Concord's U-Net does; `closeSlices` restores the depth axis on the output.
    func openSlices(_ x: String, rank: Int) -> String {
        guard rank == 2 else { return x }
        statement("slices = \(x).dim() == 5")
        statement("if slices:")
        statement("    \(x) = torch.squeeze(\(x), 2)")
        return x
    }

    func closeSlices(_ y: String, rank: Int) -> String {
        guard rank == 2 else { return y }
        statement("if slices:")
        statement("    \(y) = torch.unsqueeze(\(y), 2)")
        return y
    }

    /// Defines `def name(self, x: Tensor) -> Tensor` returning the U-Net's full-resolution logits.
    func defineUNet(_ net: UNet, at path: String, name: String) throws {
        begin(name, signature: "x: Tensor")
        let x = openSlices("x", rank: net.config.rank)
        let features = try encoder(net.encoder, at: path + "encoder", x)
        let y = closeSlices(try decoder(net.decoder, at: path + "decoder", features), rank: net.config.rank)
        end(returning: y)
    }

    /// Defines `def name(self, x: Tensor) -> List[Tensor]`: CMC with the modalities in `present`
    /// as the channels of x (in that order), absent ones zeros at the fusion as in `CMCNetwork`;
    /// returns each present branch's logits, in the order of `present`.
    func defineCMC(_ net: CMCNetwork, present: [Int], name: String) throws {
        begin(name, signature: "x: Tensor", returns: "List[Tensor]")
        let rank = net.config.unet.rank
        let input = openSlices("x", rank: rank)
        var features: [Int: [String]] = [:]
        var attended: [Int: String] = [:]
        for (channel, m) in present.enumerated() {
            let xm = assign("torch.narrow(\(input), 1, \(channel), 1)")
            let encoderIndex = net.config.sharedEncoder ? 0 : m
            features[m] = try encoder(net.encoders[encoderIndex], at: "encoders.\(encoderIndex)", xm)
            attended[m] = try attention(net.attention[m], at: "attention.\(m)", features[m]!.last!)
        }
        let reference = attended[present[0]]!
        let fusionInputs = (0..<net.config.modalities).map { m in attended[m] ?? assign("torch.zeros_like(\(reference))") }
        let z = try sequential(net.fusion, at: "fusion", assign("torch.cat([\(fusionInputs.joined(separator: ", "))], 1)"))
        var logits: [String] = []
        for m in present {
            var f = features[m]!
            f[f.count - 1] = assign("\(attended[m]!) + \(try conv(net.inject[m], at: "inject.\(m)", z))")
            logits.append(closeSlices(try decoder(net.decoders[m], at: "decoders.\(m)", f), rank: rank))
        }
        end(returning: "[" + logits.joined(separator: ", ") + "]")
    }
}
