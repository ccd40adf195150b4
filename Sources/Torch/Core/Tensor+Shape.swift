import CTorch

extension Tensor {
    /// A view (or copy when needed) with a new shape; one entry may be -1.
    public func reshape(_ shape: [Int]) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try produce { ct_reshape(handle, s, Int32(s.count), $0) }
    }
    public func flatten(from start: Int = 0) throws -> Tensor {
        let s = shape
        let start = start < 0 ? start + s.count : start
        return try reshape(Array(s[..<start]) + [-1])
    }
    public func permute(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_permute(handle, d, Int32(d.count), $0) }
    }
    public func expand(_ shape: [Int]) throws -> Tensor {
        let s = shape.map(Int64.init)
        return try produce { ct_expand(handle, s, Int32(s.count), $0) }
    }
    public func flip(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try produce { ct_flip(handle, d, Int32(d.count), $0) }
    }
    public func repeated(_ counts: [Int]) throws -> Tensor {
        let d = counts.map(Int64.init)
        return try produce { ct_repeat(handle, d, Int32(d.count), $0) }
    }
    public func roll(shifts: [Int], dims: [Int]) throws -> Tensor {
        precondition(shifts.count == dims.count)
        let s = shifts.map(Int64.init), d = dims.map(Int64.init)
        return try produce { ct_roll(handle, s, d, Int32(d.count), $0) }
    }
    public func transposed(_ d0: Int, _ d1: Int) throws -> Tensor {
        try produce { ct_transpose(handle, Int64(d0), Int64(d1), $0) }
    }
    /// The slice `start ..< start + length` along `dim` (a view).
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        try produce { ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }
    /// The slice `range` along `dim` (a view).
    public func slice(dim: Int, _ range: Range<Int>) throws -> Tensor {
        try narrow(dim: dim, start: range.lowerBound, length: range.count)
    }
    public func squeeze(dim: Int) throws -> Tensor { try produce { ct_squeeze(handle, Int64(dim), $0) } }
    public func unsqueeze(dim: Int) throws -> Tensor { try produce { ct_unsqueeze(handle, Int64(dim), $0) } }
    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try produce { ct_index_select(handle, Int64(dim), index.handle, $0) }
    }
    public func gather(dim: Int, index: Tensor) throws -> Tensor {
        try produce { ct_gather(handle, Int64(dim), index.handle, $0) }
    }

    /// Concatenation along an existing dimension.
    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [ct_tensor?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try produce { ct_cat(handles, Int32(handles.count), Int64(dim), $0) }
        }
    }
    /// Stacking along a new dimension.
    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [ct_tensor?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try produce { ct_stack(handles, Int32(handles.count), Int64(dim), $0) }
        }
    }
}
