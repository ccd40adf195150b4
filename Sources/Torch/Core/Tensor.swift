import Foundation
import CTorch

/// An n-dimensional array owned by libtorch. The Swift object owns exactly one handle and frees it
/// when the last Swift reference goes away; libtorch's own reference counting handles views.
///
/// Every operation throws `TorchError` on failure (shape mismatch, dtype mismatch, out of memory):
/// one `try` covers a whole expression such as `try relu(conv(x) + b) * 2`.
public final class Tensor: @unchecked Sendable {
    let handle: ct_tensor

    /// Takes ownership of a handle the shim produced. Use `Tensor.adopt` for results of libtorch
    /// operations: it also checks that the dtype is one Concord knows.
    init(owning handle: ct_tensor) { self.handle = handle }
    deinit { ct_free(handle) }

    /// Wraps a handle from the shim, refusing (and freeing) a tensor whose dtype code is not one of
    /// `DType`'s: every `Tensor` in Swift has a known dtype, so `dtype` never has to guess.
    static func adopt(_ handle: ct_tensor) throws -> Tensor {
        var code: Int32 = 0
        if let err = ct_dtype(handle, &code) {
            ct_free(handle)
            try check(err)
        }
        guard DType(rawValue: code) != nil else {
            ct_free(handle)
            throw TorchError("libtorch produced a tensor of dtype code \(code), which Concord does not support "
                             + "(supported: \(DType.allCases.map { "\($0)" }.joined(separator: ", ")))")
        }
        return Tensor(owning: handle)
    }

    /// Reads metadata through the shim. A `Tensor` always holds a valid handle, so these getters
    /// cannot fail; if one ever does, the broken invariant stops the process with the shim's message
    /// instead of returning a made-up value.
    @inline(__always)
    func metadata(_ name: String, _ body: () -> ct_error?) {
        if let err = body() {
            let message = String(cString: err)
            ct_error_free(err)
            preconditionFailure("Tensor.\(name): \(message)")
        }
    }

    // MARK: metadata

    public var rank: Int {
        var n: Int32 = 0
        metadata("rank") { ct_ndim(handle, &n) }
        return Int(n)
    }

    public var shape: [Int] {
        let n = rank
        var dims = [Int64](repeating: 0, count: n)
        dims.withUnsafeMutableBufferPointer { buffer in metadata("shape") { ct_shape(handle, buffer.baseAddress, Int32(n)) } }
        return dims.map(Int.init)
    }

    /// Size of one dimension; negative indices count from the end.
    public func size(_ dim: Int) -> Int {
        let s = shape
        return s[dim < 0 ? dim + s.count : dim]
    }

    public var count: Int {
        var n: Int64 = 0
        metadata("count") { ct_numel(handle, &n) }
        return Int(n)
    }

    /// Known by construction: `Tensor.adopt` refuses tensors of other dtypes.
    public var dtype: DType {
        var code: Int32 = 0
        metadata("dtype") { ct_dtype(handle, &code) }
        guard let dtype = DType(rawValue: code) else { preconditionFailure("Tensor.dtype: unknown dtype code \(code)") }
        return dtype
    }

    public var device: Device {
        var type: Int32 = 0, index: Int32 = 0
        metadata("device") { ct_device(handle, &type, &index) }
        return type == 1 ? .cuda(Int(index)) : .cpu
    }

    // MARK: creation

