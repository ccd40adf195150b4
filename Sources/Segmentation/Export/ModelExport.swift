import Foundation
import Torch

/// One prediction head a run can be exported with.
public struct ExportHead: Sendable, Equatable {
    /// The head's name: one of the method's `outputNames`, or `only(<modality>)` for a CMC branch
    /// run with the other modalities absent.
    public var name: String
    /// Dataset channel indices the exported `forward(x)` takes as x's channels, in this order.
    public var inputChannels: [Int]
    /// `logits`: the network's logits; `log-probabilities`: log of the mean of several softmax
    /// maps (an averaged head). Either way softmax(forward(x)) is Concord's probability map.
    public var output: String
}

/// Spatial axis order of the exported forward's input and output.
public enum ExportLayout: String, Codable, Sendable {
    /// (B, C, D, H, W) = voxel axes (k, j, i): Concord's tensors, a NIfTI volume's memory read
    /// C-contiguously (what `concord export --format torchscript` writes).
    case concord = "B C D H W (voxel axes k j i)"
    /// (B, C, i, j, k): the voxel-index order nibabel and MONAI arrays have (the MONAI bundle's
    /// model); forward permutes to Concord's order and back.
    case voxelIndex = "B C i j k (voxel index order)"
}

/// The TorchScript export of a trained method: a module with the parameters and buffers the
/// selected head reads (attribute names: state-dict paths with `.` -> `__`) and a generated
/// `forward(x)`, x = (B, C, spatial...) with the head's input channels.
public enum ModelExport {
    /// Name of the JSON extra file in the exported archive.
    public static let metadataFile = "concord.json"

    /// The heads `method` can be exported with; the last is the method's final answer (what
    /// `concord predict` writes by default).
    public static func heads(of method: SegmentationMethod) throws -> [ExportHead] {
        let all = { (n: Int) in Array(0..<n) }
        switch method {
        case let m as SupervisedMethod:
            return [ExportHead(name: m.outputNames[0], inputChannels: m.inputModalities, output: "logits")]
        case let m as MeanTeacherMethod:
            return [ExportHead(name: m.outputNames[0], inputChannels: m.inputModalities, output: "logits")]
        case let m as CrossPseudoSupervisionMethod:
            return [ExportHead(name: m.outputNames[0], inputChannels: m.inputModalities, output: "log-probabilities")]
        case let m as SemiCMLMethod:
            // In `outputNames` order; "reference" exported is channel 0's own network (an exported
            // model has fixed inputs: the reference channel is channel 0).
            return m.modalityNames.enumerated().map { ExportHead(name: $0.element, inputChannels: [$0.offset], output: "logits") }
                + m.outputNames.dropFirst(m.modalityNames.count).map { name in
                    name == "mean" ? ExportHead(name: "mean", inputChannels: all(m.modalityNames.count), output: "log-probabilities")
                                   : ExportHead(name: name, inputChannels: [0], output: "logits")
                }
        case let m as CMCMethod:
            let n = m.modalityNames.count
            return m.modalityNames.enumerated().map { ExportHead(name: "only(\($0.element))", inputChannels: [$0.offset], output: "logits") }
                + m.modalityNames.map { ExportHead(name: $0, inputChannels: all(n), output: "logits") }
                + [ExportHead(name: m.outputNames.last!, inputChannels: all(n), output: "log-probabilities")]
        default:
            throw SegmentationError.unsupportedExport("export: method \(method.name) is not supported")
        }
    }

    /// The head called `name` (nil = the method's final answer).
    public static func head(named name: String?, of method: SegmentationMethod) throws -> ExportHead {
        let heads = try heads(of: method)
        guard let name else { return heads.last! }
        guard let head = heads.first(where: { $0.name == name }) else {
            throw SegmentationError.unsupportedExport("head '\(name)' does not exist; the \(method.name) run's heads are \(heads.map(\.name).joined(separator: ", "))")
        }
        return head
    }

