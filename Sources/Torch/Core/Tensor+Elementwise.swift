import CTorch

// Elementwise arithmetic with broadcasting, as PyTorch's operators.

public func + (a: Tensor, b: Tensor) throws -> Tensor { try produce { ct_add(a.handle, b.handle, $0) } }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try produce { ct_sub(a.handle, b.handle, $0) } }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try produce { ct_mul(a.handle, b.handle, $0) } }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try produce { ct_div(a.handle, b.handle, $0) } }
public prefix func - (a: Tensor) throws -> Tensor { try produce { ct_neg(a.handle, $0) } }

public func + (a: Tensor, s: Double) throws -> Tensor { try produce { ct_add_scalar(a.handle, s, $0) } }
public func + (s: Double, a: Tensor) throws -> Tensor { try a + s }
public func - (a: Tensor, s: Double) throws -> Tensor { try produce { ct_add_scalar(a.handle, -s, $0) } }
public func - (s: Double, a: Tensor) throws -> Tensor { try produce { ct_rsub_scalar(a.handle, s, $0) } }
public func * (a: Tensor, s: Double) throws -> Tensor { try produce { ct_mul_scalar(a.handle, s, $0) } }
public func * (s: Double, a: Tensor) throws -> Tensor { try a * s }
public func / (a: Tensor, s: Double) throws -> Tensor { try produce { ct_mul_scalar(a.handle, 1 / s, $0) } }
public func / (s: Double, a: Tensor) throws -> Tensor { try produce { ct_rdiv_scalar(a.handle, s, $0) } }

extension Tensor {
    public func exp() throws -> Tensor { try produce { ct_exp(handle, $0) } }
    public func log() throws -> Tensor { try produce { ct_log(handle, $0) } }
    public func sqrt() throws -> Tensor { try produce { ct_sqrt(handle, $0) } }
    public func rsqrt() throws -> Tensor { try produce { ct_rsqrt(handle, $0) } }
    public func abs() throws -> Tensor { try produce { ct_abs(handle, $0) } }
    public func square() throws -> Tensor { try produce { ct_square(handle, $0) } }
    public func sign() throws -> Tensor { try produce { ct_sign(handle, $0) } }
    public func floor() throws -> Tensor { try produce { ct_floor(handle, $0) } }
    public func round() throws -> Tensor { try produce { ct_round(handle, $0) } }
    public func cos() throws -> Tensor { try produce { ct_cos(handle, $0) } }
    public func sin() throws -> Tensor { try produce { ct_sin(handle, $0) } }
    public func pow(_ exponent: Double) throws -> Tensor { try produce { ct_pow_scalar(handle, exponent, $0) } }
    public func pow(_ exponent: Tensor) throws -> Tensor { try produce { ct_pow(handle, exponent.handle, $0) } }
    public func logicalNot() throws -> Tensor { try produce { ct_logical_not(handle, $0) } }
    public func logicalAnd(_ other: Tensor) throws -> Tensor { try produce { ct_logical_and(handle, other.handle, $0) } }
    public func logicalOr(_ other: Tensor) throws -> Tensor { try produce { ct_logical_or(handle, other.handle, $0) } }
    /// True where the value is neither NaN nor infinite.
    public func isFinite() throws -> Tensor { try produce { ct_isfinite(handle, $0) } }

    public func clamp(min lo: Double? = nil, max hi: Double? = nil) throws -> Tensor {
        try produce { ct_clamp(handle, lo ?? 0, hi ?? 0, lo == nil ? 0 : 1, hi == nil ? 0 : 1, $0) }
    }

    public func maximum(_ other: Tensor) throws -> Tensor { try produce { ct_maximum(handle, other.handle, $0) } }
    public func minimum(_ other: Tensor) throws -> Tensor { try produce { ct_minimum(handle, other.handle, $0) } }

    // Comparisons return bool tensors.
    public func eq(_ other: Tensor) throws -> Tensor { try produce { ct_eq(handle, other.handle, $0) } }
    public func ne(_ other: Tensor) throws -> Tensor { try produce { ct_ne(handle, other.handle, $0) } }
    public func lt(_ other: Tensor) throws -> Tensor { try produce { ct_lt(handle, other.handle, $0) } }
    public func le(_ other: Tensor) throws -> Tensor { try produce { ct_le(handle, other.handle, $0) } }
    public func gt(_ other: Tensor) throws -> Tensor { try produce { ct_gt(handle, other.handle, $0) } }
    public func ge(_ other: Tensor) throws -> Tensor { try produce { ct_ge(handle, other.handle, $0) } }
    public func eq(_ s: Double) throws -> Tensor { try produce { ct_eq_scalar(handle, s, $0) } }
    public func lt(_ s: Double) throws -> Tensor { try produce { ct_lt_scalar(handle, s, $0) } }
    public func gt(_ s: Double) throws -> Tensor { try produce { ct_gt_scalar(handle, s, $0) } }
    public func le(_ s: Double) throws -> Tensor { try produce { ct_le_scalar(handle, s, $0) } }
    public func ge(_ s: Double) throws -> Tensor { try produce { ct_ge_scalar(handle, s, $0) } }

    /// Replaces the values where `mask` is true.
    public func maskedFill(_ mask: Tensor, value: Double) throws -> Tensor {
        try produce { ct_masked_fill(handle, mask.handle, value, $0) }
    }

    public func matmul(_ other: Tensor) throws -> Tensor { try produce { ct_matmul(handle, other.handle, $0) } }
    /// Batched matrix product of (B, n, m) and (B, m, p).
    public func bmm(_ other: Tensor) throws -> Tensor { try produce { ct_bmm(handle, other.handle, $0) } }
}

/// Elementwise selection: `a` where `condition`, else `b`.
public func where_(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try produce { ct_where(condition.handle, a.handle, b.handle, $0) }
}
