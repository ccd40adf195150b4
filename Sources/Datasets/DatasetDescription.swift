import Foundation
import Essentials

/// Whether the channels of a case come from the same patient (paired, roughly co-registered) or
/// the dataset pools single-modality cohorts of different patients (unpaired).
public enum Pairing: String, Codable, Sendable, CaseIterable {
    case paired, unpaired
}

/// One entry of nnU-Net's `labels` map: a plain label value, or a region (a list of label values
/// trained as one region, nnU-Net's region-based training). Concord reads both but trains only on
/// plain values.
public enum DatasetLabelValue: Codable, Equatable, Sendable {
    case value(Int)
    case region([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .value(v); return }
        if let r = try? c.decode([Int].self) { self = .region(r); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "a label must be an integer or a list of integers (a region)")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .value(let v): try c.encode(v)
        case .region(let r): try c.encode(r)
        }
    }
}

/// Errors about `dataset.json` itself.
public struct DatasetDescriptionError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var file: String
    public var problem: String
    public init(file: String, problem: String) { self.file = file; self.problem = problem }
    public var description: String { "\(file): \(problem)" }
    public var errorDescription: String? { description }
}

/// nnU-Net v2's `dataset.json`, with Concord's extensions.
///
/// nnU-Net keys: `channel_names` ({"0": "CT", "1": "T2"}; v1's `modality` is accepted when
/// reading), `labels` ({"background": 0, "LV": 1, ...}; region lists are decoded but rejected by
/// `labelValues()`), `numTraining`, `file_ending` (".nii.gz"), optional `regions_class_order`,
/// `name`, `description`. Concord adds: `numUnlabeled` (cases in `imagesUnlabeled/`), `pairing`
/// ("paired", the default when absent, or "unpaired") and `channels_present` (case -> channel
/// indices present, for cases that lack some channels). Unknown keys are ignored, as nnU-Net does.
public struct DatasetDescription: Codable, Equatable, Sendable {
    /// Channel index (as a string, "0", "1", ...) -> name. nnU-Net uses "CT" to select CT
    /// normalisation; any other name is z-scored per image.
    public var channelNames: [String: String]
    /// Label name -> value (or region).
    public var labels: [String: DatasetLabelValue]
    public var numTraining: Int
    public var fileEnding: String
    public var numUnlabeled: Int?
    public var pairing: Pairing
    public var channelsPresent: [String: [Int]]?
    public var regionsClassOrder: [Int]?
    public var name: String?
    public var description: String?

    enum CodingKeys: String, CodingKey {
        case channelNames = "channel_names"
        case modality                       // nnU-Net v1's name for channel_names (read only)
        case labels, numTraining
        case fileEnding = "file_ending"
        case numUnlabeled, pairing
        case channelsPresent = "channels_present"
        case regionsClassOrder = "regions_class_order"
        case name, description
    }

    public init(channelNames: [String], labels: [(String, Int)], numTraining: Int, fileEnding: String = ".nii.gz",
                numUnlabeled: Int? = nil, pairing: Pairing = .paired, channelsPresent: [String: [Int]]? = nil,
                name: String? = nil, description: String? = nil) {
        self.channelNames = Dictionary(uniqueKeysWithValues: channelNames.enumerated().map { (String($0.offset), $0.element) })
        self.labels = Dictionary(uniqueKeysWithValues: labels.map { ($0.0, DatasetLabelValue.value($0.1)) })
        self.numTraining = numTraining
        self.fileEnding = fileEnding
        self.numUnlabeled = numUnlabeled
        self.pairing = pairing
        self.channelsPresent = channelsPresent
        self.regionsClassOrder = nil
        self.name = name
        self.description = description
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let names = try c.decodeIfPresent([String: String].self, forKey: .channelNames) {
            channelNames = names
        } else if let names = try c.decodeIfPresent([String: String].self, forKey: .modality) {
            channelNames = names
        } else {
            throw DecodingError.keyNotFound(CodingKeys.channelNames, .init(codingPath: c.codingPath,
                debugDescription: "dataset.json needs \"channel_names\" (e.g. {\"0\": \"bSSFP\", \"1\": \"LGE\"})"))
        }
        labels = try c.decode([String: DatasetLabelValue].self, forKey: .labels)
        numTraining = try c.decode(Int.self, forKey: .numTraining)
        fileEnding = try c.decodeIfPresent(String.self, forKey: .fileEnding) ?? ".nii.gz"
        numUnlabeled = try c.decodeIfPresent(Int.self, forKey: .numUnlabeled)
        pairing = try c.decodeIfPresent(Pairing.self, forKey: .pairing) ?? .paired
        channelsPresent = try c.decodeIfPresent([String: [Int]].self, forKey: .channelsPresent)
        regionsClassOrder = try c.decodeIfPresent([Int].self, forKey: .regionsClassOrder)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(channelNames, forKey: .channelNames)
        try c.encode(labels, forKey: .labels)
        try c.encode(numTraining, forKey: .numTraining)
        try c.encode(fileEnding, forKey: .fileEnding)
        try c.encodeIfPresent(numUnlabeled, forKey: .numUnlabeled)
        try c.encode(pairing, forKey: .pairing)
        try c.encodeIfPresent(channelsPresent, forKey: .channelsPresent)
        try c.encodeIfPresent(regionsClassOrder, forKey: .regionsClassOrder)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
    }