    /// TorchScript source and the tensors it reads for `head` of `method` (in eval mode).
    static func source(for method: SegmentationMethod, head: ExportHead, layout: ExportLayout = .concord) throws -> TorchScriptSource {
        let s = TorchScriptSource()
        // The method's forward on Concord's layout; with the voxel-index layout a wrapper named
        // `forward` permutes around it.
        let forward = layout == .concord ? "forward" : "forward_dhw"
        /// log(mean_i softmax(logits_i)) over the listed logits variables.
        func logMeanSoftmax(_ logits: [String]) -> String {
            let probabilities = logits.map { s.assign("torch.softmax(\($0), 1)") }
            return s.assign("torch.log(torch.mean(torch.stack([\(probabilities.joined(separator: ", "))]), 0))")
        }
        switch method {
        case let m as SupervisedMethod:
            try s.defineUNet(m.network, at: "", name: "network")
            s.begin(forward, signature: "x: Tensor")
            s.end(returning: s.assign("self.network(x)"))
        case let m as MeanTeacherMethod:
            try s.defineUNet(m.pair.teacher, at: "teacher.", name: "teacher")
            s.begin(forward, signature: "x: Tensor")
            s.end(returning: s.assign("self.teacher(x)"))
        case let m as CrossPseudoSupervisionMethod:
            for (i, net) in m.pair.networks.enumerated() { try s.defineUNet(net, at: "networks.\(i).", name: "network\(i)") }
            s.begin(forward, signature: "x: Tensor")
            s.end(returning: logMeanSoftmax(m.pair.networks.indices.map { s.assign("self.network\($0)(x)") }))
        case let m as SemiCMLMethod:
            let used = head.output == "logits" ? head.inputChannels : Array(m.ensemble.networks.indices)
            for i in used { try s.defineUNet(m.ensemble.networks[i], at: "networks.\(i).", name: "network\(i)") }
            s.begin(forward, signature: "x: Tensor")
            if head.output == "logits" {
                s.end(returning: s.assign("self.network\(used[0])(x)"))
            } else {
                s.end(returning: logMeanSoftmax(used.enumerated().map { s.assign("self.network\($0.element)(torch.narrow(x, 1, \($0.offset), 1))") }))
            }
        case let m as CMCMethod:
            try s.defineCMC(m.network, present: head.inputChannels, name: "cmc")
            s.begin(forward, signature: "x: Tensor")
            let branches = s.assign("self.cmc(x)")
            if head.output == "log-probabilities" {
                let logits = head.inputChannels.indices.map { s.assign("\(branches)[\($0)]") }
                if let weights = m.fusionWeights(present: head.inputChannels) {
                    // Validated fusion: the weights of the run's last validation, as constants.
                    let rank = m.network.config.unet.rank + 2
                    let terms = logits.enumerated().map { j, l in
                        let w = "[" + weights[j].map(TorchScriptSource.number).joined(separator: ", ") + "]"
                        let shape = "[1, \(weights[j].count)" + String(repeating: ", 1", count: rank - 2) + "]"
                        return s.assign("torch.softmax(\(l), 1) * torch.reshape(torch.tensor(\(w), dtype=\(l).dtype, device=\(l).device), \(shape))")
                    }
                    let fused = s.assign(terms.joined(separator: " + "))
                    s.end(returning: s.assign("torch.log(\(fused) / torch.clamp(torch.sum(\(fused), [1], True), min=1e-12))"))
                } else {
                    s.end(returning: logMeanSoftmax(logits))
                }
            } else {
                // A branch head: the branch of its modality (the only one, or one of all).
                let modality = head.inputChannels.count == 1 ? 0 : m.modalityNames.firstIndex(of: head.name)!
                s.end(returning: s.assign("\(branches)[\(modality)]"))
            }
        default:
            throw SegmentationError.unsupportedExport("export: method \(method.name) is not supported")
        }
        if layout == .voxelIndex {
            s.begin("forward", signature: "x: Tensor")
            let y = s.assign("self.forward_dhw(torch.permute(x, [0, 1, 4, 3, 2]))")
            s.end(returning: s.assign("torch.permute(\(y), [0, 1, 4, 3, 2])"))
        }
        return s
    }

    /// Builds the module for `head` of `method`: every attribute checked against the saved model's
    /// state dict (same path, same tensor), so the export reads exactly the run's weights.
    public static func build(method: SegmentationMethod, head: ExportHead, layout: ExportLayout = .concord) throws -> ScriptModule {
        method.model.eval()
        let s = try source(for: method, head: head, layout: layout)
        let state = Dictionary(try method.model.stateDict(), uniquingKeysWith: { a, _ in a })
        let module = try ScriptModule(name: "ConcordModel")
        for a in s.attributes {
            guard let saved = state[a.path] else {
                throw SegmentationError.unsupportedExport("export: \(a.path) is not in the \(method.name) model's state dict (generator out of step with the network)")
            }
            guard saved.shape == a.tensor.shape else {
                throw SegmentationError.unsupportedExport("export: \(a.path) has shape \(a.tensor.shape), the state dict \(saved.shape)")
            }
            try module.add(a.name, a.tensor.to(.cpu), parameter: a.isParameter)
        }
        try module.define(s.source)
        try module.eval()
        return module
    }

    /// The generated TorchScript source (for inspection and tests).
    public static func sourceText(method: SegmentationMethod, head: ExportHead) throws -> String {
        try source(for: method, head: head).source
    }
}

extension ModelExport {
    /// What the exported `forward(x)` of `head` computes, through Concord's own networks: the
    /// reference an export is checked against. x = (B, C, spatial...) with the head's channels.
    public static func concordOutput(method: SegmentationMethod, head: ExportHead, input x: Tensor) throws -> Tensor {
        method.model.eval()
        let channels = try head.inputChannels.indices.map { try x.narrow(dim: 1, start: $0, length: 1) }
        func logMean(_ probabilities: [Tensor]) throws -> Tensor { try mean(of: probabilities).log() }
        return try withNoGrad {
            switch method {
            case let m as SupervisedMethod: return try m.network(x)
            case let m as MeanTeacherMethod: return try m.pair.teacher(x)
            case let m as CrossPseudoSupervisionMethod:
                return try logMean(m.pair.networks.map { try F.softmax($0(x), dim: 1) })
            case let m as SemiCMLMethod:
                if head.output == "logits" { return try m.ensemble.networks[head.inputChannels[0]](x) }
                return try logMean(channels.enumerated().map { try F.softmax(m.ensemble.networks[$0.offset]($0.element), dim: 1) })
            case let m as CMCMethod:
                var inputs = [Tensor?](repeating: nil, count: m.modalityNames.count)
                for (i, c) in head.inputChannels.enumerated() { inputs[c] = channels[i] }
                let logits = try m.network(inputs).logits
                if head.output == "log-probabilities" {
                    let probabilities = try logits.compactMap { $0 }.map { try F.softmax($0, dim: 1) }
                    if let weights = m.fusionWeights(present: head.inputChannels) {
                        return try CMCMethod.weightedFusion(probabilities, weights: weights).log()
                    }
                    return try logMean(probabilities)
                }
                let branch = head.inputChannels.count == 1 ? head.inputChannels[0] : m.modalityNames.firstIndex(of: head.name)!
                return logits[branch]!
            default:
                throw SegmentationError.unsupportedExport("export: method \(method.name) is not supported")
            }
        }
    }
}
