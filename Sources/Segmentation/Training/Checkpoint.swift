import Foundation
import Torch

/// A training checkpoint: one safetensors file holding the model (`model.` prefix), the optimizer
/// state (`optimizer.`), extra tensors (e.g. `prel_teacher.`) and string metadata (iteration, best
/// score, stage...). One file means model and optimizer can never come from different moments;
/// it is written atomically (temporary file + rename), so a run killed at any moment leaves the
/// previous checkpoint intact and loadable.
public struct Checkpoint {
    public var model: [(String, Tensor)]
    public var optimizer: [(String, Tensor)]
    public var extra: [String: [(String, Tensor)]]
    public var metadata: [String: String]

    public init(model: [(String, Tensor)], optimizer: [(String, Tensor)] = [], extra: [String: [(String, Tensor)]] = [:],
                metadata: [String: String] = [:]) {
        self.model = model; self.optimizer = optimizer; self.extra = extra; self.metadata = metadata
    }

    public func write(to url: URL) throws {
        var tensors = model.map { ("model.\($0.0)", $0.1) } + optimizer.map { ("optimizer.\($0.0)", $0.1) }
        for (prefix, items) in extra.sorted(by: { $0.key < $1.key }) { tensors += items.map { ("\(prefix).\($0.0)", $0.1) } }
        var meta = metadata
        meta["format"] = "concord-checkpoint-1"
        try Safetensors.write(tensors, metadata: meta, to: url)
    }

    public static func read(_ url: URL) throws -> Checkpoint {
        let file = try Safetensors.read(url)
        guard file.metadata["format"] == "concord-checkpoint-1" else {
            throw SegmentationError.invalidRun(path: url.path, problem: "not a Concord checkpoint (metadata format is \(file.metadata["format"] ?? "missing"))")
        }
        var model: [(String, Tensor)] = [], optimizer: [(String, Tensor)] = [], extra: [String: [(String, Tensor)]] = [:]
        for (name, t) in file.tensors {
            if name.hasPrefix("model.") { model.append((String(name.dropFirst(6)), t)) }
            else if name.hasPrefix("optimizer.") { optimizer.append((String(name.dropFirst(10)), t)) }
            else if let dot = name.firstIndex(of: ".") {
                extra[String(name[..<dot]), default: []].append((String(name[name.index(after: dot)...]), t))
            }
        }
        return Checkpoint(model: model, optimizer: optimizer, extra: extra, metadata: file.metadata)
    }

    public var modelDictionary: [String: Tensor] { Dictionary(model, uniquingKeysWith: { a, _ in a }) }
    public var optimizerDictionary: [String: Tensor] { Dictionary(optimizer, uniquingKeysWith: { a, _ in a }) }
    public var iteration: Int { Int(metadata["iteration"] ?? "") ?? 0 }
    /// What the method added: the extra tensors and all metadata (the method picks its keys).
    public var methodState: MethodCheckpointState { MethodCheckpointState(tensors: extra, metadata: metadata) }
}

/// Averages state dicts with identical keys (Semi-CML's teacher: the mean of its best checkpoints).
public func averageStateDicts(_ states: [[String: Tensor]]) throws -> [String: Tensor] {
    guard let first = states.first else { throw TorchError("no state dicts to average") }
    var out: [String: Tensor] = [:]
    for (key, value) in first {
        if !value.dtype.isFloatingPoint { out[key] = value; continue }
        var sum = try value.to(.float64)
        for s in states.dropFirst() {
            guard let v = s[key] else { throw TorchError("state dicts differ: \(key) missing") }
            sum = try sum + v.to(.float64)
        }
        out[key] = try (sum / Double(states.count)).to(value.dtype)
    }
    return out
}
