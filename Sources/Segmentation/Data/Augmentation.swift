import Essentials
import Foundation
import Torch
import Volumes

/// Seeded data augmentation on patches (C, D, H, W) and their labels (D, H, W). Spatial transforms
/// are shared by all channels and the label; intensity transforms are drawn per channel.
public struct Augmentation: Codable, Sendable {
    public var flipProbability: Double = 0.5
    /// Probability of a random rotation/scaling (trilinear for images, nearest for labels).
    public var affineProbability: Double = 0.2
    public var maxRotationDegrees: Double = 15
    public var scaleRange: [Double] = [0.85, 1.15]
    public var intensityScale: Double = 0.1
    public var intensityShift: Double = 0.1
    public var noiseProbability: Double = 0.15
    public var noiseStd: Double = 0.1
    public var gammaProbability: Double = 0.15
    public var gammaRange: [Double] = [0.7, 1.5]
    /// Rotation by a multiple of 90 degrees in the (H, W) plane, applied only when H == W so the
    /// patch keeps its shape (off by default: most volumes are not symmetric that way).
    public var rot90Probability: Double = 0
    /// Elastic deformation: a random displacement field on a coarse grid (4 control points per
    /// axis, up to `elasticMagnitude` voxels), smoothly interpolated (off by default, as nnU-Net).
    public var elasticProbability: Double = 0
    public var elasticMagnitude: Double = 2
    /// Simulated misalignment for training robustness: each non-reference channel (index >= 1) is
    /// moved by its own `RigidTransform.random(maxTranslationMM: misalignMM, maxRotationDegrees:
    /// misalignDegrees)` (translation uniform in the ball of radius `misalignMM`, rotation up to
    /// `misalignDegrees` about a uniform axis: the distribution of the phantom and of
    /// `--misalign-mm`), about the patch centre, with edge replication; the label stays with
    /// channel 0. `spacing` (mm per tensor axis D, H, W) converts millimetres to voxels; the trainer
    /// sets it from the preprocessing plan.
    public var misalignProbability: Double = 0
    public var misalignMM: Double = 0
    public var misalignDegrees: Double = 0
    public var spacing: [Double] = [1, 1, 1]
    /// Gaussian blur of each channel with sigma drawn from `blurSigma` (voxels).
    public var blurProbability: Double = 0.1
    public var blurSigma: [Double] = [0.5, 1.0]

    public init() {}

    public static let none: Augmentation = {
        var a = Augmentation()
        a.flipProbability = 0; a.affineProbability = 0; a.intensityScale = 0; a.intensityShift = 0
        a.noiseProbability = 0; a.gammaProbability = 0; a.rot90Probability = 0; a.elasticProbability = 0
        a.blurProbability = 0; a.misalignProbability = 0
        return a
    }()

    /// Augments one sample. Every random draw comes from `rng` (never libtorch's global generator),
    /// so batches can be built on a background thread deterministically.
    public func callAsFunction(image: Tensor, label: Tensor?, rng: inout SeededGenerator) throws -> (Tensor, Tensor?) {
        var x = image, y = label
        let spatial = x.rank - 1
        for d in 0..<spatial where rng.unit() < flipProbability {
            x = try x.flip([1 + d])
            y = try y?.flip([d])
        }
        if spatial >= 2 && x.size(-1) == x.size(-2) && rng.unit() < rot90Probability {
            let quarterTurns = rng.below(3) + 1
            for _ in 0..<quarterTurns {
                // One quarter turn in (H, W): transpose the two axes, then flip W.
                x = try x.transposed(x.rank - 2, x.rank - 1).flip([x.rank - 1])
                y = try y.map { try $0.transposed($0.rank - 2, $0.rank - 1).flip([$0.rank - 1]) }
            }
        }
        if spatial == 3 && rng.unit() < affineProbability {
            (x, y) = try randomAffine(x, y, rng: &rng)
        }
        if spatial == 3 && rng.unit() < elasticProbability {
            (x, y) = try elastic(x, y, rng: &rng)
        }
        if spatial == 3 && x.size(0) > 1 && (misalignMM > 0 || misalignDegrees > 0) && rng.unit() < misalignProbability {
            x = try misalign(x, rng: &rng)
        }
        let channels = x.size(0)
        var scales: [Float] = [], shifts: [Float] = []
        for _ in 0..<channels {
            scales.append(Float(1 + intensityScale * (2 * rng.unit() - 1)))
            shifts.append(Float(intensityShift * (2 * rng.unit() - 1)))
        }
        let view = [channels] + Array(repeating: 1, count: spatial)
        if intensityScale > 0 || intensityShift > 0 {
            x = try x * Tensor(scales, shape: view) + Tensor(shifts, shape: view)
        }
        if rng.unit() < gammaProbability {
            // Gamma on the [0, 1]-rescaled intensities, mapped back to the original range.
            let gamma = gammaRange[0] + (gammaRange[1] - gammaRange[0]) * rng.unit()
            let lo = try x.min(), hi = try x.max()
            let range = try hi - lo + 1e-6
            x = try ((x - lo) / range).pow(gamma) * range + lo
        }
        if rng.unit() < blurProbability {
            let sigma = blurSigma[0] + (blurSigma[1] - blurSigma[0]) * rng.unit()
            x = try gaussianBlur(x, sigma: sigma)
        }
        if rng.unit() < noiseProbability {
            x = try x + gaussianNoise(shape: x.shape, std: noiseStd * rng.unit(), rng: &rng)
        }
        return (x, y)
    }

