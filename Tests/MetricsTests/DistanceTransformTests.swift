import XCTest
@testable import Metrics

final class DistanceTransformTests: XCTestCase {
    /// min over features of sqrt(Σ (Δ·s)²), by brute force.
    func bruteForce(_ features: [Bool], _ nx: Int, _ ny: Int, _ nz: Int, _ s: [Double]) -> [Double] {
        var points: [(Int, Int, Int)] = []
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx where features[i + nx * (j + ny * k)] { points.append((i, j, k)) } } }
        var out = [Double](repeating: .infinity, count: nx * ny * nz)
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
            var best = Double.infinity
            for (a, b, c) in points {
                let dx = Double(i - a) * s[0], dy = Double(j - b) * s[1], dz = Double(k - c) * s[2]
                best = min(best, dx * dx + dy * dy + dz * dz)
            }
            out[i + nx * (j + ny * k)] = best.squareRoot()
        } } }
        return out
    }

    func testMatchesBruteForceOnRandomMasks() {
        var rng = SplitMix64(seed: 7)
        let shapes = [(7, 5, 6), (1, 8, 9), (13, 1, 1), (10, 9, 8), (16, 3, 11), (5, 17, 2), (20, 20, 20)]
        for (trial, (nx, ny, nz)) in (shapes + shapes).enumerated() {
            let spacing = (0..<3).map { _ in Double.random(in: 0.3...3.5, using: &rng) }
            let density = [0.002, 0.02, 0.1, 0.5][trial % 4]
            var features = (0..<(nx * ny * nz)).map { _ in Double.random(in: 0..<1, using: &rng) < density }
            if !features.contains(true) { features[Int.random(in: 0..<features.count, using: &rng)] = true }
            let fast = EuclideanDistanceTransform.distances(features: features, shape: [nx, ny, nz], spacing: spacing)
            let slow = bruteForce(features, nx, ny, nz, spacing)
            for idx in fast.indices {
                XCTAssertEqual(fast[idx], slow[idx], accuracy: 1e-9, "shape \((nx, ny, nz)) spacing \(spacing) voxel \(idx)")
            }
        }
    }

    func testTwoDimensionalAndOneDimensionalShapes() {
        var rng = SplitMix64(seed: 11)
        let features2 = (0..<(12 * 9)).map { _ in Double.random(in: 0..<1, using: &rng) < 0.05 }
        let fast2 = EuclideanDistanceTransform.distances(features: features2, shape: [12, 9], spacing: [0.7, 2.1])
        let slow2 = bruteForce(features2, 12, 9, 1, [0.7, 2.1, 1])
        for idx in fast2.indices { XCTAssertEqual(fast2[idx], slow2[idx], accuracy: 1e-9) }
        let line: [Bool] = [false, false, true, false, false, false, true, false]
        XCTAssertEqual(EuclideanDistanceTransform.distances(features: line, shape: [8], spacing: [0.5]),
                       [1.0, 0.5, 0, 0.5, 1.0, 0.5, 0, 0.5])
    }

    func testNoFeaturesIsInfinite() {
        let d = EuclideanDistanceTransform.squaredDistances(features: [Bool](repeating: false, count: 24),
                                                            shape: [2, 3, 4], spacing: [1, 1, 1])
        XCTAssertTrue(d.allSatisfy { $0 == .infinity })
    }

    func testWideVolumeCrossesLineBlocks() {
        // nx = 37 is not a multiple of the 16-line gather block; a single feature far in z.
        let nx = 37, ny = 4, nz = 30
        var features = [Bool](repeating: false, count: nx * ny * nz)
        features[36 + nx * (3 + ny * 29)] = true
        let spacing = [0.9, 1.3, 2.7]
        let fast = EuclideanDistanceTransform.distances(features: features, shape: [nx, ny, nz], spacing: spacing)
        let slow = bruteForce(features, nx, ny, nz, spacing)
        for idx in fast.indices { XCTAssertEqual(fast[idx], slow[idx], accuracy: 1e-9) }
    }
}
