import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// CMC's final answer with `cmcFusion: validated`: per class, the branches weighted by their
/// validation Dice on that class.
final class CMCFusionTests: XCTestCase {
    func testWeightsByHand() {
        // Branch 0 (T1-like) blind to class 3; class 2 found by neither; class 1 by both.
        let dice: [[Int: Double]] = [[1: 0.9, 2: 0, 3: 0], [1: 0.3, 2: 0, 3: 0.6]]
        let w = CMCMethod.fusionWeights(branchDice: dice, present: [0, 1], numClasses: 4)
        let expected: [[Double]] = [[0.5, 0.75, 0.5, 0], [0.5, 0.25, 0.5, 1]]
        for j in 0..<2 { for k in 0..<4 { XCTAssertEqual(w[j][k], expected[j][k], accuracy: 1e-12, "branch \(j) class \(k)") } }
        // One branch present (the other modality missing): it takes every class.
        let alone = CMCMethod.fusionWeights(branchDice: dice, present: [0], numClasses: 4)
        XCTAssertEqual(alone, [[1, 1, 1, 1]])
        // A class without a score is weighted equally.
        XCTAssertEqual(CMCMethod.fusionWeights(branchDice: [[1: 0.5], [:]], present: [0, 1], numClasses: 3),
                       [[0.5, 1, 0.5], [0.5, 0, 0.5]])
    }

    func testWeightedFusionByHandKeepsAClassOneBranchIsBlindTo() throws {
        // One voxel, classes background / WM / lesion. The FLAIR-like branch sees a lesion, the
        // T1-like branch is confident in WM. The mean loses the lesion; the validated weights keep it.
        let t1: [Float] = [0.01, 0.98, 0.01], flair: [Float] = [0.05, 0.15, 0.80]
        let p = [try Tensor(t1, shape: [1, 3, 1, 1, 1]), try Tensor(flair, shape: [1, 3, 1, 1, 1])]
        let weights: [[Double]] = [[0.5, 0.5, 0], [0.5, 0.5, 1]]
        let fused = try CMCMethod.weightedFusion(p, weights: weights).toArray(Float.self)
        let raw = (0..<3).map { k in weights[0][k] * Double(t1[k]) + weights[1][k] * Double(flair[k]) }
        let total = raw.reduce(0, +)
        for k in 0..<3 { XCTAssertEqual(Double(fused[k]), raw[k] / total, accuracy: 1e-6) }
        XCTAssertEqual(fused.indices.max { fused[$0] < fused[$1] }, 2)
        let meanProbabilities = try mean(of: p).toArray(Float.self)
        XCTAssertEqual(meanProbabilities.indices.max { meanProbabilities[$0] < meanProbabilities[$1] }, 1)
    }

    func testPredictUsesTheValidatedWeightsAndCheckpointStateRoundTrips() throws {
        try Runtime.manualSeed(3)
        let unet = UNetConfig(rank: 3, widths: [4, 8, 16], norm: .instance, dropout: 0)
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: unet))
        let method = CMCMethod(network: network, modalityNames: ["a", "b"], fusion: .validated)
        XCTAssertEqual(method.outputNames, ["a", "b", "weighted"])
        method.model.eval()
        let a = try Tensor.randn([1, 1, 8, 8, 8]), b = try Tensor.randn([1, 1, 8, 8, 8])
        // Before any validation: the mean.
        let before = try withNoGrad { try method.predict([a, b]) }
        XCTAssertEqual(try (before[2]! - mean(of: [before[0]!, before[1]!])).abs().max().item(), 0, accuracy: 1e-7)
        let dice: [[Int: Double]] = [[1: 0.8, 2: 0.1], [1: 0.2, 2: 0.7]]
        final class NoContext: MethodTrainingContext {
            var checkpointDirectory: URL { FileManager.default.temporaryDirectory }
            var modalityNames: [String] { ["a", "b"] }
            func event(iteration: Int, _ message: String) {}
            func validateNow(iteration: Int) throws -> [[Int: Double]?] { [] }
        }
        try method.didValidate(iteration: 1, heads: dice + [[1: 0.5, 2: 0.5]], context: NoContext())
        let heads = try withNoGrad { try method.predict([a, b]) }
        let expected = try CMCMethod.weightedFusion([heads[0]!, heads[1]!], weights: [[0.5, 0.8, 0.1 / 0.8], [0.5, 0.2, 0.7 / 0.8]])
        XCTAssertEqual(try (heads[2]! - expected).abs().max().item(), 0, accuracy: 1e-6)
        XCTAssertGreaterThan(try (heads[2]! - mean(of: [heads[0]!, heads[1]!])).abs().max().item(), 1e-3)
        // Saved and restored into a fresh method, the weights are the same.
        let state = try method.checkpointState()
        let restored = CMCMethod(network: network, modalityNames: ["a", "b"], fusion: .validated)
        try restored.restore(from: state)
        XCTAssertEqual(restored.branchDice, dice)
        // A damaged entry is an error naming it, not a silent mean.
        XCTAssertThrowsError(try restored.restore(from: MethodCheckpointState(metadata: ["cmc_branch_dice": "1:x"]))) {
            XCTAssertTrue("\($0)".contains("cmc_branch_dice"), "\($0)")
        }
        // With the mean (the default) the validation changes nothing.
        let plain = CMCMethod(network: network, modalityNames: ["a", "b"])
        try plain.didValidate(iteration: 1, heads: dice + [nil], context: NoContext())
        let plainHeads = try withNoGrad { try plain.predict([a, b]) }
        XCTAssertEqual(try (plainHeads[2]! - mean(of: [plainHeads[0]!, plainHeads[1]!])).abs().max().item(), 0, accuracy: 1e-7)
        XCTAssertEqual(plain.outputNames.last, "mean")
    }

    func testSettingIsReadAndTheBestCheckpointHoldsItsOwnValidation() throws {
        var config = try TrainingConfig.overriding(["method": "cmc", "cmcFusion": "validated"])
        XCTAssertEqual(config.settings(CMCSettings.self).cmcFusion, .validated)
        XCTAssertThrowsError(try TrainingConfig.overriding(["cmcFusion": "max"], source: "my.yaml")) {
            XCTAssertTrue("\($0)".contains("mean or validated"), "\($0)")
        }
        let tiny = TinyTraining.config("cmc", iterations: 3)
        config.iterations = tiny.iterations; config.patch = tiny.patch; config.unet = tiny.unet
        config.labeledBatch = 1; config.unlabeledBatch = 2; config.validationInterval = 3; config.checkpointInterval = 3
        let run = try TinyTraining.temporaryRun()
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: config, data: TinyTraining.data(), run: run, resume: false, output: { _ in })
        _ = try trainer.train()
        let method = try XCTUnwrap(trainer.method as? CMCMethod)
        let dice = try XCTUnwrap(method.branchDice)
        let best = try Checkpoint.read(trainer.bestCheckpoint)
        XCTAssertEqual(best.iteration, 3)
        let restored = try MethodRegistry.make(config: config, modalityNames: ["A", "B"], numClasses: 3) as! CMCMethod
        try restored.restore(from: MethodCheckpointState(metadata: best.metadata))
        XCTAssertEqual(restored.branchDice, dice)
        // The branch Dice logged at that validation are the ones kept.
        let log = try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let validation = try XCTUnwrap(log.last { $0["kind"] as? String == "validation" }?["dice"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(validation["head_A"] as? Double), dice[0].meanValue, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(validation["head_B"] as? Double), dice[1].meanValue, accuracy: 1e-9)
    }
}