    func randomAffine(_ x: Tensor, _ y: Tensor?, rng: inout SeededGenerator) throws -> (Tensor, Tensor?) {
        let r = maxRotationDegrees * Double.pi / 180
        let angles = (0..<3).map { _ in r * (2 * rng.unit() - 1) }
        let s = scaleRange[0] + (scaleRange[1] - scaleRange[0]) * rng.unit()
        let m = rotationMatrix(angles).map { $0 / s }
        var rows: [Float] = []
        for r in 0..<3 { rows += [Float(m[3 * r]), Float(m[3 * r + 1]), Float(m[3 * r + 2]), 0] }
        let theta = try Tensor(rows, shape: [1, 3, 4])
        let size = [1, x.size(0)] + Array(x.shape.dropFirst())
        let grid = try F.affineGrid(theta: theta, size: size, alignCorners: false)
        let xr = try F.gridSample(x.unsqueeze(dim: 0), grid: grid, padding: .border).squeeze(dim: 0)
        let yr = try y.map {
            try F.gridSample($0.unsqueeze(dim: 0).unsqueeze(dim: 0).to(.float32), grid: grid, mode: .nearest)
                .squeeze(dim: 0).squeeze(dim: 0).to(.int64)
        }
        return (xr, yr)
    }
}

extension Augmentation {
    /// Elastic deformation through grid_sample: displacements drawn on a 4^3 control grid,
    /// upsampled trilinearly to the patch, added to the identity sampling grid.
    func elastic(_ x: Tensor, _ y: Tensor?, rng: inout SeededGenerator) throws -> (Tensor, Tensor?) {
        let spatial = Array(x.shape.dropFirst())
        let coarse = try Tensor((0..<(3 * 64)).map { _ in Float(2 * rng.unit() - 1) }, shape: [1, 3, 4, 4, 4])
        // Displacement in voxels -> normalised coordinates (2 / (n - 1) per voxel), per component
        // (x, y, z) = (W, H, D).
        let scales = [spatial[2], spatial[1], spatial[0]].map { Float(2 * elasticMagnitude / Double(Swift.max($0 - 1, 1))) }
        let field = try (F.interpolate(coarse, size: spatial, alignCorners: true) * Tensor(scales, shape: [1, 3, 1, 1, 1]))
            .permute([0, 2, 3, 4, 1])                                                      // (1, D, H, W, 3)
        let identity = try Tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0] as [Float], shape: [1, 3, 4])
        let grid = try F.affineGrid(theta: identity, size: [1, 1] + spatial, alignCorners: true) + field
        let xd = try F.gridSample(x.unsqueeze(dim: 0), grid: grid, padding: .border, alignCorners: true).squeeze(dim: 0)
        let yd = try y.map {
            try F.gridSample($0.unsqueeze(dim: 0).unsqueeze(dim: 0).to(.float32), grid: grid, mode: .nearest, padding: .border,
                             alignCorners: true).squeeze(dim: 0).squeeze(dim: 0).to(.int64)
        }
        return (xd, yd)
    }
}

