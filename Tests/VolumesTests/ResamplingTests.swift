import Essentials
import Foundation
import XCTest
@testable import Volumes

final class ResamplingTests: XCTestCase {
    func randomVolume(_ shape: [Int], affine: Affine, seed: UInt64) -> Volume {
        var rng = SeededGenerator(seed: seed, stream: [])
        return geoVolume(shape, affine: affine) { _, _, _ in Float.random(in: 0...1, using: &rng) }
    }

    func testIdentityResamplingIsExact() throws {
        let v = randomVolume([9, 8, 7], affine: GeometryTests.obliqueAffine, seed: 1)
        for mode in [Interpolation.linear, .nearest] {
            let r = try v.resampled(onto: v.grid, interpolation: mode)
            XCTAssertEqual(r.voxels, v.voxels)
            XCTAssertEqual(r.affine, v.affine)
            // The general (grid_sample) path agrees to float precision.
            let g = try v.resampled(voxelMap: .identity, shape: v.shape, affine: v.affine, interpolation: mode, fill: 0, exactShortcut: false)
            for n in v.voxels.indices { XCTAssertEqual(g.voxels[n], v.voxels[n], accuracy: 1e-5) }
        }
    }

    /// The source lies 2 voxels further along i in world: its voxel i appears at target voxel i + 2.
    func testWholeVoxelShiftMovesValuesByTwoVoxels() throws {
        let a = GeometryTests.obliqueAffine
        let v = randomVolume([8, 6, 5], affine: a, seed: 2)
        var shiftedAffine = a
        for r in 0..<3 { shiftedAffine[r, 3] += 2 * a[r, 0] }   // world origin moved by 2 voxels along i
        let source = Volume(shape: v.shape, voxels: v.voxels, spacing: v.spacing, affine: shiftedAffine)
        for exact in [true, false] {
            let inv = try XCTUnwrap(shiftedAffine.inverse())
            let r = try source.resampled(voxelMap: inv * a, shape: v.shape, affine: a, interpolation: .linear, fill: 0, exactShortcut: exact)
            for k in 0..<5 { for j in 0..<6 { for i in 0..<8 {
                let expected: Float = i >= 2 ? v[i - 2, j, k] : 0
                XCTAssertEqual(r[i, j, k], expected, accuracy: exact ? 0 : 1e-5, "exact \(exact) at \(i) \(j) \(k)")
            } } }
        }
        // Public API, labels with a non-zero background fill.
        let labels = geoVolume([8, 6, 5], affine: shiftedAffine) { i, _, _ in Float(i % 3) }
        let r = try labels.resampled(onto: VoxelGrid(shape: [8, 6, 5], affine: a), interpolation: .nearest, fill: 9)
        XCTAssertEqual(r[0, 1, 1], 9)
        XCTAssertEqual(r[5, 1, 1], labels[3, 1, 1])
    }

    func testHalfVoxelShiftInterpolatesLinearly() throws {
        // A ramp along i: sampling half a voxel further gives the mean of neighbours.
        let v = geoVolume([6, 3, 3], affine: .scaling([2, 1, 1])) { i, _, _ in Float(i * i) }
        let grid = VoxelGrid(shape: [5, 3, 3], affine: .scaling([2, 1, 1], origin: [1, 0, 0]))
        let r = try v.resampled(onto: grid, interpolation: .linear)
        for i in 0..<5 { XCTAssertEqual(r[i, 1, 1], Float(i * i + (i + 1) * (i + 1)) / 2, accuracy: 1e-4) }
        let n = try v.resampled(onto: grid, interpolation: .nearest)
        for i in 0..<5 { XCTAssertTrue(n[i, 1, 1] == v[i, 1, 1] || n[i, 1, 1] == v[i + 1, 1, 1]) }
    }

    func testPermutedGridsAgreeBetweenExactAndGridSamplePaths() throws {
        let v = randomVolume([7, 5, 6], affine: GeometryTests.obliqueAffine, seed: 3)
        let target = v.reoriented(to: try Orientation("SLP")).grid
        let inv = try XCTUnwrap(v.affine.inverse())
        let exact = try v.resampled(voxelMap: inv * target.affine, shape: target.shape, affine: target.affine, interpolation: .linear, fill: 0)
        let general = try v.resampled(voxelMap: inv * target.affine, shape: target.shape, affine: target.affine, interpolation: .linear, fill: 0,
                                      exactShortcut: false)
        XCTAssertEqual(exact.shape, [6, 7, 5])
        for n in exact.voxels.indices { XCTAssertEqual(exact.voxels[n], general.voxels[n], accuracy: 1e-5) }
        XCTAssertEqual(exact.voxels, v.reoriented(to: try Orientation("SLP")).voxels)
    }

