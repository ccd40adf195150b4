import Datasets
import Foundation
import XCTest
@testable import Segmentation
@testable import Torch
import Volumes

/// A method that lives only in the test target: one 3x3x3 convolution on the early-fused
/// modalities, trained with cross-entropy scaled by its own setting. Its hooks count the
/// iterations it saw and the validations, and its checkpoint state carries the count, so resuming
/// and predicting can be checked to reach it.
struct ToySettings: MethodSettings {
    /// A top-level key of the run configuration, owned by this method.
    var toyLossScale = 1.0
    init() {}

    func validate(in config: TrainingConfig) throws {
        guard toyLossScale > 0 else { throw SegmentationError.config("toyLossScale must be > 0, got \(toyLossScale)") }
    }
}

final class ToyMethod: SegmentationMethod {
    static let definition = MethodDefinition(name: "toy-conv", summary: "one convolution (test only)", settings: ToySettings.self) { context, settings in
        try ToyMethod(context: context, scale: settings.toyLossScale)
    }

    final class Network: Module, @unchecked Sendable {
        let conv: Conv3d
        init(_ conv: Conv3d) { self.conv = conv; super.init() }
    }

    let name = "toy-conv"
    let network: Network
    let input: ModalityInput
    let scale: Double
    /// Iterations started since the run began (restored from checkpoints).
    private(set) var iterationsSeen = 0
    private(set) var validations = 0

    init(context: MethodContext, scale: Double) throws {
        input = ModalityInput(indices: context.inputModalities, modalityNames: context.modalityNames, consumer: "toy-conv")
        network = Network(try Conv3d(context.inputModalities.count, context.numClasses, kernelSize: 3, padding: 1))
        self.scale = scale
    }

    var model: Module { network }
    var trainableParameters: [Parameter] { network.trainableParameters() }
    var outputNames: [String] { ["toy"] }
    var usesUnlabeledData: Bool { false }

    func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        XCTAssertFalse(batch.hasUnlabeled, "a method without unlabelled data gets labelled batches only")
        let ce = try F.crossEntropy(network.conv(input(batch.labeledImages)), target: batch.labels[input.indices[0]])
        return LossTerms(terms: [("ce", ce)], total: try weightedTotal([(ce, scale)]))
    }

    func predict(_ images: [Tensor?]) throws -> [Tensor?] { [try F.softmax(network.conv(input(images)), dim: 1)] }

    func willStartIteration(_ iteration: Int, context: MethodTrainingContext) throws {
        XCTAssertEqual(iteration, iterationsSeen, "hooks see every iteration once, also across a resume")
        iterationsSeen += 1
    }

    func didValidate(iteration: Int, heads: [[Int: Double]?], context: MethodTrainingContext) throws {
        XCTAssertEqual(heads.count, 1)
        validations += 1
    }

    func checkpointState() throws -> MethodCheckpointState {
        MethodCheckpointState(tensors: ["toy_extra": [("seen", try Tensor([Float(iterationsSeen)], shape: [1]))]],
                              metadata: ["toy_seen": "\(iterationsSeen)"])
    }

    func restore(from state: MethodCheckpointState) throws {
        let seen = try XCTUnwrap(state.metadata["toy_seen"].flatMap(Int.init))
        let tensor = try XCTUnwrap(state.tensors["toy_extra"]?.first { $0.0 == "seen" }?.1)
        XCTAssertEqual(try tensor.toArray(Float.self), [Float(seen)])
        iterationsSeen = seen
    }
}

final class PluggableMethodTests: XCTestCase {
    /// Registered once per test process (a second registration of the name is an error).
    static let registration: Void = { try! MethodRegistry.register(ToyMethod.definition) }()

    override func setUp() { _ = Self.registration }

    func testRegistryKnowsTheMethodAndRejectsDuplicatesAndClashes() throws {
        XCTAssertTrue(MethodRegistry.names.contains("toy-conv"))
        XCTAssertTrue(MethodRegistry.helpText.contains("toy-conv: one convolution (test only)"))
        XCTAssertEqual(Array(MethodRegistry.names.prefix(5)), ["cmc", "cml", "mean-teacher", "cps", "supervised"])
        XCTAssertThrowsError(try MethodRegistry.register(ToyMethod.definition)) { XCTAssertTrue("\($0)".contains("already registered")) }
        struct Clashing: MethodSettings { var iterations = 3; init() {} }
        let clash = MethodDefinition(name: "clash", summary: "", settings: Clashing.self) { context, _ in
            try ToyMethod(context: context, scale: 1)
        }
        XCTAssertThrowsError(try MethodRegistry.register(clash)) { XCTAssertTrue("\($0)".contains("iterations"), "\($0)") }
        XCTAssertFalse(MethodRegistry.names.contains("clash"))
    }

