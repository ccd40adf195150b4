import Essentials
import Foundation

/// A rigid motion of world space (RAS+ mm): a rotation by `angleDegrees` about the unit `axis`
/// through a centre c (right-handed), followed by a translation t. A world point p goes to
/// R (p - c) + c + t. The centre is not part of the motion: it is the centre of the grid the
/// motion is applied to (`VoxelGrid.centre`).
///
/// This is Concord's one rigid transform: the phantom's simulated misalignment, the training
/// augmentation's misalignment and `--misalign-mm` at prediction and evaluation all draw it from
/// `random(maxTranslationMM:maxRotationDegrees:rng:)`, so "up to X mm, Y degrees" means the same
/// everywhere, and volumes are moved by one resampler (`Volume.applying(_:interpolation:border:)`).
public struct RigidTransform: Equatable, Codable, Sendable {
    /// Unit rotation axis (world x, y, z).
    public var axis: [Double]
    /// Rotation angle in degrees about `axis`, right-handed (>= 0 for drawn transforms).
    public var angleDegrees: Double
    /// Translation in mm along world x, y, z.
    public var translationMM: [Double]

    /// A rotation of `angleDegrees` about `axis` (normalised here; a zero axis means no rotation),
    /// then a translation.
    public init(axis: [Double] = [0, 0, 1], angleDegrees: Double = 0, translationMM: [Double] = [0, 0, 0]) {
        precondition(axis.count == 3 && translationMM.count == 3, "a rigid transform has a 3D axis and a 3D translation")
        let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).squareRoot()
        self.axis = n > 0 ? axis.map { $0 / n } : [0, 0, 1]
        self.angleDegrees = n > 0 ? angleDegrees : 0
        self.translationMM = translationMM
    }

    enum CodingKeys: String, CodingKey { case axis, angleDegrees, translationMM }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let axis = try c.decode([Double].self, forKey: .axis)
        let angle = try c.decode(Double.self, forKey: .angleDegrees)
        let t = try c.decode([Double].self, forKey: .translationMM)
        guard axis.count == 3, t.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: .axis, in: c, debugDescription: "a rigid transform has a 3D axis and a 3D translation")
        }
        guard (axis + t + [angle]).allSatisfy(\.isFinite) else {
            throw DecodingError.dataCorruptedError(forKey: .axis, in: c, debugDescription: "a rigid transform's numbers must be finite")
        }
        self.init(axis: axis, angleDegrees: angle, translationMM: t)
    }

    public static let identity = RigidTransform()

    public var isIdentity: Bool { angleDegrees == 0 && translationMM == [0, 0, 0] }

    /// Length of the translation in mm.
    public var translationLength: Double { (translationMM.reduce(0) { $0 + $1 * $1 }).squareRoot() }

    /// R, row-major 3x3 (Rodrigues' formula).
    public var rotationMatrix: [Double] {
        let (x, y, z) = (axis[0], axis[1], axis[2])
        let a = angleDegrees * .pi / 180, c = cos(a), s = sin(a), C = 1 - c
        return [c + x * x * C, x * y * C - z * s, x * z * C + y * s,
                y * x * C + z * s, c + y * y * C, y * z * C - x * s,
                z * x * C - y * s, z * y * C + x * s, c + z * z * C]
    }

    /// The world -> world map p -> R (p - c) + c + t as a 4x4 affine.
    public func worldMatrix(centre c: [Double]) -> Affine {
        Affine.rigid(rotation: rotationMatrix, centre: c, translation: translationMM)
    }

    /// The inverse world map q -> R^T (q - c - t) + c, built from R^T exactly (no matrix inversion):
    /// a rotation by R^T about c followed by the translation -R^T t.
    public func inverseWorldMatrix(centre c: [Double]) -> Affine {
        let r = rotationMatrix
        let rt = (0..<9).map { r[($0 % 3) * 3 + $0 / 3] }
        let t = (0..<3).map { row in -(rt[row * 3] * translationMM[0] + rt[row * 3 + 1] * translationMM[1] + rt[row * 3 + 2] * translationMM[2]) }
        return Affine.rigid(rotation: rt, centre: c, translation: t)
    }

    /// Where world point `p` goes.
    public func apply(_ p: [Double], centre: [Double]) -> [Double] { worldMatrix(centre: centre).apply(p) }

    /// A random transform with this distribution:
    /// - translation uniform in the ball of radius `maxTranslationMM` (a uniform direction, length
    ///   `maxTranslationMM * cbrt(u)`), so its length never exceeds `maxTranslationMM`;
    /// - rotation by an angle uniform in [0, `maxRotationDegrees`] about a uniformly random axis, so
    ///   no point turns by more than `maxRotationDegrees` about the centre.
    /// Draw order: translation direction, translation length, axis, angle (each from `rng`).
    /// Negative or non-finite maxima count as 0; both 0 gives the identity without drawing.
    public static func random(maxTranslationMM: Double, maxRotationDegrees: Double, rng: inout SeededGenerator) -> RigidTransform {
        let tMax = Swift.max(0, maxTranslationMM.isFinite ? maxTranslationMM : 0)
        let aMax = Swift.max(0, maxRotationDegrees.isFinite ? maxRotationDegrees : 0)
        if tMax == 0 && aMax == 0 { return .identity }
        let direction = rng.unitVector()
        let length = tMax * Foundation.cbrt(rng.unit())
        let axis = rng.unitVector()
        let angle = aMax * rng.unit()
        return RigidTransform(axis: axis, angleDegrees: angle, translationMM: direction.map { $0 * length })
    }
}

