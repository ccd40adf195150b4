import CTorch

/// An error raised by libtorch (its message, without the C++ backtrace) or by Concord's checks
/// around it. Thrown instead of crashing: a wrong shape in a convolution is an error the caller
/// can report, never a process abort.
public struct TorchError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Converts a ct_error into a thrown TorchError, freeing the C string.
@inline(__always)
func check(_ err: ct_error?) throws {
    if let err {
        let message = String(cString: err)
        ct_error_free(err)
        throw TorchError(message)
    }
}

/// Calls a shim function that produces one tensor and wraps the result.
@inline(__always)
func produce(_ body: (UnsafeMutablePointer<ct_tensor?>) -> ct_error?) throws -> Tensor {
    var out: ct_tensor?
    try check(body(&out))
    guard let out else { throw TorchError("libtorch returned no tensor") }
    return try Tensor.adopt(out)
}
