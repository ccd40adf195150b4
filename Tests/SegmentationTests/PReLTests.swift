import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// A training context without a trainer: validations return scripted per-head Dice and are handed
/// to the method's `didValidate`, as the trainer's are.
final class ScriptedContext: MethodTrainingContext {
    let checkpointDirectory: URL
    let modalityNames: [String]
    var events: [String] = []
    var validatedAt: [Int] = []
    let method: SegmentationMethod
    let dice: (Int) -> [[Int: Double]?]

    init(method: SegmentationMethod, modalityNames: [String], dice: @escaping (Int) -> [[Int: Double]?]) throws {
        checkpointDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("concord-prel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: checkpointDirectory, withIntermediateDirectories: true)
        self.method = method; self.modalityNames = modalityNames; self.dice = dice
    }
    deinit { try? FileManager.default.removeItem(at: checkpointDirectory) }

    func event(iteration: Int, _ message: String) { events.append(message) }
    func validateNow(iteration: Int) throws -> [[Int: Double]?] {
        validatedAt.append(iteration)
        let heads = dice(iteration)
        try method.didValidate(iteration: iteration, heads: heads, context: self)
        return heads
    }
}

final class PReLTests: XCTestCase {
    let tiny = UNetConfig(widths: [4, 8, 16], dropout: 0.1)