/// What a resampler reads outside the source volume.
public enum ResamplingBorder: Equatable, Sendable {
    /// A constant value (0 for images, background for labels): trilinear weights of outside
    /// corners go to it, so an image fades to it across the last half voxel.
    case constant(Float)
    /// The nearest edge voxel (coordinates clamped into the volume): no artificial band appears.
    case edge
}

extension Volume {
    /// The volume moved by `transform` in world space (about the volume's centre), resampled on the
    /// same grid: the value that was at world p is afterwards at transform(p). Use `.linear` for
    /// images and `.nearest` for labels; `border` decides what comes from outside the volume.
    public func applying(_ transform: RigidTransform, interpolation: Interpolation, border: ResamplingBorder = .constant(0)) throws -> Volume {
        if transform.isIdentity { return self }
        guard let inv = affine.inverse() else {
            throw PreprocessingError(field: "affine", problem: "the volume's affine is singular: \(affine.m)")
        }
        guard shape.count == 3, shape.allSatisfy({ $0 >= 1 }) else {
            throw PreprocessingError(field: "shape", problem: "cannot move a volume of shape \(shape)")
        }
        var out = self
        out.voxels = Volume.resample(voxels, shape: shape, voxelMap: Volume.rigidVoxelMap(transform, affine: affine, inverse: inv, shape: shape),
                                     interpolation: interpolation, border: border)
        return out
    }

    /// Output voxel -> world -> inverse motion -> input voxel, for a motion about the grid's centre.
    public static func rigidVoxelMap(_ transform: RigidTransform, affine: Affine, inverse: Affine, shape: [Int]) -> Affine {
        inverse * transform.inverseWorldMatrix(centre: VoxelGrid(shape: shape, affine: affine).centre) * affine
    }