    func testSettingsAreTopLevelKeysDecodedAndValidatedByTheMethod() throws {
        var config = try TrainingConfig.overriding(["method": "toy-conv", "toyLossScale": 0.25])
        XCTAssertEqual(config.settings(ToySettings.self).toyLossScale, 0.25)
        // The other methods' settings keep their defaults and keys.
        XCTAssertEqual(config.settings(SemiCMLSettings.self).cmlTeacherCheckpoints, 3)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
        XCTAssertEqual(object["toyLossScale"] as? Double, 0.25)
        XCTAssertNotNil(object["cmlStage1Iterations"])
        XCTAssertNotNil(object["cmc"])
        // A round trip through JSON keeps it.
        let back = try JSONDecoder().decode(TrainingConfig.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(back.settings(ToySettings.self).toyLossScale, 0.25)
        // The method's own validation runs when it is the chosen method.
        config.patch = [8, 8, 8]
        config.unet = UNetConfig(widths: [4, 8])
        XCTAssertNoThrow(try config.validate())
        var bad = config.settings(ToySettings.self)
        bad.toyLossScale = -1
        config.setSettings(bad)
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("toyLossScale"), "\($0)") }
        config.method = "cmc"
        XCTAssertNoThrow(try config.validate(), "only the chosen method's settings are validated")
        config.method = "no-such-method"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("toy-conv"), "the message lists the registry: \($0)") }
    }

    /// Train a few iterations through the normal trainer, stop, resume, then predict with the
    /// normal predictor: nothing outside the test target names the method.
    func testRegisteredMethodTrainsResumesAndPredicts() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-toy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let dataset = root.appendingPathComponent("dataset"), run = root.appendingPathComponent("run")
        var phantom = PhantomConfig()
        phantom.size = 24
        try Phantom.writeDataset(to: dataset, cases: 8, unlabeledCases: 2, seed: 0, config: phantom, overwrite: true)

        var config = EndToEndTests.tinyConfig()
        config.method = "toy-conv"
        config.iterations = 5
        config.validationInterval = 2
        config.checkpointInterval = 2
        var settings = config.settings(ToySettings.self)
        settings.toyLossScale = 0.5
        config.setSettings(settings)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let loaded = try DatasetLoading.load(dataset: dataset, config: config, run: run, log: { _ in })
        try loaded.description.write(to: run)

        let first = try Trainer(config: config, data: loaded.data, run: run, resume: false, output: { _ in })
        XCTAssertThrowsError(try first.train(stoppingAt: 3)) { XCTAssertTrue($0 is TrainingInterrupted) }
        XCTAssertEqual((first.method as? ToyMethod)?.iterationsSeen, 3)
        XCTAssertEqual((first.method as? ToyMethod)?.validations, 1)

        // Resuming reads the settings back from run.json, as `concord train --resume` does.
        let resumedConfig = try RunDescription.read(from: run).config
        XCTAssertEqual(resumedConfig.settings(ToySettings.self).toyLossScale, 0.5)
        let second = try Trainer(config: resumedConfig, data: loaded.data, run: run, resume: true, output: { _ in })
        let toy = try XCTUnwrap(second.method as? ToyMethod)
        XCTAssertEqual(toy.iterationsSeen, 3, "restored from the checkpoint's method state")
        XCTAssertEqual(toy.scale, 0.5)
        let summary = try second.train()
        XCTAssertEqual(summary.iterations, 5)
        XCTAssertEqual(toy.iterationsSeen, 5)

        let log = try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8)
        var trained: [Int] = []
        for line in log.split(separator: "\n") {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard o["kind"] as? String == "train" else { continue }
            trained.append(o["iteration"] as! Int)
            let ce = try XCTUnwrap((o["losses"] as? [String: Double])?["ce"])
            XCTAssertTrue(ce.isFinite && ce > 0)
        }
        XCTAssertEqual(trained, [1, 2, 3, 4, 5])
        let last = try Checkpoint.read(second.lastCheckpoint)
        XCTAssertEqual(last.metadata["method"], "toy-conv")
        XCTAssertEqual(last.metadata["toy_seen"], "5")

        let predictor = try Predictor(run: run, checkpoint: "last")
        XCTAssertEqual((predictor.method as? ToyMethod)?.iterationsSeen, 5, "the predictor restores the method's state too")
        let name = try XCTUnwrap(loaded.splits.test.first)
        let files = try XCTUnwrap(loaded.layout.case(named: name))
        let volumes = CaseVolumes(name: name, channels: try files.channels.map { url in try url.map { try NIfTI.read($0).volume } })
        let mask = try predictor.segment(volumes)
        let reference = try XCTUnwrap(volumes.channels[0])
        XCTAssertEqual(mask.shape, reference.shape)
        XCTAssertTrue(mask.voxels.allSatisfy { $0 >= 0 && $0 < Float(loaded.data.numClasses) && $0 == $0.rounded() })
    }
}