    func state(_ module: Module) throws -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: try module.stateDict().filter { $0.1.dtype == .float32 }.map { ($0.0, try $0.1.toArray(Float.self)) })
    }

    func perturb(_ module: Module) throws {
        try withNoGrad { for p in module.parameters() { try p.value.add_(Tensor.randn(p.value.shape) * 0.1) } }
    }

    /// Dice per validation iteration: modality b is the better one; its best three snapshots are at
    /// iterations 4, 8 and 10 (not the last three), so the average must pick by Dice.
    let scripted: [Int: (Double, Double)] = [2: (0.50, 0.60), 4: (0.55, 0.80), 6: (0.52, 0.62), 8: (0.58, 0.75), 10: (0.60, 0.78)]

    func testTeacherIsTheBetterModalityAveragedOverItsBestSnapshots() throws {
        try Runtime.manualSeed(21)
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny, stage1Iterations: 10,
                                       teacherCheckpoints: 3, validationInterval: 2)
        XCTAssertEqual(method.forcedSnapshotIterations, [])   // five periodic validations suffice
        let context = try ScriptedContext(method: method, modalityNames: ["a", "b"]) { [scripted] it in
            let d = scripted[it]!
            return [[1: d.0], [1: d.1], nil, nil]
        }
        var snapshots: [Int: [String: [Float]]] = [:]
        for it in [2, 4, 6, 8, 10] {
            try perturb(method.model)   // the weights move between validations
            snapshots[it] = try state(method.ensemble.networks[1])
            _ = try context.validateNow(iteration: it)
        }
        for it in 0..<10 { try method.willStartIteration(it, context: context) }
        XCTAssertNil(method.prel, "no switch before stage 1 ends")
        try method.willStartIteration(10, context: context)
        let prel = try XCTUnwrap(method.prel)
        XCTAssertEqual(prel.teacher, 1)
        XCTAssertEqual(prel.student, 0)
        let teacher = try state(prel.network)
        for (name, values) in teacher {
            let expected = (0..<values.count).map { i in [4, 8, 10].map { snapshots[$0]![name]![i] }.reduce(0, +) / 3 }
            for (x, y) in zip(values, expected) { XCTAssertEqual(x, y, accuracy: 1e-6, name) }
        }
        let message = try XCTUnwrap(context.events.last)
        XCTAssertTrue(message.contains("teacher b"), message)
        XCTAssertTrue(message.contains("averaged 3 checkpoints"), message)
        for it in [4, 8, 10] { XCTAssertTrue(message.contains("iteration \(it) (Dice"), message) }
        XCTAssertFalse(message.contains("iteration 2 (Dice"), message)
        // Only the student trains from now on.
        XCTAssertEqual(method.trainableParameters.count, method.ensemble.networks[0].parameters().count)
    }

    func testSnapshotValidationsAreForcedWhenTheIntervalGivesTooFew() throws {
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny, stage1Iterations: 180,
                                       teacherCheckpoints: 3, validationInterval: 100)
        // Only iteration 100 would be validated in stage 1: 120, 150 and 180 are added.
        XCTAssertEqual(method.forcedSnapshotIterations, [120, 150, 180])
        let context = try ScriptedContext(method: method, modalityNames: ["a", "b"]) { it in [[1: 0.5 + Double(it) / 1000], [1: 0.4], nil, nil] }
        _ = try context.validateNow(iteration: 100)   // the trainer's periodic validation
        for it in 0...180 { try method.willStartIteration(it, context: context) }
        XCTAssertEqual(context.validatedAt, [100, 120, 150, 180])
        XCTAssertEqual(method.prel?.teacher, 0)
        let message = try XCTUnwrap(context.events.last)
        XCTAssertTrue(message.contains("averaged 3 checkpoints"), message)
        XCTAssertFalse(message.contains("iteration 100 (Dice"), message)
    }

    func testFewerSnapshotsThanAskedAreSaid() throws {
        // No interval known: no forced validations; one snapshot exists at the switch.
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny, stage1Iterations: 10, teacherCheckpoints: 3)
        let context = try ScriptedContext(method: method, modalityNames: ["a", "b"]) { _ in [[1: 0.3], [1: 0.4], nil, nil] }
        _ = try context.validateNow(iteration: 5)
        try method.willStartIteration(10, context: context)
        let message = try XCTUnwrap(context.events.last)
        XCTAssertTrue(message.contains("only 1 of 3 checkpoints"), message)
        XCTAssertTrue(message.contains("iteration 5 (Dice 0.4000)"), message)
    }

    // MARK: with the trainer

    func config(iterations: Int) -> TrainingConfig {
        var config = TinyTraining.config("cml", iterations: iterations)
        var settings = config.settings(SemiCMLSettings.self)
        settings.cmlStage1Iterations = 4
        config.setSettings(settings)
        return config
    }

    func data() throws -> TrainingData {
        TrainingData(modalityNames: ["A", "B"], numClasses: 3, paired: true,
                     labeled: [try syntheticCase("l0", seed: 1)],
                     unlabeled: [try syntheticCase("u0", seed: 2, labeled: false), try syntheticCase("u1", seed: 3, labeled: false)],
                     validation: [try syntheticCase("v0", seed: 4)])
    }

    func temporaryRun() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func trainLosses(_ run: URL) throws -> [Int: [String: Double]] {
        var out: [Int: [String: Double]] = [:]
        for o in try logObjects(run) where o["kind"] as? String == "train" { out[o["iteration"] as! Int] = o["losses"] as? [String: Double] }
        return out
    }

    func logObjects(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testStageSwitchHappensAtTheConfiguredIterationWithTheBetterModalityAsTeacher() throws {
        let helper = self
        let run = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: run) }
        let trainer = try Trainer(config: config(iterations: 6), data: helper.data(), run: run, resume: false, output: { _ in })
        _ = try trainer.train()
        let log = try logObjects(run)
        let switches = log.filter { ($0["message"] as? String)?.hasPrefix("PReL from iteration") == true }
        XCTAssertEqual(switches.count, 1)
        XCTAssertEqual(switches.first?["iteration"] as? Int, 4)
        // Stage 1 steps (iterations 1-4) carry the cross-modal terms, stage 2 steps the pseudo-label terms.
        let losses = try helper.trainLosses(run)
        for it in 1...4 { XCTAssertNotNil(losses[it]?["mse"], "it \(it)") }
        for it in 5...6 { XCTAssertNotNil(losses[it]?["pseudo_ce_dice"], "it \(it)"); XCTAssertNil(losses[it]?["mse"]) }
        // Interval 3, stage 1 of 4, three snapshots wanted: validations at 2 and 4 are forced, 3 is periodic.
        let stage1Validations: [(Int, Double, Double)] = log.filter { $0["kind"] as? String == "validation" }.compactMap { o -> (Int, Double, Double)? in
            guard let it = o["iteration"] as? Int, it <= 4, let d = o["dice"] as? [String: Any],
                  let a = d["head_A"] as? Double, let b = d["head_B"] as? Double else { return nil }
            return (it, a, b)
        }
        XCTAssertEqual(stage1Validations.map { $0.0 }, [2, 3, 4])
        let bestA = stage1Validations.map { $0.1 }.max()!, bestB = stage1Validations.map { $0.2 }.max()!
        let method = try XCTUnwrap(trainer.method as? SemiCMLMethod)
        XCTAssertEqual(method.prel?.teacher, bestB > bestA ? 1 : 0)
        XCTAssertTrue((switches.first?["message"] as? String)?.contains("averaged 3 checkpoints") == true, "\(switches)")
    }

    func testResumeInsideStageTwoEqualsAnUninterruptedRun() throws {
        let helper = self
        let straight = try helper.temporaryRun(), resumed = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: straight); try? FileManager.default.removeItem(at: resumed) }
        let c = config(iterations: 7)
        let a = try Trainer(config: c, data: helper.data(), run: straight, resume: false, output: { _ in })
        _ = try a.train()
        let b1 = try Trainer(config: c, data: helper.data(), run: resumed, resume: false, output: { _ in })
        XCTAssertThrowsError(try b1.train(stoppingAt: 6)) { XCTAssertTrue($0 is TrainingInterrupted) }
        let b2 = try Trainer(config: c, data: helper.data(), run: resumed, resume: true, output: { _ in })
        XCTAssertEqual(b2.startIteration, 6)
        XCTAssertNotNil((b2.method as? SemiCMLMethod)?.prel, "the resumed run is in stage 2")
        _ = try b2.train()
        let wa = try state(a.method.model), wb = try state(b2.method.model)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys))
        for (name, x) in wa { XCTAssertEqual(x, wb[name]!, name) }   // bit-identical
        let ta = try state((a.method as! SemiCMLMethod).prel!.network), tb = try state((b2.method as! SemiCMLMethod).prel!.network)
        for (name, x) in ta { XCTAssertEqual(x, tb[name]!, "teacher \(name)") }
    }
}
