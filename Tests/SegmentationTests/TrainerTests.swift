import Essentials
import Foundation
import XCTest
@testable import Segmentation
@testable import Torch
import Volumes

/// A tiny synthetic two-modality case: a cube (class 1) inside a shell (class 2); modality 0 shows
/// the cube, modality 1 the shell, both noisy.
func syntheticCase(_ name: String, size: Int = 16, seed: UInt64, labeled: Bool = true) throws -> PreparedCase {
    var rng = SeededGenerator(seed: seed, stream: [])
    let n = size
    var label = [Int64](repeating: 0, count: n * n * n)
    var images = [Float](repeating: 0, count: 2 * n * n * n)
    let c = Double(n) / 2 + Double(rng.below(3)) - 1
    for z in 0..<n { for y in 0..<n { for x in 0..<n {
        let d = max(abs(Double(x) - c), abs(Double(y) - c), abs(Double(z) - c))
        let i = (z * n + y) * n + x
        label[i] = d < Double(n) / 6 ? 1 : (d < Double(n) / 3.5 ? 2 : 0)
        images[i] = (label[i] == 1 ? 1 : 0) + Float(rng.unit() - 0.5) * 0.6
        images[n * n * n + i] = (label[i] == 2 ? 1 : 0) + Float(rng.unit() - 0.5) * 0.6
    } } }
    return PreparedCase(name: name, images: try Tensor(images, shape: [2, n, n, n]),
                        label: labeled ? try Tensor(label, shape: [n, n, n]) : nil)
}

final class TrainerTests: XCTestCase {
    func tinyConfig(_ method: String, iterations: Int) -> TrainingConfig { TinyTraining.config(method, iterations: iterations) }
    func data() throws -> TrainingData { try TinyTraining.data() }
    func temporaryRun() throws -> URL { try TinyTraining.temporaryRun() }
    func trainLosses(_ run: URL) throws -> [Int: [String: Double]] { try TinyTraining.trainLosses(run) }

    func testResumeContinuesBitForBit() throws {
        for method in ["cmc", "mean-teacher"] {
            let config = tinyConfig(method, iterations: 6)
            let straight = try temporaryRun(), resumed = try temporaryRun()
            defer { try? FileManager.default.removeItem(at: straight); try? FileManager.default.removeItem(at: resumed) }
            let a = try Trainer(config: config, data: data(), run: straight, resume: false, output: { _ in })
            _ = try a.train()
            let b1 = try Trainer(config: config, data: data(), run: resumed, resume: false, output: { _ in })
            XCTAssertThrowsError(try b1.train(stoppingAt: 4)) { XCTAssertTrue($0 is TrainingInterrupted) }
            let b2 = try Trainer(config: config, data: data(), run: resumed, resume: true, output: { _ in })
            XCTAssertEqual(b2.startIteration, 4)
            _ = try b2.train()
            let la = try trainLosses(straight), lb = try trainLosses(resumed)
            XCTAssertEqual(Set(la.keys), Set(1...6), method)
            XCTAssertEqual(Set(lb.keys), Set(1...6), method)
            for it in 1...6 {
                for (name, value) in la[it]! { XCTAssertEqual(lb[it]![name]!, value, accuracy: 1e-6, "\(method) it \(it) \(name)") }
            }
            let wa = try a.method.model.stateDict(), wb = try b2.method.model.stateDict()
            for ((name, x), (_, y)) in zip(wa, wb) where x.dtype == .float32 {
                XCTAssertEqual(try x.toArray(Float.self), try y.toArray(Float.self), "\(method) \(name)")
            }
        }
    }

