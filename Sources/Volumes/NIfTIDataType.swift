import Foundation

/// The voxel datatypes Concord reads and writes (NIfTI `datatype` codes).
public enum NIfTIDataType: Int16, CaseIterable, Sendable, Codable {
    case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64, int8 = 256, uint16 = 512, uint32 = 768

    /// numpy-style name: "uint8", "int16", ... (what `VolumeInfo.datatype` reports).
    public var name: String {
        switch self {
        case .uint8: return "uint8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .float32: return "float32"
        case .float64: return "float64"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        }
    }

    /// Parses `name` ("uint8", "float32", ...).
    public init?(name: String) {
        guard let t = NIfTIDataType.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = t
    }

    public var bytesPerVoxel: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64: return 8
        }
    }

    /// The header's `bitpix` for this datatype.
    public var bitpix: Int { bytesPerVoxel * 8 }

    public var isInteger: Bool { self != .float32 && self != .float64 }

    /// The representable range of an integer datatype (nil for floating point).
    public var integerRange: ClosedRange<Double>? {
        switch self {
        case .uint8: return 0...255
        case .int8: return -128...127
        case .int16: return -32768...32767
        case .uint16: return 0...65535
        case .int32: return -2147483648...2147483647
        case .uint32: return 0...4294967295
        case .float32, .float64: return nil
        }
    }
}