    func testOutsideIsFillAndSizeOneAxes() throws {
        let v = geoVolume([4, 4, 1], affine: .scaling([1, 1, 3])) { _, _, _ in 5 }
        // A slightly rotated grid forces grid_sample; the single k slice is inside within half a voxel.
        var a = Affine.scaling([1, 1, 3], origin: [0, 0, 0.4])
        a[0, 1] = 0.01
        let r = try v.resampled(onto: VoxelGrid(shape: [4, 4, 2], affine: a), interpolation: .nearest, fill: 0)
        XCTAssertEqual(r[1, 1, 0], 5)
        XCTAssertEqual(r[1, 1, 1], 0)   // 3.4 mm away: outside
        let far = try v.resampled(onto: VoxelGrid(shape: [2, 2, 2], affine: .scaling([1, 1, 1], origin: [100, 0, 0])), interpolation: .linear)
        XCTAssertEqual(far.voxels, Array(repeating: 0, count: 8))
        XCTAssertThrowsError(try v.resampled(onto: VoxelGrid(shape: [0, 2, 2], affine: .identity), interpolation: .linear))
        let singular = Volume(shape: [1, 1, 1], voxels: [1], spacing: [1, 1, 1], affine: Affine(rowMajor: Array(repeating: 0, count: 16)))
        XCTAssertThrowsError(try singular.resampled(onto: v.grid, interpolation: .linear)) { error in
            XCTAssertTrue("\(error)".contains("singular"), "\(error)")
        }
    }

    func testSpacingResamplingKeepsWorldBoxAndCentre() throws {
        let affine = geoAffine([[-0.8, 0, 0, 30], [0, -0.8, 0, 20], [0, 0, 3, -10]])
        // A linear function of world position: trilinear resampling reproduces it inside.
        let v = geoVolume([20, 16, 6], affine: affine) { i, j, k in Float(i) * 0.8 * 0.5 - Float(j) * 0.8 + Float(k) * 3 * 0.25 }
        let r = try v.resampled(toSpacing: [1.6, 1.0, 1.5], interpolation: .linear)
        XCTAssertEqual(r.shape, [10, 13, 12])
        XCTAssertEqual(r.spacing[0], 1.6, accuracy: 1e-12)
        XCTAssertEqual(r.spacing[1], 0.8 * 16 / 13, accuracy: 1e-12)
        XCTAssertEqual(r.spacing[2], 1.5, accuracy: 1e-12)
        for (x, y) in zip(r.grid.centre, v.grid.centre) { XCTAssertEqual(x, y, accuracy: 1e-9) }
        let corners = r.grid.worldCorners, original = v.grid.worldCorners
        for (c, o) in zip(corners, original) { for a in 0..<3 { XCTAssertEqual(c[a], o[a], accuracy: 1e-9) } }
        XCTAssertEqual(r.affine.spacing[0], r.spacing[0], accuracy: 1e-12)
        let inv = try XCTUnwrap(v.affine.inverse())
        for (i, j, k) in [(2, 3, 3), (5, 6, 7), (7, 10, 9)] {
            let p = inv.apply(r.affine.apply([Double(i), Double(j), Double(k)]))
            let expected = p[0] * 0.4 - p[1] * 0.8 + p[2] * 0.75
            XCTAssertEqual(Double(r[i, j, k]), expected, accuracy: 1e-4)
        }
        // Labels: nearest keeps the label set; same target returns the same volume.
        let labels = geoVolume([20, 16, 6], affine: affine) { i, j, _ in Float((i / 5 + j / 4) % 3) }
        let rl = try labels.resampled(toSpacing: [1.6, 1.0, 1.5], interpolation: .nearest)
        XCTAssertEqual(rl.shape, r.shape)
        XCTAssertEqual(rl.affine, r.affine)
        XCTAssertTrue(Set(rl.voxels).isSubset(of: [0, 1, 2]))
        XCTAssertEqual(try labels.resampled(toSpacing: labels.spacing, interpolation: .nearest).voxels, labels.voxels)
        XCTAssertThrowsError(try labels.resampled(toSpacing: [1, 0, 1], interpolation: .nearest))
        // Upsampling then downsampling labels by whole factors returns them exactly.
        let up = try labels.resampled(toShape: [40, 32, 12], interpolation: .nearest)
        XCTAssertEqual(try up.resampled(toShape: labels.shape, interpolation: .nearest).voxels, labels.voxels)
    }

    /// 256x256x128 to another spacing (not a unit test: set CONCORD_PERF=1).
    func testPerformanceSpacingResampling() throws {
        guard ProcessInfo.processInfo.environment["CONCORD_PERF"] == "1" else { throw XCTSkip("set CONCORD_PERF=1") }
        let shape = [256, 256, 128]
        var voxels = [Float](repeating: 0, count: shape.reduce(1, *))
        for n in voxels.indices { voxels[n] = Float(n % 977) }
        let v = Volume(shape: shape, voxels: voxels, spacing: [0.8, 0.8, 2.5], affine: GeometryTests.obliqueAffine)
        func time(_ label: String, _ body: () throws -> Volume) rethrows {
            let t0 = Date()
            let r = try body()
            print(String(format: "PERF %@: %.3f s -> %@", label, Date().timeIntervalSince(t0), "\(r.shape)"))
        }
        for _ in 0..<2 {
            try time("linear 0.8x0.8x2.5 -> 1x1x1") { try v.resampled(toSpacing: [1, 1, 1], interpolation: .linear) }
            try time("nearest 0.8x0.8x2.5 -> 1x1x1") { try v.resampled(toSpacing: [1, 1, 1], interpolation: .nearest) }
            try time("linear -> 1.5 mm") { try v.resampled(toSpacing: [1.5, 1.5, 1.5], interpolation: .linear) }
            let rot = RigidTransform(axis: [1, -0.5, 2], angleDegrees: 6, translationMM: [1.3, 0, -2])
            try time("rigid linear same grid") { try v.applying(rot, interpolation: .linear) }
            try time("rigid nearest same grid") { try v.applying(rot, interpolation: .nearest) }
            time("reorient") { v.reoriented() }
        }
    }
}
