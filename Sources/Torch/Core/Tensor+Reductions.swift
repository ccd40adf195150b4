import CTorch

extension Tensor {
    /// Sum of all elements (0-D).
    public func sum() throws -> Tensor { try produce { ct_sum_all(handle, $0) } }
    public func mean() throws -> Tensor { try produce { ct_mean_all(handle, $0) } }
    public func max() throws -> Tensor { try produce { ct_max_all(handle, $0) } }
    public func min() throws -> Tensor { try produce { ct_min_all(handle, $0) } }

    public func sum(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_sum_dims(handle, d, Int32(d.count), keepDims ? 1 : 0, $0) }
    }
    public func mean(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_mean_dims(handle, d, Int32(d.count), keepDims ? 1 : 0, $0) }
    }
    public func max(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_amax_dims(handle, d, Int32(d.count), keepDims ? 1 : 0, $0) }
    }
    public func min(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_amin_dims(handle, d, Int32(d.count), keepDims ? 1 : 0, $0) }
    }
    public func logSumExp(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_logsumexp(handle, d, Int32(d.count), keepDims ? 1 : 0, $0) }
    }
    /// Variance over `dims` (unbiased by default, as torch.var).
    public func variance(dims: [Int], unbiased: Bool = true, keepDims: Bool = false) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_var_dims(handle, d, Int32(d.count), unbiased ? 1 : 0, keepDims ? 1 : 0, $0) }
    }
    /// Indices of the maxima along `dim` (int64).
    public func argmax(dim: Int, keepDims: Bool = false) throws -> Tensor {
        try produce { ct_argmax(handle, Int64(dim), keepDims ? 1 : 0, $0) }
    }
    /// Euclidean norm over `dims`.
    public func norm(dims: [Int], keepDims: Bool = false) throws -> Tensor {
        try square().sum(dims: dims, keepDims: keepDims).sqrt()
    }
    /// Indices of non-zero elements, shape (n, rank).
    public func nonzero() throws -> Tensor { try produce { ct_nonzero(handle, $0) } }
}