    // MARK: - Derived views

    /// Number of channels (channel_names has keys "0" ..< count).
    public var channelCount: Int { channelNames.count }

    /// Channel names in index order (throws when the keys are not exactly "0" ..< count).
    public func orderedChannelNames() throws -> [String] {
        let n = channelNames.count
        var out: [String] = []
        for i in 0..<n {
            guard let name = channelNames[String(i)] else {
                throw DatasetDescriptionError(file: "dataset.json", problem: "channel_names must have the keys \"0\" ... \"\(n - 1)\" (one per channel); found \(channelNames.keys.sorted())")
            }
            out.append(name)
        }
        return out
    }

    /// Label name -> value. Throws when a label is a region (a list of values): nnU-Net's region
    /// labels are not supported by Concord.
    public func labelValues() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for (name, value) in labels {
            switch value {
            case .value(let v): out[name] = v
            case .region(let r):
                throw DatasetDescriptionError(file: "dataset.json", problem: "label \"\(name)\" is a region \(r) (nnU-Net region-based training); Concord supports only plain integer labels, one value per class")
            }
        }
        return out
    }

    /// Label names ordered by value (index = value), after checking that values are 0 ..< K with
    /// 0 = background and no duplicates.
    public func orderedLabelNames() throws -> [String] {
        let values = try labelValues()
        let k = values.count
        var names = [String?](repeating: nil, count: k)
        for (name, v) in values {
            guard v >= 0 && v < k else {
                throw DatasetDescriptionError(file: "dataset.json", problem: "label \"\(name)\" = \(v): label values must be consecutive integers 0 ..< \(k) (0 = background)")
            }
            if let other = names[v] {
                throw DatasetDescriptionError(file: "dataset.json", problem: "labels \"\(other)\" and \"\(name)\" share the value \(v)")
            }
            names[v] = name
        }
        return names.map { $0! }
    }

    /// Every problem with the description itself (empty when usable).
    public func problems() -> [String] {
        var out: [String] = []
        if channelNames.isEmpty { out.append("channel_names is empty: at least one channel is needed") }
        do { _ = try orderedChannelNames() } catch let e as DatasetDescriptionError { out.append(e.problem) } catch { out.append("\(error)") }
        do {
            let names = try orderedLabelNames()
            if names.count < 2 { out.append("labels must declare background (0) and at least one class") }
            if let bg = try labelValues()["background"], bg != 0 { out.append("label \"background\" must be 0, not \(bg)") }
        } catch let e as DatasetDescriptionError { out.append(e.problem) } catch { out.append("\(error)") }
        if numTraining < 0 { out.append("numTraining is negative (\(numTraining))") }
        if let n = numUnlabeled, n < 0 { out.append("numUnlabeled is negative (\(n))") }
        if !fileEnding.hasPrefix(".") { out.append("file_ending \"\(fileEnding)\" must start with a dot (e.g. \".nii.gz\")") }
        else if ![".nii", ".nii.gz"].contains(fileEnding) { out.append("file_ending \"\(fileEnding)\": Concord reads NIfTI only (\".nii.gz\" or \".nii\")") }
        if let present = channelsPresent {
            for (c, list) in present.sorted(by: { $0.key < $1.key }) {
                if list.isEmpty { out.append("channels_present[\"\(c)\"] is empty: a case needs at least one channel") }
                if let bad = list.first(where: { $0 < 0 || $0 >= channelNames.count }) {
                    out.append("channels_present[\"\(c)\"] lists channel \(bad), but channel_names declares \(channelNames.count) channel(s)")
                }
                if Set(list).count != list.count { out.append("channels_present[\"\(c)\"] lists a channel twice: \(list)") }
            }
        }
        return out
    }

    // MARK: - Files

    /// Reads `dataset.json` from a dataset folder or the file itself.
    public static func load(from url: URL) throws -> DatasetDescription {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
            ? url.appendingPathComponent("dataset.json") : url
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw DatasetDescriptionError(file: file.path, problem: "cannot read: \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(DatasetDescription.self, from: data) } catch let e as DecodingError {
            throw DatasetDescriptionError(file: file.path, problem: "not a valid dataset.json: \(Self.explain(e))")
        }
    }

    /// Writes pretty-printed, key-sorted JSON atomically (temporary file + rename).
    public func save(to url: URL) throws {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
            ? url.appendingPathComponent("dataset.json") : url
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self), to: file)
    }

    static func explain(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String { c.isEmpty ? "top level" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing key \"\(k.stringValue)\" at \(path(ctx.codingPath))" + (ctx.debugDescription.isEmpty ? "" : " (\(ctx.debugDescription))")
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}
