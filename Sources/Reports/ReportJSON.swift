import Foundation

/// Any JSON value, decoded leniently: the report reads files written by other parts of Concord (and
/// by older or newer versions of them), so unknown keys and unexpected types are skipped, not fatal.
enum ReportJSON: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ReportJSON])
    case object([String: ReportJSON])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ReportJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ReportJSON].self))
        }
    }

    static func parse(_ data: Data, decoder: JSONDecoder = JSONDecoder()) throws -> ReportJSON {
        try decoder.decode(ReportJSON.self, from: data)
    }

    subscript(key: String) -> ReportJSON? {
        if case let .object(members) = self { return members[key] }
        return nil
    }

    /// A finite number, else nil.
    var number: Double? {
        if case let .number(value) = self, value.isFinite { return value }
        return nil
    }

    /// An integral number, else nil.
    var integer: Int? {
        guard let value = number, value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    var string: String? {
        if case let .string(value) = self { return value }
        return nil
    }

    var object: [String: ReportJSON]? {
        if case let .object(members) = self { return members }
        return nil
    }

    var array: [ReportJSON]? {
        if case let .array(items) = self { return items }
        return nil
    }

    var isNull: Bool { self == .null }

    /// The finite numeric members of an object (others are skipped).
    var numericMembers: [String: Double] {
        guard let members = object else { return [:] }
        var out: [String: Double] = [:]
        for (key, value) in members { if let number = value.number { out[key] = number } }
        return out
    }
}
