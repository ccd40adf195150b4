import XCTest
@testable import Metrics

/// Values worked out by hand (arithmetic in the comments).
final class HandComputedMetricsTests: XCTestCase {
    func testDiceAndJaccardOnTinyMasks() {
        // 4 x 1 x 1: A = {0, 1, 2}, B = {1, 2, 3}: |A∩B| = 2, |A∪B| = 4.
        let a: [Bool] = [true, true, true, false]
        let b: [Bool] = [false, true, true, true]
        let m = SegmentationMetrics.binary(prediction: a, reference: b, shape: [4, 1, 1], spacing: [1, 1, 1])
        XCTAssertEqual(m.dice, 2.0 * 2 / (3 + 3), accuracy: 1e-15)  // 2/3
        XCTAssertEqual(m.jaccard, 2.0 / 4, accuracy: 1e-15)         // 1/2
        // A = {0}, B = {0, 1, 2, 3}: dice 2·1/(1+4) = 0.4, jaccard 1/4.
        let c: [UInt8] = [1, 0, 0, 0], d: [UInt8] = [1, 7, 1, 1]  // any nonzero byte is foreground
        let n = SegmentationMetrics.binary(prediction: c, reference: d, shape: [4, 1, 1], spacing: [1, 1, 1])
        XCTAssertEqual(n.dice, 0.4, accuracy: 1e-15)
        XCTAssertEqual(n.jaccard, 0.25, accuracy: 1e-15)
        XCTAssertFalse(n.predictionEmpty || n.referenceEmpty)
    }

    /// Reference: the 3x3x3 box i, j, k in 1...3 of a 6x5x6 volume; prediction: the same box moved by
    /// one voxel along z (k in 2...4). Spacing (0.5, 2.0, 3.0): one voxel along z is 3.0 mm.
    func testOneVoxelShiftAnisotropic() {
        let ref = makeMask(6, 5, 6) { i, j, k in (1...3).contains(i) && (1...3).contains(j) && (1...3).contains(k) }
        let pred = makeMask(6, 5, 6) { i, j, k in (1...3).contains(i) && (1...3).contains(j) && (2...4).contains(k) }
        let m = SegmentationMetrics.binary(prediction: pred, reference: ref, shape: [6, 5, 6], spacing: [0.5, 2.0, 3.0])
        // |A| = |B| = 27, |A∩B| = 3·3·2 = 18: dice = 36/54 = 2/3, jaccard = 18/36 = 1/2.
        XCTAssertEqual(m.dice, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.jaccard, 0.5, accuracy: 1e-12)
        // Surfaces: each box minus its centre voxel (26 voxels); ref centre (2,2,2), pred centre (2,2,3).
        // pred -> ref, by layer of pred:
        //   k = 2: 8 voxels lie on ref surface (0); the 9th, (2,2,2), is ref's interior voxel; its
        //          nearest ref surface voxels are (2,2,1)/(2,2,3) at 3.0 or (1,2,2)/(3,2,2) at 0.5 mm -> 0.5
        //   k = 3: 8 surface voxels, all on ref's top face (0); (2,2,3) is pred's interior voxel
        //   k = 4: 9 voxels, nearest ref surface voxel directly below at k = 3: 3.0 mm each
        // -> 16 zeros, one 0.5, nine 3.0: sum = 27.5 over 26 voxels. ref -> pred is the mirror image.
        // asd = 27.5 / 26; assd = (27.5 + 27.5) / 52 = 27.5 / 26; hd = 3.0.
        // hd95: 52 pooled values sorted = 32 zeros, two 0.5, eighteen 3.0; index 0.95·51 = 48.45 -> 3.0.
        XCTAssertEqual(m.asd!, 27.5 / 26, accuracy: 1e-12)
        XCTAssertEqual(m.assd!, 27.5 / 26, accuracy: 1e-12)
        XCTAssertEqual(m.hd!, 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.hd95!, 3.0, accuracy: 1e-12)

        let d = SegmentationMetrics.surfaceDistances(prediction: pred, reference: ref, shape: [6, 5, 6],
                                                     spacing: [0.5, 2.0, 3.0])!
        XCTAssertEqual(d.predictionToReference.sorted(), Array(repeating: 0.0, count: 16) + [0.5]
                       + Array(repeating: 3.0, count: 9))
        XCTAssertEqual(d.referenceToPrediction.sorted(), d.predictionToReference.sorted())
    }

    func testSingleVoxelsAnisotropic() {
        // pred (0,0,0), ref (1,2,1), spacing (0.8, 1.2, 3.0): d = sqrt(0.8² + 2.4² + 3.0²) = sqrt(15.4).
        let pred = makeMask(3, 3, 2) { i, j, k in i == 0 && j == 0 && k == 0 }
        let ref = makeMask(3, 3, 2) { i, j, k in i == 1 && j == 2 && k == 1 }
        let m = SegmentationMetrics.binary(prediction: pred, reference: ref, shape: [3, 3, 2], spacing: [0.8, 1.2, 3.0])
        let d = (0.64 + 5.76 + 9.0).squareRoot()
        XCTAssertEqual(m.dice, 0)
        XCTAssertEqual(m.jaccard, 0)
        for value in [m.hd95, m.hd, m.asd, m.assd] { XCTAssertEqual(value!, d, accuracy: 1e-12) }
    }

