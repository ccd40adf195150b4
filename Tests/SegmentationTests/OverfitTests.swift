import Datasets
import Foundation
import Volumes
import XCTest
@testable import Segmentation
@testable import Torch

/// Each method must be able to fit a single tiny phantom case (Dice > 0.9): a method that cannot
/// overfit one case has a bug in its wiring, whatever its losses say.
final class OverfitTests: XCTestCase {
    func overfit(_ method: String, iterations: Int, configure: (inout TrainingConfig) -> Void = { _ in }) throws -> Double {
        var config = TrainingConfig()
        config.method = method
        config.iterations = iterations
        config.patch = [12, 24, 24]
        config.unet = UNetConfig(widths: [8, 16, 32])
        config.labeledBatch = 2
        config.unlabeledBatch = 2
        config.learningRate = 1e-2
        config.schedule = .constant
        config.augmentation = .none
        config.validationInterval = iterations
        config.checkpointInterval = iterations
        config.logInterval = iterations
        config.weightDecay = 0
        // A short teacher memory: the check is the wiring, not the EMA's long-run smoothing.
        var teacherSettings = config.settings(MeanTeacherSettings.self)
        teacherSettings.meanTeacher.emaDecay = 0.9
        config.setSettings(teacherSettings)
        configure(&config)
        let c = try phantomCase(index: 0)
        var unlabeled = try phantomCase(index: 1)
        unlabeled.label = nil
        let data = TrainingData(modalityNames: ["bSSFP", "LGE"], numClasses: 4, paired: true, labeled: [c],
                                unlabeled: [unlabeled], validation: [c])
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("concord-overfit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: config, data: data, run: run, resume: false, output: { _ in })
        _ = try trainer.train()
        let heads = try validate(method: trainer.method, cases: [c], inference: SlidingWindowInference(patch: config.patch), numClasses: 4)
        return try XCTUnwrap(heads.last ?? nil).meanValue
    }

    /// A 24 x 24 x 12 two-modality phantom case (LV, myocardium, RV), channels z-scored.
    func phantomCase(index: Int) throws -> PreparedCase {
        var config = PhantomConfig()
        config.size = 24
        let p = Phantom.generateCase(index: index, seed: 5, config: config)
        let channels = try p.channels.map { try ChannelNormalization.zscore(nonZeroOnly: false).apply(to: $0) }
        return try PreparedCase(name: p.name, channels: channels, present: [true, true], label: p.label)
    }

    func testSupervisedOverfits() throws { XCTAssertGreaterThan(try overfit("supervised", iterations: 100), 0.9) }
    func testMeanTeacherOverfits() throws { XCTAssertGreaterThan(try overfit("mean-teacher", iterations: 100), 0.9) }
    func testCPSOverfits() throws { XCTAssertGreaterThan(try overfit("cps", iterations: 100), 0.9) }
    func testCMCOverfits() throws { XCTAssertGreaterThan(try overfit("cmc", iterations: 60), 0.9) }
    func testSemiCMLOverfits() throws { XCTAssertGreaterThan(try overfit("cml", iterations: 60), 0.9) }

    /// Deep supervision needs 4 stages (the lowest decoder output is not supervised), hence a
    /// patch depth of 16 (the 12-slice case is zero-padded).
    func testSupervisedWithDeepSupervisionOverfits() throws {
        XCTAssertGreaterThan(try overfit("supervised", iterations: 100) {
            $0.unet = UNetConfig(widths: [8, 16, 32, 64], deepSupervision: true)
            $0.patch = [16, 24, 24]
        }, 0.9)
    }

    /// The small ViT-3D encoder from scratch (embed 48, depth 2, 4 heads, patch 8; block 0 windowed,
    /// block 1 global) under the U-Net decoder, on a cubic 24^3 patch (a 3^3 token grid).
    func testSupervisedViTOverfits() throws {
        var vit = ViTConfig.small(imageSize: 24)
        vit.windowSize = 2
        vit.globalAttention = [1]
        XCTAssertGreaterThan(try overfit("supervised", iterations: 100) {
            $0.unet = UNetConfig(widths: [8, 16, 32, 64], encoder: .vit, vit: vit)
            $0.patch = [24, 24, 24]
            $0.learningRate = 3e-3
        }, 0.8)
    }
}

/// The slice-wise variant: a 2D U-Net per modality trained on depth-1 patches of 3D volumes.
final class SliceWiseTests: XCTestCase {
    func testSemiCML2DTrainsAndPredictsSlices() throws {
        var config = TrainingConfig()
        config.method = "cml"
        config.iterations = 40
        config.unet = UNetConfig(rank: 2, widths: [8, 16, 32])
        config.patch = [24, 24]
        config.labeledBatch = 4
        config.unlabeledBatch = 2
        config.learningRate = 1e-2
        config.schedule = .constant
        config.augmentation = .none
        config.validationInterval = 40
        config.logInterval = 40
        config.checkpointInterval = 40
        XCTAssertEqual(config.volumePatch, [1, 24, 24])
        let c = try syntheticCase("slices", size: 24, seed: 3)
        let data = TrainingData(modalityNames: ["A", "B"], numClasses: 3, paired: true, labeled: [c],
                                unlabeled: [try syntheticCase("u", size: 24, seed: 4, labeled: false)], validation: [c])
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("concord-2d-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: config, data: data, run: run, resume: false, output: { _ in })
        _ = try trainer.train()
        let net = (trainer.method as! SemiCMLMethod).ensemble.networks[0]
        XCTAssertEqual((net.encoder as! UNetEncoder).stages[0].conv1.conv.weight.value.shape, [8, 1, 3, 3])   // really 2D
        let heads = try validate(method: trainer.method, cases: [c], inference: SlidingWindowInference(patch: config.volumePatch), numClasses: 3)
        XCTAssertGreaterThan(try XCTUnwrap(heads.last ?? nil).meanValue, 0.8)
        var bad = config
        bad.method = "cmc"
        XCTAssertThrowsError(try bad.validate())
    }
}
