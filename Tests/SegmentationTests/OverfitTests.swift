import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Each method must be able to fit a single tiny case (Dice > 0.9): a method that cannot
/// overfit one case has a bug in its wiring, whatever its losses say.
final class OverfitTests: XCTestCase {
    func overfit(_ method: String, iterations: Int) throws -> Double {
        var config = TrainingConfig()
        config.method = method
        config.iterations = iterations
        config.patch = [16, 16, 16]
        config.unet = UNetConfig(widths: [8, 16, 32])
        config.labeledBatch = 2
        config.unlabeledBatch = 2
        config.learningRate = 1e-2
        config.schedule = "constant"
        config.augmentation = .none
        config.validationInterval = iterations
        config.checkpointInterval = iterations
        config.logInterval = iterations
        config.weightDecay = 0
        let c = try syntheticCase("one", seed: 7)
        let data = TrainingData(modalityNames: ["A", "B"], numClasses: 3, paired: true, labeled: [c],
                                unlabeled: [try syntheticCase("u", seed: 8, labeled: false)], validation: [c])
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("concord-overfit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: config, data: data, run: run, resume: false, output: { _ in })
        _ = try trainer.train()
        let heads = try validate(method: trainer.method, cases: [c], inference: SlidingWindowInference(patch: [16, 16, 16]), numClasses: 3)
        return try XCTUnwrap(heads.last ?? nil).meanValue
    }

    func testSupervisedOverfits() throws { XCTAssertGreaterThan(try overfit("supervised", iterations: 60), 0.9) }
    func testMeanTeacherOverfits() throws { XCTAssertGreaterThan(try overfit("mean-teacher", iterations: 60), 0.9) }
    func testCMCOverfits() throws { XCTAssertGreaterThan(try overfit("cmc", iterations: 60), 0.9) }
    func testSemiCMLOverfits() throws { XCTAssertGreaterThan(try overfit("cml", iterations: 60), 0.9) }
}
