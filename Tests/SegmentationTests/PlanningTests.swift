import Datasets
import Foundation
import XCTest
@testable import Segmentation
@testable import Torch
import Volumes

/// A case of `shape` (i, j, k) at `spacing` whose non-zero region is `box` (value 1) with a label
/// cube `labelBox` (value 10 in the image, class 1 in the label).
func plannerCase(_ name: String, shape: [Int], spacing: [Double], box: (lower: [Int], upper: [Int]),
                 labelBox: (lower: [Int], upper: [Int]), channels: Int = 1) -> CaseVolumes {
    var image = Volume(shape: shape, voxels: [Float](repeating: 0, count: shape.reduce(1, *)), spacing: spacing)
    var label = Volume(shape: shape, voxels: [Float](repeating: 0, count: shape.reduce(1, *)), spacing: spacing)
    func inside(_ b: (lower: [Int], upper: [Int]), _ i: Int, _ j: Int, _ k: Int) -> Bool {
        (b.lower[0]..<b.upper[0]).contains(i) && (b.lower[1]..<b.upper[1]).contains(j) && (b.lower[2]..<b.upper[2]).contains(k)
    }
    for k in 0..<shape[2] { for j in 0..<shape[1] { for i in 0..<shape[0] {
        if inside(box, i, j, k) { image[i, j, k] = 1 }
        if inside(labelBox, i, j, k) { image[i, j, k] = 10; label[i, j, k] = 1 }
    } } }
    return CaseVolumes(name: name, channels: Array(repeating: image, count: channels), label: label)
}

final class PlanningTests: XCTestCase {
    func testFingerprintOfKnownShapesAndSpacings() throws {
        let cases = [
            plannerCase("a", shape: [20, 18, 10], spacing: [0.7, 0.7, 5], box: ([2, 3, 1], [18, 15, 9]), labelBox: ([4, 4, 2], [8, 8, 6])),
            plannerCase("b", shape: [24, 20, 12], spacing: [0.7, 0.7, 3], box: ([0, 0, 0], [24, 20, 12]), labelBox: ([4, 4, 2], [8, 8, 6])),
            plannerCase("c", shape: [20, 18, 10], spacing: [0.7, 0.7, 5], box: ([1, 1, 1], [19, 17, 9]), labelBox: ([4, 4, 2], [8, 8, 6])),
        ]
        let f = try DatasetFingerprint.make(cases: cases, channelNames: ["MR"], classNames: ["background", "lesion"])
        XCTAssertEqual(f.cases.map(\.croppedShape), [[16, 12, 8], [24, 20, 12], [18, 16, 8]])
        for (c, expected) in zip(f.cases, [[0.7, 0.7, 5], [0.7, 0.7, 3], [0.7, 0.7, 5]]) {
            for a in 0..<3 { XCTAssertEqual(c.spacing[a], expected[a], accuracy: 1e-6) }
        }
        XCTAssertEqual(f.medianSpacing[2], 5, accuracy: 1e-6)
        XCTAssertEqual(f.medianCroppedShape, [18, 16, 8])
        XCTAssertEqual(f.anisotropy, 5 / 0.7, accuracy: 1e-4)
        // Foreground (label > 0) intensities are all 10.
        XCTAssertEqual(f.intensities[0].mean, 10, accuracy: 1e-9)
        XCTAssertEqual(f.intensities[0].std, 0, accuracy: 1e-9)
        // Class 1: 64 voxels per case over the cropped volumes 1536 + 5760 + 2304.
        XCTAssertEqual(f.classFractions["1"]!, 192.0 / 9600.0, accuracy: 1e-9)
        XCTAssertEqual(f.classFractions["0"]!, 1 - 192.0 / 9600.0, accuracy: 1e-9)
    }

    func fingerprint(spacings: [[Double]], shape: [Int]) -> DatasetFingerprint {
        let plan = PreprocessingPlan(targetSpacing: [1, 1, 1], normalization: [.zscore(nonZeroOnly: false)], channelNames: ["MR"])
        return DatasetFingerprint(cases: spacings.enumerated().map { .init(name: "c\($0.offset)", croppedShape: shape, spacing: $0.element) },
                                  intensities: [], classFractions: [:], classNames: ["background", "fg"], channelNames: ["MR"], preprocessing: plan)
    }

    func testIsotropicPlanIsTheCubicUNet() {
        let f = fingerprint(spacings: Array(repeating: [1, 1, 1], count: 4), shape: [64, 64, 64])
        let (target, reason) = ExperimentPlanner.targetSpacing(f)
        XCTAssertEqual(target, [1, 1, 1])
        XCTAssertEqual(reason, "median spacing")
        // 64 -> 32 -> 16 -> 8 -> 4: four poolings of every axis, kernels 3: today's default network.
        let (strides, kernels) = ExperimentPlanner.topology(patch: [64, 64, 64], spacing: [1, 1, 1], maxStages: 5)
        XCTAssertEqual(strides, Array(repeating: [2, 2, 2], count: 4))
        XCTAssertEqual(kernels, Array(repeating: [3, 3, 3], count: 5))
        let shapes = ExperimentPlanner.shapes(median: [64, 64, 64], spacing: [1, 1, 1], maxStages: 5, base: 16, cap: 256, maxPatch: 128)
        XCTAssertEqual(shapes[0].patch, [64, 64, 64])
        XCTAssertEqual(shapes[0].widths, [16, 32, 64, 128, 256])
        // The next candidate shrinks one axis by its divisor (16).
        XCTAssertEqual(shapes[1].patch, [48, 64, 64])
    }