    func testCheckpointsAreLoadableAndLogIsComplete() throws {
        let run = try temporaryRun()
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: tinyConfig("supervised", iterations: 3), data: data(), run: run, resume: false, output: { _ in })
        let summary = try trainer.train()
        XCTAssertEqual(summary.iterations, 3)
        let last = try Checkpoint.read(trainer.lastCheckpoint)
        XCTAssertEqual(last.iteration, 3)
        XCTAssertEqual(last.metadata["method"], "supervised")
        XCTAssertTrue(last.model.map(\.0).contains("encoder.stages.0.conv1.conv.weight"))
        XCTAssertFalse(last.optimizer.isEmpty)
        XCTAssertNoThrow(try Checkpoint.read(trainer.bestCheckpoint))
        // A partial temporary file left by a killed writer does not disturb the checkpoint.
        let partial = trainer.checkpointDirectory.appendingPathComponent(".last.safetensors.tmp-99999-1")
        try Data([1, 2, 3]).write(to: partial)
        XCTAssertEqual(try Checkpoint.read(trainer.lastCheckpoint).iteration, 3)
        XCTAssertThrowsError(try Checkpoint.read(partial))
    }

    func testUnknownConfigKeyIsAnError() throws {
        XCTAssertThrowsError(try TrainingConfig.overriding(["method": "cmc", "learningRte": 0.1])) {
            XCTAssertTrue(String(describing: $0).contains("learningRte"))
        }
        XCTAssertThrowsError(try TrainingConfig.overriding(["cmc": ["lambdaCSX": 0.1]])) {
            XCTAssertTrue(String(describing: $0).contains("cmc.lambdaCSX"))
        }
        XCTAssertThrowsError(try TrainingConfig.overriding(["iterations": "many"])) {
            XCTAssertTrue(String(describing: $0).contains("iterations"))
        }
        let ok = try TrainingConfig.overriding(["method": "cml", "iterations": 7, "cmc": ["lambdaCSC": 0.3]])
        XCTAssertEqual(ok.method, "cml")
        XCTAssertEqual(ok.iterations, 7)
        XCTAssertEqual(ok.settings(CMCSettings.self).cmc.lambdaCSC, 0.3)
        XCTAssertEqual(ok.settings(CMCSettings.self).cmc.lambdaCAC, 0.1)
        XCTAssertEqual(ok.learningRate, 1e-3)
    }

    /// `diceIncludeBackground` reaches the supervised loss of every method (default: included).
    func testDiceBackgroundSettingReachesEveryMethod() throws {
        for name in ["supervised", "mean-teacher", "cmc", "cps", "cml"] {
            var config = TrainingConfig()
            config.method = name
            config.unet = UNetConfig(widths: [4, 8])
            let standard = try MethodRegistry.make(config: config, modalityNames: ["a", "b"], numClasses: 3)
            XCTAssertEqual((standard as? SupervisedLossOwner)?.supervised.dice.includeBackground, true, name)
            config.diceIncludeBackground = false
            let foreground = try MethodRegistry.make(config: config, modalityNames: ["a", "b"], numClasses: 3)
            XCTAssertEqual((foreground as? SupervisedLossOwner)?.supervised.dice.includeBackground, false, name)
        }
    }
}

final class AugmentationTests: XCTestCase {
    func testGaussianBlurKeepsMeanAndSmooths() throws {
        var values = [Float](repeating: 0, count: 9 * 9 * 9)
        values[4 * 81 + 4 * 9 + 4] = 1
        let x = try Tensor(values, shape: [1, 9, 9, 9])
        let blurred = try gaussianBlur(x, sigma: 1)
        XCTAssertEqual(try blurred.sum().item(), 1, accuracy: 1e-5)           // an impulse far from the border keeps its mass
        XCTAssertLessThan(try blurred.max().item(), 0.1)                      // and spreads: 1 / (2 pi)^(3/2) = 0.063 at the centre
        XCTAssertEqual(try blurred.max().item(), 0.0635, accuracy: 0.005)
    }

    func testSpatialAugmentationsMoveImageAndLabelTogether() throws {
        var aug = Augmentation.none
        aug.rot90Probability = 1
        aug.elasticProbability = 1
        aug.affineProbability = 1
        aug.flipProbability = 0.5
        for seed in 0..<4 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed, stream: [])
            // The image equals the label, so after any shared spatial transform they still agree
            // (nearest sampling of the label, linear of the image: compare where the image is exact).
            let label = try Tensor((0..<(16 * 16 * 16)).map { i -> Int64 in
                let (z, y, x) = (i / 256, (i / 16) % 16, i % 16)
                return (4..<12).contains(z) && (3..<9).contains(y) && (5..<13).contains(x) ? 1 : 0
            }, shape: [16, 16, 16])
            let image = try label.to(.float32).unsqueeze(dim: 0)
            let (xa, ya) = try aug(image: image, label: label, rng: &rng)
            let agree = try xa.squeeze(dim: 0).round().eq(ya!.to(.float32)).to(.float32).mean().item()
            XCTAssertGreaterThan(agree, 0.97, "seed \(seed)")
            XCTAssertEqual(ya!.shape, [16, 16, 16])
        }
    }
}

