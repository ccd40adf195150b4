import CTorch

/// Neural-network functions over tensors, as `torch.nn.functional`. Spatial rank (1, 2 or 3) is
/// taken from the input: (N, C, D, H, W) is 3D.
public enum F {
    static func spatialRank(_ x: Tensor) throws -> Int {
        let r = x.rank - 2
        guard (1...3).contains(r) else { throw TorchError("expected a (N, C, spatial...) tensor with 1 to 3 spatial dims, got shape \(x.shape)") }
        return r
    }

    static func expand(_ values: [Int], _ n: Int, _ name: String) throws -> [Int64] {
        if values.count == 1 { return Array(repeating: Int64(values[0]), count: n) }
        guard values.count == n else { throw TorchError("\(name) has \(values.count) entries for \(n) spatial dims") }
        return values.map(Int64.init)
    }

    /// Convolution (conv1d/2d/3d by the input's rank). `stride`, `padding`, `dilation` take one
    /// value for all axes or one per axis.
    public static func conv(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1],
                            padding: [Int] = [0], dilation: [Int] = [1], groups: Int = 1) throws -> Tensor {
        let n = try spatialRank(x)
        let s = try expand(stride, n, "stride"), p = try expand(padding, n, "padding"), d = try expand(dilation, n, "dilation")
        let zeros = [Int64](repeating: 0, count: n)
        return try produce { ct_convolution(x.handle, weight.handle, bias?.handle, Int32(n), s, p, d, 0, zeros, Int64(groups), $0) }
    }

    /// Transposed convolution (conv_transpose1d/2d/3d). Weight is (C_in, C_out/groups, k...).
    public static func convTranspose(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1],
                                     padding: [Int] = [0], outputPadding: [Int] = [0], dilation: [Int] = [1],
                                     groups: Int = 1) throws -> Tensor {
        let n = try spatialRank(x)
        let s = try expand(stride, n, "stride"), p = try expand(padding, n, "padding")
        let d = try expand(dilation, n, "dilation"), op = try expand(outputPadding, n, "output_padding")
        return try produce { ct_convolution(x.handle, weight.handle, bias?.handle, Int32(n), s, p, d, 1, op, Int64(groups), $0) }
    }

    public static func maxPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0]) throws -> Tensor {
        try pool(x, kind: 0, kernel: kernel, stride: stride, padding: padding)
    }

    /// Average pooling; padded voxels are not counted (count_include_pad = false).
    public static func avgPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0]) throws -> Tensor {
        try pool(x, kind: 1, kernel: kernel, stride: stride, padding: padding)
    }

    static func pool(_ x: Tensor, kind: Int32, kernel: [Int], stride: [Int]?, padding: [Int]) throws -> Tensor {
        let n = try spatialRank(x)
        let k = try expand(kernel, n, "kernel"), s = try expand(stride ?? kernel, n, "stride"), p = try expand(padding, n, "padding")
        return try produce { ct_pool(x.handle, kind, Int32(n), k, s, p, $0) }
    }

    public static func adaptiveAvgPool(_ x: Tensor, outputSize: [Int]) throws -> Tensor {
        let n = try spatialRank(x)
        let s = try expand(outputSize, n, "output size")
        return try produce { ct_adaptive_pool(x.handle, 1, Int32(n), s, $0) }
    }

    public static func adaptiveMaxPool(_ x: Tensor, outputSize: [Int]) throws -> Tensor {
        let n = try spatialRank(x)
        let s = try expand(outputSize, n, "output size")
        return try produce { ct_adaptive_pool(x.handle, 0, Int32(n), s, $0) }
    }

    /// Sampling between voxels; the codes are the shim's CT_SAMPLE_* (shared by interpolate and
    /// grid_sample).
    public enum InterpolationMode: Int32, Sendable {
        case nearest = 0  // CT_SAMPLE_NEAREST
        case linear = 1   // CT_SAMPLE_LINEAR
    }

    /// Resizes the spatial dims to `size` (trilinear/bilinear for `.linear`).
    public static func interpolate(_ x: Tensor, size: [Int], mode: InterpolationMode = .linear,
                                   alignCorners: Bool = false) throws -> Tensor {
        let n = try spatialRank(x)
        let s = try expand(size, n, "size")
        return try produce { ct_interpolate(x.handle, Int32(n), s, mode.rawValue, alignCorners ? 1 : 0, $0) }
    }

    public enum GridPadding: Int32, Sendable { case zeros = 0, border = 1, reflection = 2 }

    /// Samples `x` (N, C, D, H, W) at `grid` (N, D', H', W', 3) of normalised (x, y, z) in [-1, 1],
    /// x indexing W. As torch.nn.functional.grid_sample.
    public static func gridSample(_ x: Tensor, grid: Tensor, mode: InterpolationMode = .linear,
                                  padding: GridPadding = .zeros, alignCorners: Bool = false) throws -> Tensor {
        try produce { ct_grid_sample(x.handle, grid.handle, mode.rawValue, padding.rawValue, alignCorners ? 1 : 0, $0) }
    }

    /// The sampling grid of an affine `theta` (N, 3, 4) for an output of `size` (N, C, D, H, W).
    public static func affineGrid(theta: Tensor, size: [Int], alignCorners: Bool = false) throws -> Tensor {
        let s = size.map(Int64.init)
        return try produce { ct_affine_grid(theta.handle, s, Int32(s.count), alignCorners ? 1 : 0, $0) }
    }

    public static func softmax(_ x: Tensor, dim: Int) throws -> Tensor { try produce { ct_softmax(x.handle, Int64(dim), $0) } }
    public static func logSoftmax(_ x: Tensor, dim: Int) throws -> Tensor { try produce { ct_log_softmax(x.handle, Int64(dim), $0) } }
    public static func relu(_ x: Tensor) throws -> Tensor { try produce { ct_relu(x.handle, $0) } }
    public static func leakyRelu(_ x: Tensor, slope: Double = 0.01) throws -> Tensor { try produce { ct_leaky_relu(x.handle, slope, $0) } }
    public static func gelu(_ x: Tensor) throws -> Tensor { try produce { ct_gelu(x.handle, $0) } }
    public static func sigmoid(_ x: Tensor) throws -> Tensor { try produce { ct_sigmoid(x.handle, $0) } }
    public static func tanh(_ x: Tensor) throws -> Tensor { try produce { ct_tanh(x.handle, $0) } }

    /// Dropout: zeroes with probability p and rescales by 1/(1-p) when `training`.
    public static func dropout(_ x: Tensor, p: Double, training: Bool) throws -> Tensor {
        try produce { ct_dropout(x.handle, p, training ? 1 : 0, $0) }
    }

    /// One-hot encoding of int64 class indices: shape (..., numClasses), int64.
    public static func oneHot(_ x: Tensor, numClasses: Int) throws -> Tensor {
        try produce { ct_one_hot(x.handle, Int64(numClasses), $0) }
    }

    public static func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                                 training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) throws -> Tensor {
        try produce {
            ct_batch_norm(x.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle,
                          training ? 1 : 0, momentum, eps, $0)
        }
    }

    /// Instance normalisation with per-instance statistics (no running stats), as nn.InstanceNorm3d.
    public static func instanceNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) throws -> Tensor {
        try produce { ct_instance_norm(x.handle, weight?.handle, bias?.handle, eps, $0) }
    }

    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) throws -> Tensor {
        try produce { ct_group_norm(x.handle, Int64(groups), weight?.handle, bias?.handle, eps, $0) }
    }

    public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) throws -> Tensor {
        let s = normalizedShape.map(Int64.init)
        return try produce { ct_layer_norm(x.handle, s, Int32(s.count), weight?.handle, bias?.handle, eps, $0) }
    }

    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        try produce { ct_linear(x.handle, weight.handle, bias?.handle, $0) }
    }

    public enum Reduction: Int32, Sendable { case none = 0, mean = 1, sum = 2 }

    /// Cross-entropy of logits (N, C, ...) against int64 class indices (N, ...) or class
    /// probabilities shaped like the logits (soft labels), as torch.nn.functional.cross_entropy.
    public static func crossEntropy(_ logits: Tensor, target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean,
                                    ignoreIndex: Int = -100, labelSmoothing: Double = 0) throws -> Tensor {
        try produce {
            ct_cross_entropy(logits.handle, target.handle, weight?.handle, reduction.rawValue, Int64(ignoreIndex), labelSmoothing, $0)
        }
    }

    /// Mean squared error, mean-reduced.
    public static func mseLoss(_ x: Tensor, _ y: Tensor) throws -> Tensor { try produce { ct_mse_loss(x.handle, y.handle, $0) } }

    /// Binary cross-entropy on logits, mean-reduced.
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Tensor) throws -> Tensor {
        try produce { ct_bce_with_logits(logits.handle, target.handle, $0) }
    }
}
