import XCTest
@testable import Metrics

/// The bounding-box crop must not change anything: same surfaces (border rule), same distances.
final class CropInvarianceTests: XCTestCase {
    func compare(_ pred: [Bool], _ ref: [Bool], _ shape: [Int], _ spacing: [Double], _ label: String) {
        let (cropped, uncropped) = pred.withUnsafeBufferPointer { p in
            ref.withUnsafeBufferPointer { r in
                (SegmentationMetrics.evaluate(p, r, shape: shape, spacing: spacing, crop: true) { $0 },
                 SegmentationMetrics.evaluate(p, r, shape: shape, spacing: spacing, crop: false) { $0 })
            }
        }
        XCTAssertEqual(cropped.metrics.dice, uncropped.metrics.dice, label)
        XCTAssertEqual(cropped.metrics.jaccard, uncropped.metrics.jaccard, label)
        assertClose(cropped.metrics, uncropped.metrics, accuracy: 1e-12, label)
        guard let a = cropped.distances, let b = uncropped.distances else {
            XCTAssertNil(cropped.distances); XCTAssertNil(uncropped.distances); return
        }
        // Same surface voxels in the same order, same distances (up to the last bits of rounding).
        XCTAssertEqual(a.predictionToReference.count, b.predictionToReference.count, label)
        XCTAssertEqual(a.referenceToPrediction.count, b.referenceToPrediction.count, label)
        for (x, y) in zip(a.predictionToReference + a.referenceToPrediction,
                          b.predictionToReference + b.referenceToPrediction) {
            XCTAssertEqual(x, y, accuracy: 1e-12 * max(1, y), label)
        }
    }

    /// Random boxes and blobs, some touching the volume border, some small and far from it.
    func testRandomPlacements() {
        var rng = SplitMix64(seed: 2024)
        let (nx, ny, nz) = (24, 20, 16)
        let spacing = [0.8, 1.2, 3.0]
        for trial in 0..<40 {
            func randomBox() -> [Bool] {
                let lo = [Int.random(in: 0..<nx, using: &rng), Int.random(in: 0..<ny, using: &rng),
                          Int.random(in: 0..<nz, using: &rng)]
                let size = (0..<3).map { _ in Int.random(in: 1...9, using: &rng) }
                let holes = trial % 3 == 0 ? 0.15 : 0
                var m = makeMask(nx, ny, nz) { i, j, k in
                    i >= lo[0] && i < lo[0] + size[0] && j >= lo[1] && j < lo[1] + size[1]
                        && k >= lo[2] && k < lo[2] + size[2]
                }
                for idx in m.indices where m[idx] && Double.random(in: 0..<1, using: &rng) < holes { m[idx] = false }
                return m
            }
            compare(randomBox(), randomBox(), [nx, ny, nz], spacing, "trial \(trial)")
        }
    }

    func testObjectsOnEveryFaceAndCorner() {
        let (nx, ny, nz) = (16, 12, 10)
        // Objects hugging the low and the high border on each axis, and one far interior voxel.
        let pred = makeMask(nx, ny, nz) { i, j, k in (i < 3 && j < 4 && k < 2) || (i == 8 && j == 6 && k == 5) }
        let ref = makeMask(nx, ny, nz) { i, j, k in i >= nx - 2 && j >= ny - 5 && k >= nz - 3 }
        compare(pred, ref, [nx, ny, nz], [0.5, 0.9, 2.5], "corners")
        // Objects one voxel away from the border: the crop margin must keep them non-border.
        let p2 = makeMask(nx, ny, nz) { i, j, k in (1...4).contains(i) && (1...4).contains(j) && (1...4).contains(k) }
        let r2 = makeMask(nx, ny, nz) { i, j, k in (2...5).contains(i) && (1...5).contains(j) && (2...3).contains(k) }
        compare(p2, r2, [nx, ny, nz], [0.5, 0.9, 2.5], "margin")
        // Interior objects whose crop is far from any border.
        let p3 = makeMask(nx, ny, nz) { i, j, k in (6...8).contains(i) && (5...7).contains(j) && (4...6).contains(k) }
        let r3 = makeMask(nx, ny, nz) { i, j, k in (6...9).contains(i) && (4...7).contains(j) && (4...5).contains(k) }
        compare(p3, r3, [nx, ny, nz], [0.5, 0.9, 2.5], "interior")
        // 2D.
        let p4 = makeMask(12, 9, 1) { i, j, _ in i < 3 && j > 2 }
        let r4 = makeMask(12, 9, 1) { i, j, _ in (4...6).contains(i) && (3...5).contains(j) }
        compare(p4, r4, [12, 9], [0.7, 1.9], "2d")
    }
}