    func testAnisotropicPlanPoolsTheThickAxisLater() {
        // 0.7 x 0.7 x 5 mm, one case at 3 mm; 256 x 256 x 20 voxels (i, j, k).
        let f = fingerprint(spacings: [[0.7, 0.7, 3]] + Array(repeating: [0.7, 0.7, 5], count: 4), shape: [256, 256, 20])
        let (target, _) = ExperimentPlanner.targetSpacing(f)
        // 5 > 3 x 0.7 and 20 x 3 < 256: the thick axis takes its 10th percentile, 3 + 0.4 x (5 - 3).
        XCTAssertEqual(target[0], 0.7, accuracy: 1e-12)
        XCTAssertEqual(target[1], 0.7, accuracy: 1e-12)
        XCTAssertEqual(target[2], 3.8, accuracy: 1e-12)
        // Tensor order (D, H, W) = (k, j, i). D is 5.4 x the finest: kernel 1, not pooled until the
        // in-plane spacing reaches 2.8 mm (3.8 / 2.8 < 2), then pooled with the others.
        let (strides, kernels) = ExperimentPlanner.topology(patch: [20, 160, 160], spacing: [3.8, 0.7, 0.7], maxStages: 5)
        XCTAssertEqual(strides, [[1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2]])
        XCTAssertEqual(kernels, [[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]])
        var config = UNetConfig(widths: [16, 32, 64, 128, 256], strides: strides, kernels: kernels)
        XCTAssertEqual(config.divisors, [4, 16, 16])
        config.deepSupervision = true
        XCTAssertTrue(config.topologyProblems().isEmpty)
    }

    func testAnisotropicSpacingWithManySlicesKeepsTheMedian() {
        // 5 mm but 200 slices: not "few slices", so nnU-Net keeps the median.
        let f = fingerprint(spacings: [[0.7, 0.7, 3]] + Array(repeating: [0.7, 0.7, 5], count: 4), shape: [256, 256, 200])
        XCTAssertEqual(ExperimentPlanner.targetSpacing(f).spacing[2], 5, accuracy: 1e-12)
    }

    func testPerAxisNetworkShapesAndDefaultEquivalence() throws {
        let strides: [[Int]] = [[1, 2, 2], [2, 2, 2]]
        let net = try UNet(inChannels: 1, numClasses: 3, config: UNetConfig(widths: [4, 8, 16], strides: strides, kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]]))
        let out = try net(Tensor.randn([1, 1, 4, 8, 8]))
        XCTAssertEqual(out.shape, [1, 3, 4, 8, 8])
        // Explicit all-2 strides and all-3 kernels build the same network as the defaults.
        try Runtime.manualSeed(7)
        let a = try UNet(inChannels: 1, numClasses: 2, config: UNetConfig(widths: [4, 8, 16]))
        try Runtime.manualSeed(7)
        let b = try UNet(inChannels: 1, numClasses: 2, config: UNetConfig(widths: [4, 8, 16], strides: [[2, 2, 2], [2, 2, 2]],
                                                                         kernels: Array(repeating: [3, 3, 3], count: 3)))
        let x = try Tensor.randn([1, 1, 8, 8, 8])
        let difference: Double = try (a(x) - b(x)).abs().max().item()
        XCTAssertEqual(difference, 0)
    }

    func testMeasuredPlanFitsItsBudget() throws {
        let cases = (0..<3).map { n in
            plannerCase("c\(n)", shape: [32, 32, 16], spacing: [1, 1, 2], box: ([0, 0, 0], [32, 32, 16]), labelBox: ([8, 8, 4], [20, 20, 10]), channels: 2)
        }
        let f = try DatasetFingerprint.make(cases: cases, channelNames: ["T1", "T2"], classNames: ["background", "fg"])
        let budget = PlanBudget(device: "cpu", memoryBytes: 40_000_000)
        var base = TrainingConfig()
        base.iterations = 10
        let plan = try ExperimentPlanner.plan(fingerprint: f, method: "supervised", budget: budget, paired: true, base: base)
        XCTAssertLessThanOrEqual(plan.peakBytes, budget.memoryBytes)
        XCTAssertTrue(plan.candidates.contains { $0.how == "measured" && $0.fits })
        // Real training steps with the plan stay under the budget.
        var config = base
        config.method = "supervised"
        plan.apply(to: &config)
        try config.validate()
        let m = try PlanMeasurement.measure(config: config, modalityNames: ["T1", "T2"], numClasses: 2, paired: true, device: .cpu, steps: 3)
        XCTAssertGreaterThan(m.peakBytes, 0)
        XCTAssertLessThanOrEqual(m.peakBytes, budget.memoryBytes)
    }
}
