import Essentials
import Foundation

/// The safetensors format (what `safetensors.torch.save_file` / `load_file` read and write):
///
///     [8 bytes: little-endian u64 N] [N bytes: JSON header, UTF-8, space-padded] [data]
///
/// The header maps each tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
/// with offsets relative to the start of the data block, plus an optional "__metadata__" object
/// of string to string. Tensors are stored C-contiguous, little-endian. Concord pads the header so
/// the data block starts on an 8-byte boundary (as the reference implementation does).
public enum Safetensors {
    /// Encodes named tensors (order kept) and metadata.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var names = Set<String>()
        var entries: [String] = []
        var blobs: [Data] = []
        var offset = 0
        for (name, tensor) in tensors {
            guard names.insert(name).inserted else { throw TorchError("safetensors: duplicate tensor name '\(name)'") }
            guard name != "__metadata__" else { throw TorchError("safetensors: '__metadata__' is reserved") }
            let cpu = try tensor.detached().to(.cpu).contiguous()
            var blob = Data(count: cpu.count * cpu.dtype.byteSize)
            try blob.withUnsafeMutableBytes { try cpu.copyBytes(into: $0) }
            let shape = cpu.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(name)):{\"dtype\":\"\(cpu.dtype.safetensorsName)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + blob.count)]}")
            offset += blob.count
            blobs.append(blob)
        }
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.insert("\"__metadata__\":{\(fields.joined(separator: ","))}", at: 0)
        }
        var header = Data("{\(entries.joined(separator: ","))}".utf8)
        let padding = (8 - (header.count % 8)) % 8
        header.append(contentsOf: [UInt8](repeating: 0x20, count: padding))
        var out = Data(capacity: 8 + header.count + offset)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(header)
        for blob in blobs { out.append(blob) }
        return out
    }

    /// Writes atomically (temporary file + rename).
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: url)
    }

    public struct File {
        /// Tensors in file order.
        public var tensors: [(String, Tensor)]
        public var metadata: [String: String]
        public var dictionary: [String: Tensor] { Dictionary(tensors, uniquingKeysWith: { a, _ in a }) }
    }

    /// Parses and validates a safetensors blob: header size within the data, known dtypes,
    /// offsets that match shapes and tile the data block without gaps or overlaps.
    public static func decode(_ data: Data, source: String = "safetensors data") throws -> File {
        func fail(_ why: String) -> TorchError { TorchError("\(source): \(why)") }
        guard data.count >= 8 else { throw fail("file is shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8) else { throw fail("header length \(headerLength) exceeds the file size \(data.count)") }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = data.count - dataStart
        var metadata: [String: String] = [:]
        var items: [(name: String, begin: Int, end: Int, dtype: DType, shape: [Int])] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(safetensorsName: dtypeName) else { throw fail("entry '\(name)' has unsupported dtype \(dtypeName)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("entry '\(name)' has a negative dimension") }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let r = acc.0.multipliedReportingOverflow(by: d); return (r.partialValue, acc.1 || r.overflow)
            }
            guard !overflow, offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= dataSize else {
                throw fail("entry '\(name)' has offsets \(offsets) outside the \(dataSize)-byte data block")
            }
            guard offsets[1] - offsets[0] == count * dtype.byteSize else {
                throw fail("entry '\(name)' spans \(offsets[1] - offsets[0]) bytes but \(dtypeName) \(shape) needs \(count * dtype.byteSize)")
            }
            items.append((name, offsets[0], offsets[1], dtype, shape))
        }
        items.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.end < $1.end) }
        var cursor = 0
        for item in items {
            guard item.begin == cursor else { throw fail("tensor '\(item.name)' starts at \(item.begin), expected \(cursor) (gap or overlap)") }
            cursor = item.end
        }
        guard cursor == dataSize else { throw fail("data block has \(dataSize - cursor) trailing bytes") }
        var tensors: [(String, Tensor)] = []
        try data.withUnsafeBytes { raw in
            for item in items {
                let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + item.begin)..<(dataStart + item.end)])
                tensors.append((item.name, try Tensor.fromBytes(bytes, dtype: item.dtype, shape: item.shape)))
            }
        }
        return File(tensors: tensors, metadata: metadata)
    }

    public static func read(_ url: URL) throws -> File {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TorchError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        return try decode(data, source: url.path)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

extension Module {
    /// Saves the state dict as safetensors (atomic).
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        try Safetensors.write(try stateDict(), metadata: metadata, to: url)
    }

    /// Loads a safetensors state dict; strict by default (missing/unexpected keys are errors).
    public func load(from url: URL, strict: Bool = true) throws {
        try loadStateDict(try Safetensors.read(url).dictionary, strict: strict)
    }
}