    /// A tensor holding a copy of `values` with the given shape (C order: last index fastest).
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]) throws {
        let expected = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), expected == values.count else {
            throw TorchError("cannot shape \(values.count) values as \(shape)")
        }
        let dims = shape.map(Int64.init)
        var out: ct_tensor?
        try values.withUnsafeBytes { raw in
            try check(ct_from_data(raw.baseAddress, raw.count, T.dtype.rawValue, dims, Int32(dims.count), &out))
        }
        guard let out else { throw TorchError("libtorch returned no tensor") }
        self.init(owning: out)
    }

    /// A 1-D tensor of the values.
    public convenience init<T: TensorElement>(_ values: [T]) throws {
        try self.init(values, shape: [values.count])
    }

    /// A 0-D tensor holding one value.
    public convenience init(scalar: Double, dtype: DType = .float32, device: Device = .cpu) throws {
        let t = try Tensor.full([], value: scalar, dtype: dtype, device: device)
        var out: ct_tensor?
        try check(ct_clone_handle(t.handle, &out))
        self.init(owning: out!)
    }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (dev, index) = device.code
        return try produce { ct_full(dims, Int32(dims.count), value, dtype.rawValue, dev, index, $0) }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, value: 0, dtype: dtype, device: device)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, value: 1, dtype: dtype, device: device)
    }

    /// Uniform samples in [0, 1) from libtorch's generator (seeded by `Runtime.manualSeed`).
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (dev, index) = device.code
        return try produce { ct_rand(dims, Int32(dims.count), 0, dtype.rawValue, dev, index, $0) }
    }

    /// Standard normal samples.
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        let (dev, index) = device.code
        return try produce { ct_rand(dims, Int32(dims.count), 1, dtype.rawValue, dev, index, $0) }
    }

    /// Integers uniformly in [low, high).
    public static func randint(_ low: Int, _ high: Int, shape: [Int], dtype: DType = .int64) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try produce { ct_randint(Int64(low), Int64(high), dims, Int32(dims.count), dtype.rawValue, $0) }
    }

    public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType = .float32) throws -> Tensor {
        try produce { ct_arange(start, end, step, dtype.rawValue, $0) }
    }

    // MARK: conversion

    public func to(_ dtype: DType) throws -> Tensor {
        let (dev, index) = device.code
        return try produce { ct_to(handle, dtype.rawValue, dev, index, 0, $0) }
    }

    /// The same values with another element type (as `to(_:)`; reads better at call sites).
    public func to(dtype: DType) throws -> Tensor { try to(dtype) }

    /// A copy on `device`. With `nonBlocking`, a copy from pinned host memory to CUDA returns
    /// before it completes (ordered on the current stream, so later CUDA work sees the values).
    public func to(_ device: Device, nonBlocking: Bool = false) throws -> Tensor {
        let (dev, index) = device.code
        return try produce { ct_to(handle, dtype.rawValue, dev, index, nonBlocking ? 1 : 0, $0) }
    }

    public func to(_ device: Device, dtype: DType, nonBlocking: Bool = false) throws -> Tensor {
        let (dev, index) = device.code
        return try produce { ct_to(handle, dtype.rawValue, dev, index, nonBlocking ? 1 : 0, $0) }
    }

    /// A copy in page-locked host memory, for non-blocking copies to CUDA. Needs CUDA.
    public func pinMemory() throws -> Tensor { try produce { ct_pin_memory(handle, $0) } }

    /// Whether this is a CPU tensor in page-locked memory.
    public var isPinned: Bool {
        var flag: Int32 = 0
        metadata("isPinned") { ct_is_pinned(handle, &flag) }
        return flag != 0
    }

    /// The values in C order, converted to `T` (and copied to the CPU) when needed.
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws -> [T] {
        let source = dtype == T.dtype ? self : try to(T.dtype)
        let n = source.count
        var result = [T](repeating: 0, count: n)
        try result.withUnsafeMutableBytes { raw in
            try check(ct_copy_data(source.handle, raw.baseAddress, raw.count))
        }
        return result
    }

    /// Copies the raw bytes (C order, native endianness, this tensor's dtype) into `buffer`.
    public func copyBytes(into buffer: UnsafeMutableRawBufferPointer) throws {
        try check(ct_copy_data(handle, buffer.baseAddress, buffer.count))
    }

    /// A tensor from raw bytes of the given dtype (C order, native endianness).
    public static func fromBytes(_ bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) throws -> Tensor {
        let expected = shape.reduce(1, *) * dtype.byteSize
        guard bytes.count == expected else {
            throw TorchError("\(bytes.count) bytes cannot hold a \(dtype) tensor of shape \(shape) (\(expected) bytes)")
        }
        let dims = shape.map(Int64.init)
        return try produce { ct_from_data(bytes.baseAddress, bytes.count, dtype.rawValue, dims, Int32(dims.count), $0) }
    }

    /// The single value of a one-element tensor.
    public func item() throws -> Double {
        var value = 0.0
        try check(ct_item(handle, &value))
        return value
    }

    public func float() throws -> Float { Float(try item()) }

    public func contiguous() throws -> Tensor { try produce { ct_contiguous(handle, $0) } }

    /// The same values laid out in `memoryFormat` (a copy unless already so laid out). Shape and
    /// indexing are unchanged; only the strides differ.
    public func contiguous(memoryFormat: MemoryFormat) throws -> Tensor {
        try produce { ct_contiguous_format(handle, memoryFormat.code, $0) }
    }

    public func isContiguous(memoryFormat: MemoryFormat) throws -> Bool {
        var flag: Int32 = 0
        try check(ct_is_contiguous_format(handle, memoryFormat.code, &flag))
        return flag != 0
    }
    /// A copy with its own storage (still part of the autograd graph).
    public func clone() throws -> Tensor { try produce { ct_clone(handle, $0) } }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        var text = "Tensor(\(shape), \(dtype), \(device))"
        if count <= 16, let values = try? toArray(Double.self) {
            text += " " + values.map { String(format: "%.5g", $0) }.joined(separator: ", ")
        }
        return text
    }
}
