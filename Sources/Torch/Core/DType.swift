import CTorch

/// Element types, with libtorch's ScalarType codes.
public enum DType: Int32, Sendable, CaseIterable, Codable {
    case uint8 = 0, int8 = 1, int16 = 2, int32 = 3, int64 = 4
    case float16 = 5, float32 = 6, float64 = 7, bool = 11, bfloat16 = 15

    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .int16, .float16, .bfloat16: 2
        case .int32, .float32: 4
        case .int64, .float64: 8
        }
    }

    public var isFloatingPoint: Bool { self == .float16 || self == .float32 || self == .float64 || self == .bfloat16 }

    /// The safetensors name of this dtype.
    public var safetensorsName: String {
        switch self {
        case .uint8: "U8"
        case .int8: "I8"
        case .int16: "I16"
        case .int32: "I32"
        case .int64: "I64"
        case .float16: "F16"
        case .float32: "F32"
        case .float64: "F64"
        case .bool: "BOOL"
        case .bfloat16: "BF16"
        }
    }

    public init?(safetensorsName: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
        self = match
    }
}

/// Where a tensor lives.
public enum Device: Equatable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    var code: (Int32, Int32) {
        switch self {
        case .cpu: (0, 0)
        case .cuda(let index): (1, Int32(index))
        }
    }

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let i): "cuda:\(i)"
        }
    }

    /// Parses "cpu", "cuda", "cuda:1"; "auto" picks CUDA when the linked libtorch has it.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "cpu": self = .cpu
        case "cuda", "gpu": self = .cuda(0)
        case "auto": self = Runtime.cudaAvailable ? .cuda(0) : .cpu
        default:
            let parts = text.lowercased().split(separator: ":")
            guard parts.count == 2, parts[0] == "cuda", let i = Int(parts[1]) else { return nil }
            self = .cuda(i)
        }
    }
}

/// Swift element types that map onto a DType, for creating tensors from arrays and reading back.
public protocol TensorElement: Numeric {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }

/// How a tensor's elements are laid out in memory (its strides); the shape is the same either way.
public enum MemoryFormat: Sendable {
    /// Row-major in the order of the dims (NCDHW for 5-D tensors).
    case contiguous
    /// Channels innermost for 4-D tensors (NHWC order in memory).
    case channelsLast
    /// Channels innermost for 5-D tensors (NDHWC order in memory); oneDNN's and cuDNN's fast
    /// layout for 3D convolutions.
    case channelsLast3d

    var code: Int32 {
        switch self {
        case .contiguous: Int32(CT_FORMAT_CONTIGUOUS)
        case .channelsLast: Int32(CT_FORMAT_CHANNELS_LAST)
        case .channelsLast3d: Int32(CT_FORMAT_CHANNELS_LAST_3D)
        }
    }
}