    /// Concord's resampler for rigid motions: every output voxel (i, j, k) of a volume of `shape`
    /// (x fastest) takes the source's value at index `voxelMap * (i, j, k)`, trilinear or nearest
    /// (ties to even), with `border` outside [0, n - 1] per axis. Pure Swift, parallel over k.
    public static func resample(_ src: [Float], shape: [Int], voxelMap m: Affine, interpolation: Interpolation,
                                border: ResamplingBorder) -> [Float] {
        let nx = shape[0], ny = shape[1], nz = shape[2]
        precondition(src.count == nx * ny * nz, "resample: \(src.count) voxels for shape \(shape)")
        var dst = [Float](repeating: 0, count: src.count)
        let a = m.m
        let sxy = nx * ny
        let clamp: Bool
        let fill: Float
        switch border {
        case .edge: clamp = true; fill = 0
        case .constant(let v): clamp = false; fill = v
        }
        let mx = Double(nx - 1), my = Double(ny - 1), mz = Double(nz - 1)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                Parallel.forEach(nz, grain: Swift.max(1, 16_384 / Swift.max(sxy, 1))) { k in
                    for j in 0..<ny {
                        let bx = a[1] * Double(j) + a[2] * Double(k) + a[3]
                        let by = a[5] * Double(j) + a[6] * Double(k) + a[7]
                        let bz = a[9] * Double(j) + a[10] * Double(k) + a[11]
                        var o = nx * (j + ny * k)
                        for i in 0..<nx {
                            let fi = Double(i)
                            var x = a[0] * fi + bx, y = a[4] * fi + by, z = a[8] * fi + bz
                            if interpolation == .nearest {
                                x = x.rounded(.toNearestOrEven); y = y.rounded(.toNearestOrEven); z = z.rounded(.toNearestOrEven)
                                if clamp {
                                    x = Swift.min(Swift.max(x, 0), mx); y = Swift.min(Swift.max(y, 0), my); z = Swift.min(Swift.max(z, 0), mz)
                                }
                                if x >= 0 && x <= mx && y >= 0 && y <= my && z >= 0 && z <= mz {
                                    d[o] = s[Int(x) + nx * (Int(y) + ny * Int(z))]
                                } else {
                                    d[o] = fill
                                }
                            } else if clamp {
                                // Clamp into the volume, then interpolate inside it (edge replication).
                                x = Swift.min(Swift.max(x, 0), mx); y = Swift.min(Swift.max(y, 0), my); z = Swift.min(Swift.max(z, 0), mz)
                                let x0 = Swift.min(Int(x), Swift.max(nx - 2, 0)), y0 = Swift.min(Int(y), Swift.max(ny - 2, 0))
                                let z0 = Swift.min(Int(z), Swift.max(nz - 2, 0))
                                let tx = Float(x - Double(x0)), ty = Float(y - Double(y0)), tz = Float(z - Double(z0))
                                let x1 = Swift.min(x0 + 1, nx - 1) - x0, y1 = (Swift.min(y0 + 1, ny - 1) - y0) * nx
                                let z1 = (Swift.min(z0 + 1, nz - 1) - z0) * sxy
                                let p = x0 + nx * (y0 + ny * z0)
                                let c00 = s[p] + (s[p + x1] - s[p]) * tx
                                let c10 = s[p + y1] + (s[p + y1 + x1] - s[p + y1]) * tx
                                let c01 = s[p + z1] + (s[p + z1 + x1] - s[p + z1]) * tx
                                let c11 = s[p + y1 + z1] + (s[p + y1 + z1 + x1] - s[p + y1 + z1]) * tx
                                let c0 = c00 + (c10 - c00) * ty
                                let c1 = c01 + (c11 - c01) * ty
                                d[o] = c0 + (c1 - c0) * tz
                            } else {
                                // Corners outside the volume read `fill`.
                                let fx = x.rounded(.down), fy = y.rounded(.down), fz = z.rounded(.down)
                                guard fx >= -1, fx <= mx, fy >= -1, fy <= my, fz >= -1, fz <= mz else { d[o] = fill; o += 1; continue }
                                let x0 = Int(fx), y0 = Int(fy), z0 = Int(fz)
                                let tx = Float(x - fx), ty = Float(y - fy), tz = Float(z - fz)
                                @inline(__always) func at(_ xi: Int, _ yi: Int, _ zi: Int) -> Float {
                                    (xi >= 0 && xi < nx && yi >= 0 && yi < ny && zi >= 0 && zi < nz) ? s[xi + nx * (yi + ny * zi)] : fill
                                }
                                let c00 = at(x0, y0, z0) + (at(x0 + 1, y0, z0) - at(x0, y0, z0)) * tx
                                let c10 = at(x0, y0 + 1, z0) + (at(x0 + 1, y0 + 1, z0) - at(x0, y0 + 1, z0)) * tx
                                let c01 = at(x0, y0, z0 + 1) + (at(x0 + 1, y0, z0 + 1) - at(x0, y0, z0 + 1)) * tx
                                let c11 = at(x0, y0 + 1, z0 + 1) + (at(x0 + 1, y0 + 1, z0 + 1) - at(x0, y0 + 1, z0 + 1)) * tx
                                let c0 = c00 + (c10 - c00) * ty
                                let c1 = c01 + (c11 - c01) * ty
                                d[o] = c0 + (c1 - c0) * tz
                            }
                            o += 1
                        }
                    }
                }
            }
        }
        return dst
    }
}

extension CaseVolumes {
    /// The generator `--misalign-mm` draws from for `seed` (prediction and evaluation use the same
    /// one, advanced case by case, so they move the same cases the same way).
    public static func misalignmentGenerator(seed: UInt64) -> SeededGenerator {
        SeededGenerator(seed: seed, stream: [SeededGenerator.key("MISALIGN")])
    }

    /// Simulated misalignment: every present channel except the first present one (the reference,
    /// which the label belongs to) is moved by its own `RigidTransform.random` (linear
    /// interpolation, same grid, zero outside, headers unchanged). Returns the case and the
    /// transform per channel (nil for the reference and absent channels).
    public func withSimulatedMisalignment(maxTranslationMM: Double, maxRotationDegrees: Double,
                                          rng: inout SeededGenerator) throws -> (volumes: CaseVolumes, transforms: [RigidTransform?]) {
        var out = self
        var transforms = [RigidTransform?](repeating: nil, count: channels.count)
        guard let reference = channels.firstIndex(where: { $0 != nil }) else { return (out, transforms) }
        for m in channels.indices where m != reference {
            guard let v = channels[m] else { continue }
            let t = RigidTransform.random(maxTranslationMM: maxTranslationMM, maxRotationDegrees: maxRotationDegrees, rng: &rng)
            out.channels[m] = try withPreprocessingContext(caseName: name, channel: m) { try v.applying(t, interpolation: .linear) }
            transforms[m] = t
        }
        return (out, transforms)
    }
}
