import Foundation
import Torch

/// The one way Concord reads settings written partially or by an older version: the object is
/// laid over the defaults' own encoding (nested objects merged key by key), and the result is
/// decoded strictly. So a key missing from a file keeps its default, a key that is no setting is
/// an error naming its path (`cmc.lambdaCSX`), and a value of the wrong type is an error naming
/// its path too. `TrainingConfig.overriding` (config files, `run.json`) goes through here, and so
/// can any other settings type (e.g. `ViTConfig` stored in a weights file).
public enum SettingsDecoding {
    /// `overrides` over `defaults`; `source` names the file or flag in messages ("config").
    public static func decode<T: Codable>(_ type: T.Type, overrides: [String: Any], defaults: T, source: String) throws -> T {
        guard let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any] else {
            throw SegmentationError.invalidSettings(source: source, problem: "\(T.self) is not a settings object")
        }
        var unknown: [String] = []
        let merged = merge(base, overrides, path: "", unknown: &unknown)
        if !unknown.isEmpty {
            throw SegmentationError.invalidSettings(source: source, problem: "unknown key(s) \(unknown.sorted().joined(separator: ", ")); known top-level keys: \(base.keys.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.dataCorrupted(context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw SegmentationError.invalidSettings(source: source, problem: "wrong value at \(path.isEmpty ? "top level" : path): \(context.debugDescription)")
        }
    }

    /// Partial settings from JSON data (an object).
    public static func decode<T: Codable>(_ type: T.Type, json: Data, defaults: T, source: String) throws -> T {
        guard let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw SegmentationError.invalidSettings(source: source, problem: "not a JSON object")
        }
        return try decode(type, overrides: object, defaults: defaults, source: source)
    }

    static func merge(_ base: [String: Any], _ over: [String: Any], path: String, unknown: inout [String]) -> [String: Any] {
        var out = base
        for (key, value) in over {
            let here = path.isEmpty ? key : "\(path).\(key)"
            guard let existing = base[key] else { unknown.append(here); continue }
            if let b = existing as? [String: Any], let o = value as? [String: Any] {
                out[key] = merge(b, o, path: here, unknown: &unknown)
            } else {
                out[key] = value
            }
        }
        return out
    }
}

/// A string setting with a fixed set of values: encoded as its raw string (so files keep their
/// text), decoded with a message that lists the allowed values, and listed in `--help`.
public protocol SettingChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension SettingChoice {
    /// "a, b or c".
    public static var choices: String {
        let all = allCases.map(\.rawValue)
        return all.count < 2 ? all.joined() : all.dropLast().joined(separator: ", ") + " or " + all.last!
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "must be \(Self.choices), got '\(text)'"))
        }
        self = value
    }
}

/// `optimizer`.
public enum OptimizerKind: String, SettingChoice {
    case adam, adamw, sgd
}

/// `schedule`: the learning rate over training.
public enum LearningRateScheduleKind: String, SettingChoice {
    /// lr (1 - t)^0.9 (after the warm-up, if any, over the remaining iterations).
    case poly
    /// lr (after the warm-up, if any).
    case constant
    /// Linear warm-up over `warmupIterations`, then a cosine decay.
    case cosine
}

/// `device`: where training runs. Written as the text it was given in ("cpu", "cuda", "cuda:1",
/// "auto"; "gpu" is read as "cuda").
public enum DeviceSetting: Codable, Sendable, Equatable, CustomStringConvertible {
    case cpu
    /// A CUDA device by index; nil = the default one ("cuda").
    case cuda(Int?)
    /// CUDA when this libtorch has it, else the CPU.
    case auto

    public static let choices = "cpu, cuda, cuda:N or auto (CUDA when available)"

    /// The accepted spellings, case-insensitive; nil for anything else.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "cpu": self = .cpu
        case "cuda", "gpu": self = .cuda(nil)
        case "auto": self = .auto
        default:
            let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "cuda", let i = Int(parts[1]), i >= 0 else { return nil }
            self = .cuda(i)
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(nil): return "cuda"
        case .cuda(let i?): return "cuda:\(i)"
        case .auto: return "auto"
        }
    }

    /// The libtorch device; an error when CUDA is asked for and this libtorch has none.
    public func resolve() throws -> Device {
        switch self {
        case .cpu: return .cpu
        case .auto: return Runtime.cudaAvailable ? .cuda(0) : .cpu
        case .cuda(let i):
            guard Runtime.cudaAvailable else {
                throw SegmentationError.unavailableDevice("device \(self) requested but CUDA is not available: \(Runtime.cudaStatus)")
            }
            return .cuda(i ?? 0)
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = DeviceSetting(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "must be \(Self.choices), got '\(text)'"))
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