final class MisalignmentAugmentationTests: XCTestCase {
    /// Channel 0 and the label never move; channel 1 moves by at most the requested millimetres.
    func testOnlyNonReferenceChannelsMoveByAtMostTheRequestedDistance() throws {
        var aug = Augmentation.none
        aug.misalignProbability = 1
        aug.misalignMM = 4
        aug.spacing = [2, 1, 1]                                   // D, H, W in mm
        let n = 16
        var blob = [Float](repeating: 0, count: n * n * n)
        for z in 6..<10 { for y in 6..<10 { for x in 6..<10 { blob[(z * n + y) * n + x] = 1 } } }
        let image = try Tensor(blob + blob, shape: [2, n, n, n])
        let label = try Tensor(blob.map { Int64($0) }, shape: [n, n, n])
        func centroid(_ t: Tensor) throws -> [Double] {
            let v = try t.toArray(Float.self)
            var s = [0.0, 0.0, 0.0], w = 0.0
            for (i, x) in v.enumerated() where x > 0 { s[0] += Double(i / (n * n)) * Double(x); s[1] += Double((i / n) % n) * Double(x); s[2] += Double(i % n) * Double(x); w += Double(x) }
            return s.map { $0 / w }
        }
        var moved = 0
        for seed in 0..<6 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed, stream: [])
            let (x, y) = try aug(image: image, label: label, rng: &rng)
            XCTAssertEqual(try x.narrow(dim: 0, start: 0, length: 1).toArray(Float.self), blob)
            XCTAssertEqual(try y!.toArray(Int64.self), blob.map { Int64($0) })
            let c0 = try centroid(x.narrow(dim: 0, start: 0, length: 1)), c1 = try centroid(x.narrow(dim: 0, start: 1, length: 1))
            let mm = ((c1[0] - c0[0]) * 2 * (c1[0] - c0[0]) * 2 + (c1[1] - c0[1]) * (c1[1] - c0[1]) + (c1[2] - c0[2]) * (c1[2] - c0[2])).squareRoot()
            XCTAssertLessThanOrEqual(mm, 4 * 3.0.squareRoot() + 0.5, "seed \(seed)")
            if mm > 0.5 { moved += 1 }
        }
        XCTAssertGreaterThan(moved, 3)
    }
}

final class RunDescriptionTests: XCTestCase {
    /// A run written before a setting existed still loads; the setting takes its default.
    func testOlderRunWithoutANewSettingLoads() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("concord-rd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let plan = PreprocessingPlan(targetSpacing: [1, 1, 1], normalization: [.zscore(nonZeroOnly: false)])
        var config = TrainingConfig()
        config.iterations = 17
        try RunDescription(concordVersion: "test", dataset: "/data", modalityNames: ["A"], classNames: [0: "bg", 1: "fg"], paired: true,
                           fileEnding: ".nii.gz", plan: plan, config: config).write(to: run)
        let url = RunDescription.url(in: run)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var settings = try XCTUnwrap(object["config"] as? [String: Any])
        var augmentation = try XCTUnwrap(settings["augmentation"] as? [String: Any])
        augmentation["misalignProbability"] = nil
        settings["augmentation"] = augmentation
        settings["gradientClip"] = nil
        object["config"] = settings
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        let loaded = try RunDescription.read(from: run)
        XCTAssertEqual(loaded.config.iterations, 17)
        XCTAssertEqual(loaded.config.gradientClip, TrainingConfig().gradientClip)
        XCTAssertEqual(loaded.config.augmentation.misalignProbability, 0)
        XCTAssertEqual(loaded.numClasses, 2)
    }
}
