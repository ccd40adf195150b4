import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Mixed precision in training: the networks' autocast policy, float32 at their outputs, dynamic
/// loss scaling (skip, backoff, exact resume) and the clear errors.
final class PrecisionTrainingTests: XCTestCase {
    let helper = TinyTraining.self

    func testBF16PolicyRunsTheNetworkInBF16AndReturnsFloat32() throws {
        try Runtime.manualSeed(3)
        let net = try UNet(inChannels: 2, numClasses: 3, config: UNetConfig(widths: [4, 8, 16]))
        let x = try Tensor.randn([1, 2, 16, 16, 16])
        let full = try net(x)
        net.mixedPrecision = MixedPrecision(device: .cpu, dtype: .bfloat16)
        let mixed = try net(x)
        XCTAssertEqual(mixed.dtype, .float32, "what leaves the network is float32 for the losses")
        let difference = try (mixed - full).abs().max().item(), scale = try full.abs().max().item()
        XCTAssertGreaterThan(difference, 0, "the convolutions really ran in bfloat16")
        XCTAssertLessThan(difference / scale, 0.1, "bfloat16 keeps about 3 significant digits")
        XCTAssertFalse(try Autocast.state(device: .cpu).enabled, "the autocast region closes at the network's output")
        net.mixedPrecision = nil
        XCTAssertEqual(try (net(x) - full).abs().max().item(), 0, "off again: float32, bit-identical")
    }

    func testCMCOutputsAreFloat32UnderBF16() throws {
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: UNetConfig(widths: [4, 8, 16])))
        network.setMixedPrecision(MixedPrecision(device: .cpu, dtype: .bfloat16))
        XCTAssertNotNil(network.mixedPrecision, "setMixedPrecision reaches the network in a module tree")
        let out = try network([try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])])
        for t in out.logits.compactMap({ $0 }) + out.bottlenecks.compactMap({ $0 }) { XCTAssertEqual(t.dtype, .float32) }
    }

    func testThePReLTeacherComputesInItsSourceNetworksPrecision() throws {
        let config = helper.config("cml", iterations: 2)
        let method = try XCTUnwrap(try MethodRegistry.make(config: config, modalityNames: ["A", "B"], numClasses: 3) as? SemiCMLMethod)
        let policy = MixedPrecision(device: .cpu, dtype: .bfloat16)
        method.model.setMixedPrecision(policy)
        let state = Dictionary(try method.ensemble.networks[1].stateDict(), uniquingKeysWith: { a, _ in a })
        try method.startPReL(teacher: 1, student: 0, teacherState: state)
        XCTAssertEqual(method.prel?.network.mixedPrecision, policy)
    }

    func testFP16OnTheCPUIsAClearError() throws {
        XCTAssertThrowsError(try PrecisionSetting.fp16.policy(on: .cpu)) { error in
            guard case let SegmentationError.invalidSettings(_, problem) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(problem.contains("fp16 needs a CUDA device"), problem)
        }
        var config = helper.config("supervised", iterations: 2)
        config.precision = .fp16
        let run = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: run) }
        XCTAssertThrowsError(try Trainer(config: config, data: helper.data(), run: run, resume: false, output: { _ in }))
    }

    func testCUDAWithoutCUDAIsAClearError() throws {
        try XCTSkipIf(Runtime.cudaAvailable, "this machine has CUDA")
        var config = helper.config("supervised", iterations: 2)
        config.device = .cuda(nil)
        let run = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: run) }
        XCTAssertThrowsError(try Trainer(config: config, data: helper.data(), run: run, resume: false, output: { _ in })) { error in
            guard case let SegmentationError.unavailableDevice(message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("CUDA is not available"), message)
        }
    }

    func testBF16TrainingStepsAreFiniteAndCloseToFloat32() throws {
        var config = helper.config("cmc", iterations: 3)
        let full = try helper.temporaryRun(), mixed = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: full); try? FileManager.default.removeItem(at: mixed) }
        _ = try Trainer(config: config, data: helper.data(), run: full, resume: false, output: { _ in }).train()
        config.precision = .bf16
        _ = try Trainer(config: config, data: helper.data(), run: mixed, resume: false, output: { _ in }).train()
        let a = try helper.trainLosses(full), b = try helper.trainLosses(mixed)
        XCTAssertEqual(a[1]!["sup"]!, b[1]!["sup"]!, accuracy: 0.05 * abs(a[1]!["sup"]!), "first step: same loss up to bf16 rounding")
        XCTAssertNotEqual(a[1]!["sup"]!, b[1]!["sup"]!, "bf16 changed the arithmetic")
        XCTAssertTrue(b.values.allSatisfy { $0.values.allSatisfy(\.isFinite) })
    }

    /// A scale beyond float32's range, so the scaled loss and its gradients are not finite: those steps are skipped and the
    /// scale halves until the gradients fit; a run interrupted in the middle of that and resumed
    /// equals the uninterrupted one weight for weight (the scale is in the checkpoint).
    func testLossScalingSkipsOverflowsHalvesTheScaleAndResumesExactly() throws {
        var config = helper.config("supervised", iterations: 6)
        config.lossScaling = .dynamic
        config.initialLossScale = 1e39   // beyond float32: the scaled loss is inf
        let straight = try helper.temporaryRun(), resumed = try helper.temporaryRun()
        defer { try? FileManager.default.removeItem(at: straight); try? FileManager.default.removeItem(at: resumed) }
        let a = try Trainer(config: config, data: helper.data(), run: straight, resume: false, output: { _ in })
        _ = try a.train()
        let scaler = try XCTUnwrap(a.scaler)
        XCTAssertGreaterThan(a.skippedSteps, 0, "the first steps overflow and are skipped")
        XCTAssertLessThan(a.skippedSteps, 6, "the scale came down far enough to step")
        XCTAssertEqual(scaler.scale, 1e39 * pow(0.5, Double(a.skippedSteps)), "halved once per skipped step")

        let b1 = try Trainer(config: config, data: helper.data(), run: resumed, resume: false, output: { _ in })
        XCTAssertThrowsError(try b1.train(stoppingAt: 1)) { XCTAssertTrue($0 is TrainingInterrupted) }
        let b2 = try Trainer(config: config, data: helper.data(), run: resumed, resume: true, output: { _ in })
        XCTAssertEqual(b2.scaler?.state, b1.scaler?.state, "the scaler state came back from the checkpoint")
        _ = try b2.train()
        XCTAssertEqual(b2.scaler?.state, scaler.state)
        for ((name, x), (_, y)) in zip(try a.method.model.stateDict(), try b2.method.model.stateDict()) where x.dtype == .float32 {
            XCTAssertEqual(try x.toArray(Float.self), try y.toArray(Float.self), name)
        }
    }
}
