import Foundation
import XCTest
@testable import Volumes

final class PreprocessingTests: XCTestCase {
    /// An oblique-ish LPS affine: R_z(8) R_x(5) diag(-sx, -sy, sz), origin `o`.
    func lpsAffine(spacing s: [Double], origin o: [Double], degrees: Double = 8) -> Affine {
        let r = geoEulerRotation([5, 0, degrees])
        let d = [-s[0], -s[1], s[2]]
        return geoAffine((0..<3).map { row in (0..<3).map { r[row * 3 + $0] * d[$0] } + [o[row]] })
    }

    /// Label of a world point: two nested ellipsoids around `c`.
    func anatomy(_ w: [Double], _ c: [Double]) -> Float {
        let d = (w[0] - c[0]) / 9, e = (w[1] - c[1]) / 7, f = (w[2] - c[2]) / 12
        let r = d * d + e * e + f * f
        return r < 0.35 ? 2 : (r < 1 ? 1 : 0)
    }

    /// Image of a world point: non-zero inside a box around `c` (so cropping does something).
    func intensity(_ w: [Double], _ c: [Double], scale: Float) -> Float {
        guard abs(w[0] - c[0]) < 14, abs(w[1] - c[1]) < 12, abs(w[2] - c[2]) < 20 else { return 0 }
        return scale * (10 + 30 * anatomy(w, c) + Float(0.1 * (w[0] - c[0])))
    }

    func makeCase(_ name: String, shape: [Int], affine: Affine, secondAffine: Affine? = nil, secondShape: [Int]? = nil) -> CaseVolumes {
        let c = VoxelGrid(shape: shape, affine: affine).centre
        let image = geoVolume(shape, affine: affine) { i, j, k in self.intensity(affine.apply([Double(i), Double(j), Double(k)]), c, scale: 1) }
        let label = geoVolume(shape, affine: affine) { i, j, k in self.anatomy(affine.apply([Double(i), Double(j), Double(k)]), c) }
        let a2 = secondAffine ?? affine, s2 = secondShape ?? shape
        let second = geoVolume(s2, affine: a2) { i, j, k in self.intensity(a2.apply([Double(i), Double(j), Double(k)]), c, scale: 2) }
        return CaseVolumes(name: name, channels: [image, second], label: label)
    }

    func testRoundTripRestoresInputGeometryAndLabels() throws {
        let a1 = lpsAffine(spacing: [0.9, 1.3, 3.0], origin: [40, 30, -20])
        let case1 = makeCase("case1", shape: [32, 26, 12], affine: a1,
                             secondAffine: lpsAffine(spacing: [1.4, 1.4, 2.0], origin: [43, 33, -22], degrees: 3), secondShape: [24, 24, 18])
        let case2 = makeCase("case2", shape: [28, 30, 16], affine: lpsAffine(spacing: [1.2, 1.0, 2.2], origin: [0, 0, 0]))
        let plan = try PreprocessingPlan.make(cases: [case1, case2], channelNames: ["CT", "T2"])
        // Median of the RAS spacings (the LPS flips keep the axis order).
        XCTAssertEqual(plan.targetSpacing[0], 1.05, accuracy: 1e-9)
        XCTAssertEqual(plan.targetSpacing[1], 1.15, accuracy: 1e-9)
        XCTAssertEqual(plan.targetSpacing[2], 2.6, accuracy: 1e-9)
        guard case .ct = plan.normalization[0] else { return XCTFail("\(plan.normalization)") }
        XCTAssertEqual(plan.channelNames, ["CT", "T2"])

        let p = try plan.apply(case1)
        XCTAssertEqual(p.present, [true, true])
        XCTAssertEqual(p.channels.count, 2)
        let label = try XCTUnwrap(p.label)
        for v in p.channels + [label] {
            XCTAssertEqual(v.shape, p.record.preprocessedShape)
            XCTAssertEqual(v.affine, p.record.preprocessedAffine)
        }
        XCTAssertEqual(label.orientation, .ras)
        XCTAssertEqual(p.record.referenceChannel, 0)
        // Cropping happened (the image is zero near the borders) and the spacing is the target's.
        XCTAssertLessThan(p.record.cropBox.count, 32 * 26 * 12)
        for a in 0..<3 { XCTAssertEqual(label.spacing[a], plan.targetSpacing[a], accuracy: 0.5 * plan.targetSpacing[a] / Double(label.shape[a]) + 1e-9) }
        XCTAssertEqual(Set(label.voxels), [0, 1, 2])

        let restored = try plan.restore(label, record: p.record)
        let original = try XCTUnwrap(case1.label)
        XCTAssertEqual(restored.shape, original.shape)
        XCTAssertEqual(restored.affine, case1.channels[0]!.affine)
        XCTAssertEqual(restored.spacing, case1.channels[0]!.spacing)
        let agree = zip(restored.voxels, original.voxels).filter { $0 == $1 }.count
        let fraction = Double(agree) / Double(original.count)
        XCTAssertGreaterThanOrEqual(fraction, 0.99, "agreement \(fraction)")
        // The round trip of the record through JSON keeps it.
        let data = try JSONEncoder().encode(p.record)
        XCTAssertEqual(try JSONDecoder().decode(RestoreRecord.self, from: data), p.record)
        let planData = try JSONEncoder().encode(plan)
        XCTAssertEqual(try JSONDecoder().decode(PreprocessingPlan.self, from: planData), plan)
        // Wrong shape to restore.
        XCTAssertThrowsError(try plan.restore(original, record: p.record)) { error in
            XCTAssertTrue("\(error)".contains("case1"), "\(error)")
        }
    }

