import Essentials
import XCTest
@testable import Volumes

final class MisalignmentTests: XCTestCase {
    func testWorldPointsMoveByTheRequestedAmount() throws {
        let centre = [10.0, -20, 5]
        let t = RigidTransform(translationMM: [3.5, -2, 1.25])
        for p in [[0.0, 0, 0], [12.5, -3, 7], centre] {
            let q = t.apply(p, centre: centre)
            for a in 0..<3 { XCTAssertEqual(q[a] - p[a], t.translationMM[a], accuracy: 1e-9) }
        }
        // With a rotation the centre moves by exactly the translation, and distances to it are kept.
        let r = RigidTransform(axis: [0.3, -1, 0.7], angleDegrees: 40, translationMM: [1, 2, 3])
        let c = r.apply(centre, centre: centre)
        for a in 0..<3 { XCTAssertEqual(c[a] - centre[a], r.translationMM[a], accuracy: 1e-9) }
        let p = [3.0, 4, -8]
        let q = r.apply(p, centre: centre)
        func dist(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        XCTAssertEqual(dist(q, c), dist(p, centre), accuracy: 1e-9)
        // 90 degrees about z takes +x to +y.
        let z90 = RigidTransform(axis: [0, 0, 1], angleDegrees: 90)
        let e = z90.apply([1, 0, 0], centre: [0, 0, 0])
        XCTAssertEqual(e[0], 0, accuracy: 1e-12); XCTAssertEqual(e[1], 1, accuracy: 1e-12); XCTAssertEqual(e[2], 0, accuracy: 1e-12)
        // The inverse undoes it.
        let back = r.inverseWorldMatrix(centre: centre).apply(q)
        for a in 0..<3 { XCTAssertEqual(back[a], p[a], accuracy: 1e-9) }
        geoAssertAffine(r.inverseWorldMatrix(centre: centre) * r.worldMatrix(centre: centre), .identity, accuracy: 1e-12)
    }

    func testRandomTransformsAreBoundedAndSeeded() {
        var a = SeededGenerator(seed: 42, stream: []), b = SeededGenerator(seed: 42, stream: [])
        var longest = 0.0, widest = 0.0
        var meanCube = 0.0
        let draws = 5000
        for _ in 0..<draws {
            let t = RigidTransform.random(maxTranslationMM: 5, maxRotationDegrees: 10, rng: &a)
            XCTAssertEqual(t, RigidTransform.random(maxTranslationMM: 5, maxRotationDegrees: 10, rng: &b))
            XCTAssertLessThanOrEqual(t.translationLength, 5 + 1e-12)
            XCTAssertTrue((0...10).contains(t.angleDegrees))
            // The rotation angle read back from the matrix is the drawn angle (no axis turns more).
            let r = t.rotationMatrix
            let angle = acos(max(-1, min(1, (r[0] + r[4] + r[8] - 1) / 2))) * 180 / .pi
            XCTAssertEqual(angle, t.angleDegrees, accuracy: 1e-6)
            XCTAssertEqual(t.axis.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-12)
            longest = max(longest, t.translationLength); widest = max(widest, t.angleDegrees)
            meanCube += pow(t.translationLength / 5, 3) / Double(draws)
        }
        // The maxima are approached (the bound is the distribution's support, not a clamp), and the
        // length is uniform in the ball: (|t| / X)^3 is uniform on [0, 1], mean 1/2.
        XCTAssertGreaterThan(longest, 4.9)
        XCTAssertGreaterThan(widest, 9.9)
        XCTAssertEqual(meanCube, 0.5, accuracy: 0.02)
        var c = SeededGenerator(seed: 1, stream: [])
        XCTAssertEqual(RigidTransform.random(maxTranslationMM: 0, maxRotationDegrees: 0, rng: &c), .identity)
        // Translation only / rotation only keep the other part exactly zero.
        let only = RigidTransform.random(maxTranslationMM: 3, maxRotationDegrees: 0, rng: &c)
        XCTAssertEqual(only.angleDegrees, 0)
        XCTAssertEqual(RigidTransform.random(maxTranslationMM: 0, maxRotationDegrees: 4, rng: &c).translationMM, [0, 0, 0])
    }

    func testIdentityIsExact() throws {
        XCTAssertEqual(RigidTransform.identity.rotationMatrix, [1, 0, 0, 0, 1, 0, 0, 0, 1])
        XCTAssertEqual(RigidTransform.identity.worldMatrix(centre: [3, -4, 5]), .identity)
        XCTAssertEqual(RigidTransform.identity.inverseWorldMatrix(centre: [3, -4, 5]), .identity)
        let affine = geoAffine([[-1.2, 0, 0, 20], [0, -1.0, 0, 15], [0, 0, 2.0, -30]])
        let v = geoVolume([7, 6, 5], affine: affine) { i, j, k in Float(i * 100 + j * 10 + k) + 0.25 }
        XCTAssertEqual(try v.applying(.identity, interpolation: .linear).voxels, v.voxels)
        // The resampler itself is exact for the identity map, with either border.
        for border in [ResamplingBorder.edge, .constant(0)] {
            for interpolation in [Interpolation.linear, .nearest] {
                XCTAssertEqual(Volume.resample(v.voxels, shape: v.shape, voxelMap: .identity, interpolation: interpolation, border: border),
                               v.voxels)
            }
        }
    }

    /// The edge-clamping trilinear resampler the phantom used before it moved to Volume.resample.
    func oldPhantomResample(_ src: [Float], shape: [Int], voxelMap m: Affine) -> [Float] {
        let nx = shape[0], ny = shape[1], nz = shape[2]
        var dst = [Float](repeating: 0, count: src.count)
        let a = m.m
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
            let p = m.apply([Double(i), Double(j), Double(k)])
            _ = a
            let x = min(max(p[0], 0), Double(nx - 1)), y = min(max(p[1], 0), Double(ny - 1)), z = min(max(p[2], 0), Double(nz - 1))
            let x0 = min(Int(x), max(nx - 2, 0)), y0 = min(Int(y), max(ny - 2, 0)), z0 = min(Int(z), max(nz - 2, 0))
            let tx = Float(x - Double(x0)), ty = Float(y - Double(y0)), tz = Float(z - Double(z0))
            func s(_ a: Int, _ b: Int, _ c: Int) -> Float { src[min(a, nx - 1) + nx * (min(b, ny - 1) + ny * min(c, nz - 1))] }
            let c00 = s(x0, y0, z0) + (s(x0 + 1, y0, z0) - s(x0, y0, z0)) * tx
            let c10 = s(x0, y0 + 1, z0) + (s(x0 + 1, y0 + 1, z0) - s(x0, y0 + 1, z0)) * tx
            let c01 = s(x0, y0, z0 + 1) + (s(x0 + 1, y0, z0 + 1) - s(x0, y0, z0 + 1)) * tx
            let c11 = s(x0, y0 + 1, z0 + 1) + (s(x0 + 1, y0 + 1, z0 + 1) - s(x0, y0 + 1, z0 + 1)) * tx
            dst[i + nx * (j + ny * k)] = (c00 + (c10 - c00) * ty) + ((c01 + (c11 - c01) * ty) - (c00 + (c10 - c00) * ty)) * tz
        } } }
        return dst
    }

    /// One resampler: with edge clamping it reproduces the phantom's old trilinear resampler, and
    /// with a constant border it agrees with libtorch's grid_sample path (the one `resampled(onto:)`
    /// uses) wherever both read inside the volume or the constant.
    func testOneResamplerMatchesTheOldPaths() throws {
        let affine = geoAffine([[-1.2, 0, 0, 20], [0, -1.0, 0, 15], [0, 0, 2.0, -30]])
        let shape = [14, 12, 9]
        let grid = VoxelGrid(shape: shape, affine: affine)
        let v = blob(shape, affine: affine, centre: grid.centre, sigma: 4)
        var rng = SeededGenerator(seed: 9, stream: [])
        for _ in 0..<4 {
            let t = RigidTransform.random(maxTranslationMM: 4, maxRotationDegrees: 10, rng: &rng)
            let inv = try XCTUnwrap(affine.inverse())
            let map = Volume.rigidVoxelMap(t, affine: affine, inverse: inv, shape: shape)
            let edge = Volume.resample(v.voxels, shape: shape, voxelMap: map, interpolation: .linear, border: .edge)
            let old = oldPhantomResample(v.voxels, shape: shape, voxelMap: map)
            for n in edge.indices { XCTAssertEqual(edge[n], old[n], accuracy: 1e-5) }
            // The libtorch path shifts values by the fill and back (1 ulp), and builds its grid in float.
            for (interpolation, tolerance) in [(Interpolation.linear, Float(1e-4)), (.nearest, Float(1e-6))] {
                let native = try v.applying(t, interpolation: interpolation, border: .constant(0.5))
                let torch = try v.resampled(voxelMap: map, shape: shape, affine: affine, interpolation: interpolation, fill: 0.5,
                                            exactShortcut: false)
                var differing = 0
                for n in native.voxels.indices where abs(native.voxels[n] - torch.voxels[n]) > tolerance { differing += 1 }
                // Nearest may differ where a sampling point is within float rounding of a half voxel.
                XCTAssertLessThanOrEqual(differing, interpolation == .nearest ? native.voxels.count / 200 : 0, "\(interpolation)")
            }
        }
    }

    func blob(_ shape: [Int], affine: Affine, centre: [Double], sigma: Double) -> Volume {
        geoVolume(shape, affine: affine) { i, j, k in
            let w = affine.apply([Double(i), Double(j), Double(k)])
            let d2 = (0..<3).map { (w[$0] - centre[$0]) * (w[$0] - centre[$0]) }.reduce(0, +)
            return Float(exp(-d2 / (2 * sigma * sigma)))
        }
    }

    func worldCentroid(_ v: Volume) -> [Double] {
        var s = [0.0, 0, 0], total = 0.0
        for k in 0..<v.shape[2] { for j in 0..<v.shape[1] { for i in 0..<v.shape[0] {
            let w = Double(v[i, j, k])
            let p = v.affine.apply([Double(i), Double(j), Double(k)])
            for a in 0..<3 { s[a] += w * p[a] }
            total += w
        } } }
        return s.map { $0 / total }
    }

    func testBlobCentroidMovesByTheTranslation() throws {
        let affine = geoAffine([[-1.2, 0, 0, 20], [0, -1.0, 0, 15], [0, 0, 2.0, -30]])
        let shape = [28, 30, 16]
        let grid = VoxelGrid(shape: shape, affine: affine)
        let v = blob(shape, affine: affine, centre: grid.centre, sigma: 4)
        let c0 = worldCentroid(v)
        let t = RigidTransform(translationMM: [3.3, -2.6, 4.1])
        let moved = try v.applying(t, interpolation: .linear)
        XCTAssertEqual(moved.shape, v.shape)
        XCTAssertEqual(moved.affine, v.affine)
        XCTAssertEqual(moved.spacing, v.spacing)
        let c1 = worldCentroid(moved)
        for a in 0..<3 {
            XCTAssertEqual(c1[a] - c0[a], t.translationMM[a], accuracy: 0.3 * affine.spacing[a], "axis \(a)")
        }
        // A rotation about the centre keeps a centred blob's centroid.
        let r = try v.applying(RigidTransform(axis: [1, -1, 2], angleDegrees: 15), interpolation: .linear)
        let c2 = worldCentroid(r)
        for a in 0..<3 { XCTAssertEqual(c2[a], c0[a], accuracy: 0.3 * affine.spacing[a]) }
        // Labels move with nearest neighbour and keep their values.
        let labels = geoVolume(shape, affine: affine) { i, j, k in v[i, j, k] > 0.5 ? 2 : 0 }
        let ml = try labels.applying(t, interpolation: .nearest)
        XCTAssertTrue(Set(ml.voxels).isSubset(of: [0, 2]))
        let cl0 = worldCentroid(labels), cl1 = worldCentroid(ml)
        for a in 0..<3 { XCTAssertEqual(cl1[a] - cl0[a], t.translationMM[a], accuracy: 0.5 * affine.spacing[a] + 0.3) }
    }

    func testSimulatedMisalignmentLeavesReferenceAlone() throws {
        let a = Affine.scaling([1, 1, 1])
        let v = blob([12, 12, 12], affine: a, centre: [5.5, 5.5, 5.5], sigma: 2)
        let c = CaseVolumes(name: "m", channels: [nil, v, v, v], label: v)
        var rng = SeededGenerator(seed: 3, stream: [])
        let (out, transforms) = try c.withSimulatedMisalignment(maxTranslationMM: 3, maxRotationDegrees: 5, rng: &rng)
        XCTAssertNil(out.channels[0])
        XCTAssertNil(transforms[0]); XCTAssertNil(transforms[1])
        XCTAssertEqual(out.channels[1]?.voxels, v.voxels)
        XCTAssertNotNil(transforms[2]); XCTAssertNotNil(transforms[3])
        XCTAssertNotEqual(out.channels[2]?.voxels, v.voxels)
        XCTAssertEqual(out.label?.voxels, v.voxels)
    }
}
