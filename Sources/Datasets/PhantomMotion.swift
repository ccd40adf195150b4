import Foundation
import Volumes

/// A rigid motion of world space (RAS+ mm): p -> R (p - centre) + centre + translation.
///
/// The phantom uses one per non-reference modality to simulate misalignment: the anatomy that
/// channel 0 (and the label) shows at world point p appears in the moved channel at `apply(p)`.
public struct PhantomMotion: Codable, Equatable, Sendable {
    /// Row-major 3x3 rotation matrix.
    public var rotation: [Double]
    /// Translation in mm.
    public var translationMM: [Double]
    /// Centre of rotation in world mm (the reference grid's centre).
    public var centre: [Double]

    public init(rotation: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1], translationMM: [Double] = [0, 0, 0], centre: [Double] = [0, 0, 0]) {
        precondition(rotation.count == 9 && translationMM.count == 3 && centre.count == 3, "a rigid motion has a 3x3 rotation, a translation and a centre")
        self.rotation = rotation
        self.translationMM = translationMM
        self.centre = centre
    }

    /// Rotation by `degrees` about the unit `axis` (Rodrigues), then translation.
    public init(axis: [Double], degrees: Double, translationMM: [Double], centre: [Double] = [0, 0, 0]) {
        let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).squareRoot()
        let (x, y, z) = n > 0 ? (axis[0] / n, axis[1] / n, axis[2] / n) : (0.0, 0.0, 1.0)
        let a = degrees * .pi / 180, c = cos(a), s = sin(a), C = 1 - c
        self.init(rotation: [c + x * x * C, x * y * C - z * s, x * z * C + y * s,
                             y * x * C + z * s, c + y * y * C, y * z * C - x * s,
                             z * x * C - y * s, z * y * C + x * s, c + z * z * C],
                  translationMM: translationMM, centre: centre)
    }

    public static let identity = PhantomMotion()

    /// A random motion: translation uniform in the ball of radius `maxTranslationMM`, rotation by
    /// an angle uniform in [0, maxDegrees] about a uniformly random axis through `centre`.
    public static func random(maxTranslationMM: Double, maxDegrees: Double, centre: [Double], rng: inout SeededGenerator) -> PhantomMotion {
        let dir = rng.unitVector()
        let length = max(0, maxTranslationMM) * Foundation.cbrt(rng.unit())
        let axis = rng.unitVector()
        let angle = max(0, maxDegrees) * rng.unit()
        return PhantomMotion(axis: axis, degrees: angle, translationMM: dir.map { $0 * length }, centre: centre)
    }

    /// Where world point `p` goes.
    public func apply(_ p: [Double]) -> [Double] {
        let d = (0..<3).map { p[$0] - centre[$0] }
        return (0..<3).map { r in
            rotation[r * 3] * d[0] + rotation[r * 3 + 1] * d[1] + rotation[r * 3 + 2] * d[2] + centre[r] + translationMM[r]
        }
    }

    /// The inverse motion (R^T, exactly).
    public var inverse: PhantomMotion {
        let rt = (0..<9).map { rotation[($0 % 3) * 3 + $0 / 3] }
        // p = R^T (q - c - t) + c  =>  rotation R^T about c, translation -R^T t.
        let t = (0..<3).map { r in -(rt[r * 3] * translationMM[0] + rt[r * 3 + 1] * translationMM[1] + rt[r * 3 + 2] * translationMM[2]) }
        return PhantomMotion(rotation: rt, translationMM: t, centre: centre)
    }

    /// Rotation angle in degrees.
    public var angleDegrees: Double {
        let tr = rotation[0] + rotation[4] + rotation[8]
        return acos(max(-1, min(1, (tr - 1) / 2))) * 180 / .pi
    }

    /// Length of the translation in mm.
    public var translationLength: Double { (translationMM.reduce(0) { $0 + $1 * $1 }).squareRoot() }

    /// The world -> world map as a 4x4 affine.
    public var worldAffine: Affine { Affine.rigid(rotation: rotation, centre: centre, translation: translationMM) }
}

extension Phantom {
    /// `volume` with its content moved by `motion` (world mm), resampled on its own grid by
    /// trilinear interpolation: output(q) = input(motion^-1(q)). Samples outside the input are
    /// clamped to its border (edge replication), so no artificial black band appears.
    public static func moved(_ volume: Volume, by motion: PhantomMotion) -> Volume {
        guard let inv = volume.affine.inverse() else { return volume }
        // output voxel -> world -> inverse motion -> input voxel
        let map = inv * motion.inverse.worldAffine * volume.affine
        var out = volume
        out.voxels = resample(volume.voxels, shape: volume.shape, voxelMap: map)
        return out
    }

    /// Trilinear resampling of a [nx, ny, nz] array at `voxelMap * (i, j, k)` for every output
    /// voxel of the same shape, with edge clamping.
    static func resample(_ src: [Float], shape: [Int], voxelMap m: Affine) -> [Float] {
        let nx = shape[0], ny = shape[1], nz = shape[2]
        var dst = [Float](repeating: 0, count: src.count)
        let mx = Double(nx - 1), my = Double(ny - 1), mz = Double(nz - 1)
        let a = m.m
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                let sxy = nx * ny
                for k in 0..<nz {
                    for j in 0..<ny {
                        let bx = a[1] * Double(j) + a[2] * Double(k) + a[3]
                        let by = a[5] * Double(j) + a[6] * Double(k) + a[7]
                        let bz = a[9] * Double(j) + a[10] * Double(k) + a[11]
                        var o = nx * (j + ny * k)
                        for i in 0..<nx {
                            let fi = Double(i)
                            let x = min(max(a[0] * fi + bx, 0), mx)
                            let y = min(max(a[4] * fi + by, 0), my)
                            let z = min(max(a[8] * fi + bz, 0), mz)
                            let x0 = min(Int(x), max(nx - 2, 0)), y0 = min(Int(y), max(ny - 2, 0)), z0 = min(Int(z), max(nz - 2, 0))
                            let tx = Float(x - Double(x0)), ty = Float(y - Double(y0)), tz = Float(z - Double(z0))
                            let x1 = min(x0 + 1, nx - 1) - x0, y1 = (min(y0 + 1, ny - 1) - y0) * nx, z1 = (min(z0 + 1, nz - 1) - z0) * sxy
                            let p = x0 + nx * (y0 + ny * z0)
                            let c00 = s[p] + (s[p + x1] - s[p]) * tx
                            let c10 = s[p + y1] + (s[p + y1 + x1] - s[p + y1]) * tx
                            let c01 = s[p + z1] + (s[p + z1 + x1] - s[p + z1]) * tx
                            let c11 = s[p + y1 + z1] + (s[p + y1 + z1 + x1] - s[p + y1 + z1]) * tx
                            let c0 = c00 + (c10 - c00) * ty
                            let c1 = c01 + (c11 - c01) * ty
                            d[o] = c0 + (c1 - c0) * tz
                            o += 1
                        }
                    }
                }
            }
        }
        return dst
    }
}