    func testPercentileMatchesNumpyLinear() {
        // np.percentile(range(11), 95): index 0.95·10 = 9.5 -> 9.5
        XCTAssertEqual(numpyPercentile((0...10).map(Double.init), 95), 9.5, accuracy: 1e-15)
        // np.percentile([0, 0, 0, 1], 95): index 0.95·3 = 2.85 -> 0 + 0.85·(1 - 0) = 0.85
        XCTAssertEqual(numpyPercentile([1, 0, 0, 0], 95), 0.85, accuracy: 1e-15)
        XCTAssertEqual(numpyPercentile([4], 95), 4)
        XCTAssertEqual(numpyPercentile([3, 1, 2], 100), 3)
        XCTAssertEqual(numpyPercentile([3, 1, 2], 0), 1)
    }

    func testBothEmpty() {
        let empty = [Bool](repeating: false, count: 4 * 3 * 2)
        let m = SegmentationMetrics.binary(prediction: empty, reference: empty, shape: [4, 3, 2], spacing: [1, 2, 3])
        XCTAssertEqual(m, BinaryMetrics(dice: 1, jaccard: 1, hd95: 0, hd: 0, asd: 0, assd: 0,
                                        predictionEmpty: true, referenceEmpty: true))
        XCTAssertFalse(m.distancesMissing)
    }

    func testExactlyOneEmpty() {
        let empty = [Bool](repeating: false, count: 4 * 3 * 2)
        var one = empty
        one[5] = true
        let a = SegmentationMetrics.binary(prediction: empty, reference: one, shape: [4, 3, 2], spacing: [1, 2, 3])
        XCTAssertEqual(a, BinaryMetrics(dice: 0, jaccard: 0, hd95: nil, hd: nil, asd: nil, assd: nil,
                                        predictionEmpty: true, referenceEmpty: false))
        XCTAssertTrue(a.distancesMissing)
        let b = SegmentationMetrics.binary(prediction: one, reference: empty, shape: [4, 3, 2], spacing: [1, 2, 3])
        XCTAssertEqual(b, BinaryMetrics(dice: 0, jaccard: 0, hd95: nil, hd: nil, asd: nil, assd: nil,
                                        predictionEmpty: false, referenceEmpty: true))
        XCTAssertNil(SegmentationMetrics.surfaceDistances(prediction: one, reference: empty, shape: [4, 3, 2],
                                                          spacing: [1, 2, 3]))
    }

    func testSurfaceBorderRule() {
        // A full 3x3x3 volume: only the centre has all 6 neighbours inside the volume and the mask.
        let full = [Bool](repeating: true, count: 27)
        let s = MaskSurface.surface(of: full, shape: [3, 3, 3])
        XCTAssertEqual(s.filter { $0 }.count, 26)
        XCTAssertFalse(s[1 + 3 * (1 + 3 * 1)])
        // 3x3x1 as a 3D volume: z = 0 is on both z borders, so every voxel is surface.
        XCTAssertEqual(MaskSurface.surface(of: [Bool](repeating: true, count: 9), shape: [3, 3, 1]).filter { $0 }.count, 9)
        // The same 3x3 as a 2D image: 4-connected erosion keeps the centre.
        XCTAssertEqual(MaskSurface.surface(of: [Bool](repeating: true, count: 9), shape: [3, 3]).filter { $0 }.count, 8)
        // A 3x3x3 cube inside a 5x5x5 volume: 26 surface voxels, the cube's centre is interior.
        let cube = makeMask(5, 5, 5) { i, j, k in (1...3).contains(i) && (1...3).contains(j) && (1...3).contains(k) }
        let cs = MaskSurface.surface(of: cube, shape: [5, 5, 5])
        XCTAssertEqual(cs.filter { $0 }.count, 26)
        XCTAssertFalse(cs[2 + 5 * (2 + 5 * 2)])
    }

    func testPerClassLabels() {
        // Row j = 0: pred [1,1,2,0], ref [1,2,2,0]; label 9 only in pred (last voxel), 3 and 300 in neither.
        let pred: [UInt8] = [1, 1, 2, 0, 0, 0, 0, 9]
        let ref: [UInt8] = [1, 2, 2, 0, 0, 0, 0, 0]
        let m = SegmentationMetrics.perClass(prediction: pred, reference: ref, shape: [4, 2, 1],
                                             spacing: [1, 1, 1], labels: [1, 2, 3, 9, 300])
        XCTAssertEqual(m[1]!.dice, 2.0 * 1 / (2 + 1), accuracy: 1e-15)
        XCTAssertEqual(m[2]!.dice, 2.0 * 1 / (1 + 2), accuracy: 1e-15)
        XCTAssertEqual(m[3]!.dice, 1)
        XCTAssertEqual(m[3]!.hd95, 0)
        XCTAssertEqual(m[9]!.dice, 0)
        XCTAssertNil(m[9]!.hd95)
        XCTAssertTrue(m[9]!.referenceEmpty)
        XCTAssertEqual(m[300]!.dice, 1)  // not representable in UInt8: empty in both
        // Generic label types give the same answer.
        let m32 = SegmentationMetrics.perClass(prediction: pred.map(Int32.init), reference: ref.map(Int32.init),
                                               shape: [4, 2, 1], spacing: [1, 1, 1], labels: [1, 2, 3, 9])
        for label in [1, 2, 3, 9] { XCTAssertEqual(m32[label], m[label]) }
    }
}