    func testMisalignedChannelIsResampledOntoTheFirst() throws {
        let a1 = lpsAffine(spacing: [1, 1, 2], origin: [20, 20, -10])
        let a2 = lpsAffine(spacing: [1.5, 1.2, 1.5], origin: [26, 17, -14], degrees: -4)
        let centre = VoxelGrid(shape: [30, 30, 14], affine: a1).centre
        // A smooth function of world position, seen by both channels (channel 1 twice as bright).
        func f(_ w: [Double]) -> Float {
            let d2 = (0..<3).map { (w[$0] - centre[$0]) * (w[$0] - centre[$0]) }.reduce(0, +)
            return Float(5 + 20 * exp(-d2 / 120) + 0.2 * (w[0] - centre[0]))
        }
        let ch0 = geoVolume([30, 30, 14], affine: a1) { i, j, k in f(a1.apply([Double(i), Double(j), Double(k)])) }
        let ch1 = geoVolume([24, 26, 20], affine: a2) { i, j, k in 2 * f(a2.apply([Double(i), Double(j), Double(k)])) }
        let c = CaseVolumes(name: "mis", channels: [ch0, ch1], label: nil)
        let plan = PreprocessingPlan(targetSpacing: [1, 1, 2], normalization: [.none, .none])
        let p = try plan.apply(c)
        XCTAssertEqual(p.record.cropBox, .full([30, 30, 14]))
        // Channel 1 now lies on channel 0's grid: where it was inside its own box, it is 2 f.
        let final = p.channels[0]
        let inv2 = try XCTUnwrap(a2.inverse())
        var checked = 0
        for k in 0..<final.shape[2] { for j in 0..<final.shape[1] { for i in 0..<final.shape[0] {
            let w = final.affine.apply([Double(i), Double(j), Double(k)])
            let q = inv2.apply(w)
            guard (0..<3).allSatisfy({ q[$0] >= 0 && q[$0] <= Double([24, 26, 20][$0] - 1) }) else { continue }
            checked += 1
            XCTAssertEqual(p.channels[1][i, j, k], 2 * final[i, j, k], accuracy: 0.02 * 2 * final[i, j, k] + 0.2)
            XCTAssertEqual(final[i, j, k], f(w), accuracy: 1e-3)
        } } }
        XCTAssertGreaterThan(checked, 2000)

        // Without resampling the shapes must match.
        var noResample = plan
        noResample.resampleChannelsToFirst = false
        XCTAssertThrowsError(try noResample.apply(c)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'mis'") && text.contains("channel 1") && text.contains("shape"), text)
        }
    }

    func testAbsentChannelsAndReferenceFallback() throws {
        let a = lpsAffine(spacing: [1, 1, 2], origin: [5, 5, 5])
        var c = makeCase("mr_only", shape: [20, 18, 10], affine: a)
        c.channels[0] = nil
        let plan = PreprocessingPlan(targetSpacing: [1.5, 1.5, 2], normalization: [.ct(clipLow: 0, clipHigh: 100, mean: 50, std: 10), .zscore(nonZeroOnly: true)],
                                     channelNames: ["CT", "MR"])
        let p = try plan.apply(c)
        XCTAssertEqual(p.present, [false, true])
        XCTAssertEqual(p.record.referenceChannel, 1)
        XCTAssertEqual(p.channels[0].shape, p.channels[1].shape)
        XCTAssertEqual(p.channels[0].affine, p.channels[1].affine)
        XCTAssertTrue(p.channels[0].voxels.allSatisfy { $0 == 0 })
        // z-score over the non-zero region: mean ~0, std ~1 there.
        let nz = p.channels[1].voxels.filter { $0 != 0 }
        XCTAssertGreaterThan(nz.count, 100)
        let restored = try plan.restore(p.label!, record: p.record)
        XCTAssertEqual(restored.shape, c.channels[1]!.shape)
        XCTAssertEqual(restored.affine, c.channels[1]!.affine)

        var none = c
        none.channels = [nil, nil]
        XCTAssertThrowsError(try plan.apply(none)) { error in
            XCTAssertTrue("\(error)".contains("mr_only") && "\(error)".contains("no channel"), "\(error)")
        }
        var three = c
        three.channels.append(nil)
        XCTAssertThrowsError(try plan.apply(three)) { error in XCTAssertTrue("\(error)".contains("3 channel"), "\(error)") }
    }

