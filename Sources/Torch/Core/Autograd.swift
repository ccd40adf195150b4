import CTorch

extension Tensor {
    /// Whether autograd records operations on this tensor.
    public var requiresGrad: Bool {
        var flag: Int32 = 0
        metadata("requiresGrad") { ct_requires_grad(handle, &flag) }
        return flag != 0
    }

    /// Marks a leaf tensor as trainable (or not). Returns self for chaining.
    @discardableResult
    public func requiresGrad(_ flag: Bool) throws -> Tensor {
        try check(ct_set_requires_grad(handle, flag ? 1 : 0))
        return self
    }

    /// The accumulated gradient, nil before the first backward pass (or after `zeroGrad`).
    /// Errors from libtorch are thrown, never read as "no gradient".
    public var grad: Tensor? {
        get throws {
            var out: ct_tensor?
            try check(ct_grad(handle, &out))
            guard let out else { return nil }
            return try Tensor.adopt(out)
        }
    }

    /// Drops the accumulated gradient (as `optimizer.zero_grad(set_to_none=True)`).
    public func zeroGrad() throws { try check(ct_zero_grad(handle)) }

    /// Back-propagates from this tensor (a scalar unless `gradient` is given).
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try check(ct_backward(handle, gradient?.handle, retainGraph ? 1 : 0))
    }

    /// The same values cut from the graph.
    public func detached() throws -> Tensor { try produce { ct_detach(handle, $0) } }
}

/// Gradient recording switches, thread-local as in PyTorch.
public enum GradMode {
    public static var isEnabled: Bool { ct_is_grad_enabled() != 0 }
}

/// Runs `body` without recording gradients (as `with torch.no_grad():`).
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = ct_set_grad_enabled(0)
    defer { _ = ct_set_grad_enabled(previous) }
    return try body()
}

/// Runs `body` with gradient recording on, even inside `withNoGrad`.
public func withGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = ct_set_grad_enabled(1)
    defer { _ = ct_set_grad_enabled(previous) }
    return try body()
}

// In-place updates for optimizers, EMA and buffers. They never record gradients.
extension Tensor {
    /// self += alpha * other
    public func add_(_ other: Tensor, alpha: Double = 1) throws { try check(ct_add_(handle, other.handle, alpha)) }
    public func add_(_ s: Double) throws { try check(ct_add_scalar_(handle, s)) }
    public func mul_(_ s: Double) throws { try check(ct_mul_scalar_(handle, s)) }
    /// self += value * t1 * t2
    public func addcmul_(_ t1: Tensor, _ t2: Tensor, value: Double) throws { try check(ct_addcmul_(handle, t1.handle, t2.handle, value)) }
    /// self += value * t1 / t2
    public func addcdiv_(_ t1: Tensor, _ t2: Tensor, value: Double) throws { try check(ct_addcdiv_(handle, t1.handle, t2.handle, value)) }
    public func copy_(_ source: Tensor) throws { try check(ct_copy_(handle, source.handle)) }
    public func fill_(_ value: Double) throws { try check(ct_fill_(handle, value)) }
    /// self += weight * (end - self)
    public func lerp_(_ end: Tensor, weight: Double) throws { try check(ct_lerp_(handle, end.handle, weight)) }
}
