import XCTest
@testable import Volumes

final class MisalignmentTests: XCTestCase {
    func testWorldPointsMoveByTheRequestedAmount() throws {
        let centre = [10.0, -20, 5]
        let t = RigidTransform(rotationDegrees: [0, 0, 0], translationMM: [3.5, -2, 1.25])
        for p in [[0.0, 0, 0], [12.5, -3, 7], centre] {
            let q = t.apply(p, centre: centre)
            for a in 0..<3 { XCTAssertEqual(q[a] - p[a], t.translationMM[a], accuracy: 1e-9) }
        }
        // With a rotation the centre moves by exactly the translation, and distances to it are kept.
        let r = RigidTransform(rotationDegrees: [10, -25, 40], translationMM: [1, 2, 3])
        let c = r.apply(centre, centre: centre)
        for a in 0..<3 { XCTAssertEqual(c[a] - centre[a], r.translationMM[a], accuracy: 1e-9) }
        let p = [3.0, 4, -8]
        let q = r.apply(p, centre: centre)
        func dist(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        XCTAssertEqual(dist(q, c), dist(p, centre), accuracy: 1e-9)
        // 90 degrees about z takes +x to +y.
        let z90 = RigidTransform(rotationDegrees: [0, 0, 90])
        let e = z90.apply([1, 0, 0], centre: [0, 0, 0])
        XCTAssertEqual(e[0], 0, accuracy: 1e-12); XCTAssertEqual(e[1], 1, accuracy: 1e-12); XCTAssertEqual(e[2], 0, accuracy: 1e-12)
        // The inverse undoes it.
        let back = r.inverseWorldMatrix(centre: centre).apply(q)
        for a in 0..<3 { XCTAssertEqual(back[a], p[a], accuracy: 1e-9) }
        geoAssertAffine(r.inverseWorldMatrix(centre: centre) * r.worldMatrix(centre: centre), .identity, accuracy: 1e-12)
    }

    func testRandomTransformsAreBoundedAndSeeded() {
        var a = GeoTestRNG(seed: 42), b = GeoTestRNG(seed: 42)
        for _ in 0..<200 {
            let t = RigidTransform.random(maxTranslationMM: 5, maxRotationDegrees: 10, rng: &a)
            XCTAssertEqual(t, RigidTransform.random(maxTranslationMM: 5, maxRotationDegrees: 10, rng: &b))
            XCTAssertLessThanOrEqual(t.translationMM.map { $0 * $0 }.reduce(0, +).squareRoot(), 5 + 1e-12)
            XCTAssertTrue(t.rotationDegrees.allSatisfy { abs($0) <= 10 })
        }
        var c = GeoTestRNG(seed: 1)
        XCTAssertEqual(RigidTransform.random(maxTranslationMM: 0, maxRotationDegrees: 0, rng: &c), .identity)
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
        let t = RigidTransform(rotationDegrees: [0, 0, 0], translationMM: [3.3, -2.6, 4.1])
        let moved = try v.applying(t, interpolation: .linear)
        XCTAssertEqual(moved.shape, v.shape)
        XCTAssertEqual(moved.affine, v.affine)
        XCTAssertEqual(moved.spacing, v.spacing)
        let c1 = worldCentroid(moved)
        for a in 0..<3 {
            XCTAssertEqual(c1[a] - c0[a], t.translationMM[a], accuracy: 0.3 * affine.spacing[a], "axis \(a)")
        }
        // A rotation about the centre keeps a centred blob's centroid.
        let r = try v.applying(RigidTransform(rotationDegrees: [8, -6, 12]), interpolation: .linear)
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
        var rng = GeoTestRNG(seed: 3)
        let (out, transforms) = try c.withSimulatedMisalignment(maxTranslationMM: 3, maxRotationDegrees: 5, rng: &rng)
        XCTAssertNil(out.channels[0])
        XCTAssertNil(transforms[0]); XCTAssertNil(transforms[1])
        XCTAssertEqual(out.channels[1]?.voxels, v.voxels)
        XCTAssertNotNil(transforms[2]); XCTAssertNotNil(transforms[3])
        XCTAssertNotEqual(out.channels[2]?.voxels, v.voxels)
        XCTAssertEqual(out.label?.voxels, v.voxels)
    }
}