extension Augmentation {
    /// Moves channels 1... by independent random rigid transforms (in millimetres, in the patch's
    /// voxel frame scaled by `spacing`, axes (x, y, z) = (W, H, D)).
    func misalign(_ x: Tensor, rng: inout SeededGenerator) throws -> Tensor {
        let dims = Array(x.shape.dropFirst())                                   // D, H, W
        // Grid coordinates are (x, y, z) = (W, H, D); half-extent in mm per grid axis.
        let half = [2, 1, 0].map { Double(dims[$0] - 1) / 2 * spacing[$0] }
        var channels = [try x.narrow(dim: 0, start: 0, length: 1)]
        for c in 1..<x.size(0) {
            let motion = RigidTransform.random(maxTranslationMM: misalignMM, maxRotationDegrees: misalignDegrees, rng: &rng)
            // grid_sample reads output point q at the input point motion^-1(q) = R^T q - R^T t (about
            // the centre, in mm); theta = S^-1 R^T S | S^-1 (-R^T t), with S = diag(half).
            let r = motion.rotationMatrix
            let t = motion.translationMM
            var rows: [Float] = []
            for i in 0..<3 {
                var back = 0.0
                for j in 0..<3 {
                    let rt = r[3 * j + i]                                           // (R^T)[i][j]
                    rows.append(Float(rt * half[j] / Swift.max(half[i], 1e-9)))
                    back -= rt * t[j]
                }
                rows.append(Float(back / Swift.max(half[i], 1e-9)))
            }
            let theta = try Tensor(rows, shape: [1, 3, 4])
            let grid = try F.affineGrid(theta: theta, size: [1, 1] + dims, alignCorners: true)
            channels.append(try F.gridSample(x.narrow(dim: 0, start: c, length: 1).unsqueeze(dim: 0), grid: grid,
                                             padding: .border, alignCorners: true).squeeze(dim: 0))
        }
        return try Tensor.cat(channels, dim: 0)
    }
}

/// Separable Gaussian blur of every channel of (C, spatial...) with `sigma` voxels.
public func gaussianBlur(_ x: Tensor, sigma: Double) throws -> Tensor {
    let radius = Swift.max(1, Int((3 * sigma).rounded(.up)))
    var weights = (-radius...radius).map { Float(exp(-0.5 * Double($0 * $0) / (sigma * sigma))) }
    let total = weights.reduce(0, +)
    weights = weights.map { $0 / total }
    let channels = x.size(0), rank = x.rank - 1
    var out = try x.unsqueeze(dim: 0)
    for axis in 0..<rank {
        var shape = [channels, 1] + Array(repeating: 1, count: rank)
        shape[2 + axis] = weights.count
        let kernel = try Tensor(weights, shape: [1, 1] + Array(shape.dropFirst(2))).expand(shape).contiguous()
        var padding = Array(repeating: 0, count: rank)
        padding[axis] = radius
        out = try F.conv(out, weight: kernel, padding: padding, groups: channels)
    }
    return try out.squeeze(dim: 0)
}

/// Row-major 3x3 rotation R = Rz Ry Rx for angles (x, y, z) in radians.
public func rotationMatrix(_ a: [Double]) -> [Double] {
    let cx = cos(a[0]), sx = sin(a[0]), cy = cos(a[1]), sy = sin(a[1]), cz = cos(a[2]), sz = sin(a[2])
    let rx: [Double] = [1, 0, 0, 0, cx, -sx, 0, sx, cx]
    let ry: [Double] = [cy, 0, sy, 0, 1, 0, -sy, 0, cy]
    let rz: [Double] = [cz, -sz, 0, sz, cz, 0, 0, 0, 1]
    func mul(_ p: [Double], _ q: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: 9)
        for r in 0..<3 { for c in 0..<3 { for k in 0..<3 { out[r * 3 + c] += p[r * 3 + k] * q[k * 3 + c] } } }
        return out
    }
    return mul(rz, mul(ry, rx))
}

/// Gaussian noise with standard deviation `std` from the generator's normal deviates, as a float32
/// tensor.
public func gaussianNoise(shape: [Int], std: Double, rng: inout SeededGenerator) throws -> Tensor {
    let n = shape.reduce(1, *)
    var values = [Float](repeating: 0, count: n)
    var i = 0
    while i < n {
        let (a, b) = rng.normalPair()
        values[i] = Float(a * std)
        if i + 1 < n { values[i + 1] = Float(b * std) }
        i += 2
    }
    return try Tensor(values, shape: shape)
}