    func testNaNAndNonOverlappingChannelsAreErrorsNamingCaseAndChannel() throws {
        let a = Affine.scaling([1, 1, 1])
        var c = makeCase("bad", shape: [10, 10, 10], affine: a)
        let plan = PreprocessingPlan(targetSpacing: [1, 1, 1], normalization: [.none, .none], channelNames: ["CT", "T1"])
        c.channels[1]!.voxels[123] = .nan
        XCTAssertThrowsError(try plan.apply(c)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'bad'") && text.contains("channel 1 (T1)") && text.contains("NaN") && text.contains("(3, 2, 1)"), text)
            XCTAssertEqual((error as? PreprocessingError)?.field, "voxel values")
        }
        XCTAssertThrowsError(try PreprocessingPlan.make(cases: [c], channelNames: ["CT", "T1"])) { error in
            XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
        }
        var far = makeCase("far", shape: [10, 10, 10], affine: a)
        far.channels[1] = Volume(shape: [8, 8, 8], voxels: Array(repeating: 1, count: 512), spacing: [1, 1, 1],
                                 affine: .scaling([1, 1, 1], origin: [500, 0, 0]))
        XCTAssertThrowsError(try plan.apply(far)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'far'") && text.contains("channel 1") && text.contains("overlap"), text)
        }
        // Same shape but a box elsewhere: the affine is unusable, the voxels are taken as aligned.
        var sameShape = makeCase("same", shape: [10, 10, 10], affine: a)
        sameShape.channels[1]!.affine = .scaling([1, 1, 1], origin: [500, 0, 0])
        let p = try plan.apply(sameShape)
        XCTAssertEqual(p.present, [true, true])
        var nanLabel = makeCase("lab", shape: [10, 10, 10], affine: a)
        nanLabel.label!.voxels[0] = .nan
        XCTAssertThrowsError(try plan.apply(nanLabel)) { error in XCTAssertTrue("\(error)".contains("label"), "\(error)") }
    }

    func testMakeComputesCTForegroundStatisticsAndMaskRule() throws {
        // Case A: CT foreground values 1, 2, 3; case B: 4, 10 (background values are ignored).
        func volume(_ values: [Float]) -> Volume { Volume(shape: [values.count, 1, 1], voxels: values, spacing: [1, 1, 1]) }
        let a = CaseVolumes(name: "a", channels: [volume([1, 2, 3, -500, -500, 7]), volume([5, 5, 5, 5, 5, 5])],
                            label: volume([1, 2, 1, 0, 0, 0]))
        let b = CaseVolumes(name: "b", channels: [volume([10, 4, 99, 99, 99, 99]), volume([1, 2, 3, 4, 5, 6])],
                            label: volume([3, 1, 0, 0, 0, 0]))
        let unlabelled = CaseVolumes(name: "u", channels: [volume([1000, 1000, 1000, 1000, 1000, 1000]), nil])
        let plan = try PreprocessingPlan.make(cases: [a, b, unlabelled], channelNames: ["ct", "MR"])
        guard case let .ct(lo, hi, mean, std) = plan.normalization[0] else { return XCTFail("\(plan.normalization)") }
        XCTAssertEqual(lo, 1.02, accuracy: 1e-6)
        XCTAssertEqual(hi, 9.88, accuracy: 1e-5)
        XCTAssertEqual(mean, 4, accuracy: 1e-9)
        XCTAssertEqual(std, 10.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(plan.normalization[1], .zscore(nonZeroOnly: false))
        XCTAssertEqual(plan.targetSpacing, [1, 1, 1])

        // Mostly-zero images: cropping keeps < 3/4 of the median case -> z-score inside the non-zero mask.
        let sparse = CaseVolumes(name: "s", channels: [volume([0, 0, 0, 0, 3, 0]), volume([0, 0, 0, 1, 0, 0])], label: volume([0, 0, 0, 0, 1, 0]))
        let plan2 = try PreprocessingPlan.make(cases: [sparse], channelNames: ["CT", "T2"])
        XCTAssertEqual(plan2.normalization[1], .zscore(nonZeroOnly: true))
        XCTAssertEqual(plan2.normalization[0], .ct(clipLow: 3, clipHigh: 3, mean: 3, std: 0))

        // No labelled CT foreground at all.
        XCTAssertThrowsError(try PreprocessingPlan.make(cases: [unlabelled], channelNames: ["CT", "MR"])) { error in
            XCTAssertTrue("\(error)".contains("channel 0 (CT)"), "\(error)")
        }
        XCTAssertThrowsError(try PreprocessingPlan.make(cases: [], channelNames: ["CT"]))
        XCTAssertThrowsError(try PreprocessingPlan.make(cases: [a], channelNames: []))
    }

    func testPlanDecodesWithDefaults() throws {
        let json = #"{"targetSpacing":[1,1,2],"normalization":[{"none":{}}]}"#
        let plan = try JSONDecoder().decode(PreprocessingPlan.self, from: Data(json.utf8))
        XCTAssertTrue(plan.reorientToRAS && plan.cropToNonZero && plan.resampleChannelsToFirst)
        XCTAssertEqual(plan.normalization, [.none])
    }
}
