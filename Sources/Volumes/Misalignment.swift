import Foundation

/// A rigid motion in world space (RAS+ mm): a rotation about a centre (by default the centre of the
/// volume it is applied to) followed by a translation. A world point p goes to
/// R (p - c) + c + t, with R = Rz * Ry * Rx (rotation about x first, then y, then z; right-handed,
/// angles in degrees).
public struct RigidTransform: Equatable, Codable, Sendable {
    /// Rotation angles in degrees about the world x, y, z axes (through the centre).
    public var rotationDegrees: [Double]
    /// Translation in mm along world x, y, z.
    public var translationMM: [Double]

    public init(rotationDegrees: [Double] = [0, 0, 0], translationMM: [Double] = [0, 0, 0]) {
        precondition(rotationDegrees.count == 3 && translationMM.count == 3, "a rigid transform has 3 angles and 3 translations")
        self.rotationDegrees = rotationDegrees
        self.translationMM = translationMM
    }

    enum CodingKeys: String, CodingKey { case rotationDegrees, translationMM }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rotationDegrees = try c.decode([Double].self, forKey: .rotationDegrees)
        translationMM = try c.decode([Double].self, forKey: .translationMM)
        guard rotationDegrees.count == 3, translationMM.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: .rotationDegrees, in: c,
                                                   debugDescription: "a rigid transform has 3 angles and 3 translations")
        }
    }

    public static let identity = RigidTransform()

    public var isIdentity: Bool { rotationDegrees == [0, 0, 0] && translationMM == [0, 0, 0] }

    /// R = Rz * Ry * Rx, row-major 3x3.
    public var rotationMatrix: [Double] {
        let r = rotationDegrees.map { $0 * .pi / 180 }
        let (cx, sx) = (cos(r[0]), sin(r[0])), (cy, sy) = (cos(r[1]), sin(r[1])), (cz, sz) = (cos(r[2]), sin(r[2]))
        let rx: [Double] = [1, 0, 0, 0, cx, -sx, 0, sx, cx]
        let ry: [Double] = [cy, 0, sy, 0, 1, 0, -sy, 0, cy]
        let rz: [Double] = [cz, -sz, 0, sz, cz, 0, 0, 0, 1]
        return Self.mul(rz, Self.mul(ry, rx))
    }

    static func mul(_ a: [Double], _ b: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: 9)
        for r in 0..<3 { for c in 0..<3 { out[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c] } }
        return out
    }

    /// The world -> world map p -> R (p - c) + c + t as a 4x4 affine.
    public func worldMatrix(centre c: [Double]) -> Affine {
        Affine.rigid(rotation: rotationMatrix, centre: c, translation: translationMM)
    }

    /// The inverse world map q -> R^T (q - c - t) + c, computed exactly (no matrix inversion).
    public func inverseWorldMatrix(centre c: [Double]) -> Affine {
        let r = rotationMatrix
        var m = [Double](repeating: 0, count: 16)
        for row in 0..<3 {
            var acc = 0.0
            for col in 0..<3 {
                let rt = r[col * 3 + row]   // R^T
                m[row * 4 + col] = rt
                acc += rt * (c[col] + translationMM[col])
            }
            m[row * 4 + 3] = c[row] - acc
        }
        m[15] = 1
        return Affine(rowMajor: m)
    }

    /// Where world point `p` goes.
    public func apply(_ p: [Double], centre: [Double]) -> [Double] { worldMatrix(centre: centre).apply(p) }

    /// A random transform: translation uniform in the ball of radius `maxTranslationMM` (so its length
    /// never exceeds it), each rotation angle uniform in [-maxRotationDegrees, maxRotationDegrees].
    /// Deterministic for a given generator state.
    public static func random<G: RandomNumberGenerator>(maxTranslationMM: Double, maxRotationDegrees: Double,
                                                        rng: inout G) -> RigidTransform {
        let tMax = Swift.max(0, maxTranslationMM.isFinite ? maxTranslationMM : 0)
        let aMax = Swift.max(0, maxRotationDegrees.isFinite ? maxRotationDegrees : 0)
        var t = [0.0, 0.0, 0.0]
        if tMax > 0 {
            while true {
                let v = (0..<3).map { _ in Double.random(in: -1...1, using: &rng) }
                if v.reduce(0, { $0 + $1 * $1 }) <= 1 { t = v.map { $0 * tMax }; break }
            }
        }
        let angles = (0..<3).map { _ in aMax > 0 ? Double.random(in: -aMax...aMax, using: &rng) : 0 }
        return RigidTransform(rotationDegrees: angles, translationMM: t)
    }
}

extension Volume {
    /// The volume moved by `transform` in world space (about the volume's centre), resampled on the
    /// same grid: the value that was at world p is afterwards at transform(p). Voxels that come from
    /// outside the volume take `fill`. Use `.linear` for images and `.nearest` for labels.
    public func applying(_ transform: RigidTransform, interpolation: Interpolation, fill: Float = 0) throws -> Volume {
        if transform.isIdentity { return self }
        guard let inv = affine.inverse() else {
            throw PreprocessingError(field: "affine", problem: "the volume's affine is singular: \(affine.m)")
        }
        // Output ijk -> world q -> T^-1 q -> input ijk.
        let map = inv * transform.inverseWorldMatrix(centre: grid.centre) * affine
        var out = try resampled(voxelMap: map, shape: shape, affine: affine, interpolation: interpolation, fill: fill)
        out.spacing = spacing
        return out
    }
}

extension CaseVolumes {
    /// Simulated misalignment: every present channel except the first present one (the reference,
    /// which the label belongs to) is moved by its own random rigid transform (linear
    /// interpolation, same grid, headers unchanged). Returns the case and the transform per
    /// channel (nil for the reference and absent channels).
    public func withSimulatedMisalignment<G: RandomNumberGenerator>(maxTranslationMM: Double, maxRotationDegrees: Double,
                                                                    rng: inout G) throws -> (volumes: CaseVolumes, transforms: [RigidTransform?]) {
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
