import Foundation
import XCTest
@testable import Segmentation
import Torch

/// String settings as enums: same text in files, errors that list the allowed values.
final class SettingsTests: XCTestCase {
    func encoded(_ config: TrainingConfig) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
    }

    func testChoicesReadAndWriteTheirStrings() throws {
        let config = try TrainingConfig.overriding(["optimizer": "sgd", "schedule": "cosine", "device": "cuda:1"])
        XCTAssertEqual(config.optimizer, .sgd)
        XCTAssertEqual(config.schedule, .cosine)
        XCTAssertEqual(config.device, .cuda(1))
        let object = try encoded(config)
        XCTAssertEqual(object["optimizer"] as? String, "sgd")
        XCTAssertEqual(object["schedule"] as? String, "cosine")
        XCTAssertEqual(object["device"] as? String, "cuda:1")
        // Every spelling accepted before is still accepted.
        for (text, expected) in [("cpu", DeviceSetting.cpu), ("CUDA", .cuda(nil)), ("gpu", .cuda(nil)), ("auto", .auto), ("cuda:0", .cuda(0))] {
            XCTAssertEqual(try TrainingConfig.overriding(["device": text]).device, expected, text)
        }
        XCTAssertEqual(DeviceSetting.auto.description, "auto")
        XCTAssertEqual(try DeviceSetting.cpu.resolve(), .cpu)
    }

    func testBadChoicesNameTheKeyAndTheAllowedValues() throws {
        XCTAssertThrowsError(try TrainingConfig.overriding(["optimizer": "adagrad"])) {
            XCTAssertTrue("\($0)".contains("optimizer") && "\($0)".contains("adam, adamw or sgd") && "\($0)".contains("adagrad"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingConfig.overriding(["schedule": "step"])) {
            XCTAssertTrue("\($0)".contains("schedule") && "\($0)".contains("poly, constant or cosine"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingConfig.overriding(["device": "tpu"])) {
            XCTAssertTrue("\($0)".contains("device") && "\($0)".contains("cuda:N"), "\($0)")
        }
        XCTAssertNil(DeviceSetting(parsing: "cuda:x"))
        XCTAssertNil(DeviceSetting(parsing: "cuda:-1"))
    }

    /// A run.json `config` as written before the methods were pluggable (every key at the top
    /// level, strings for optimizer/schedule/device, no `initialization` or `deepSupervision`
    /// yet) reads into the methods' settings types.
    func testOldConfigObjectLoads() throws {
        let old: [String: Any] = [
            "method": "cml", "iterations": 20, "optimizer": "adamw", "schedule": "constant", "device": "cpu",
            "cml": ["lambdaASC": 0.2, "lambdaMSE": 0.1, "temperatureASC": 1.0, "rampUpFraction": 0.4, "alpha": 0.5,
                    "pseudoLabelPasses": 4, "supervisionInStage2": true],
            "cmlStage1Iterations": 10, "cmlTeacherCheckpoints": 2, "cmcSharedEncoder": true,
            "cmc": ["lambdaCSC": 0.3], "meanTeacher": ["emaDecay": 0.95], "cps": ["weight": 1.5],
            "unet": ["rank": 3, "widths": [4, 8, 16], "norm": "instance", "dropout": 0],
        ]
        let config = try TrainingConfig.overriding(old)
        let cml = config.settings(SemiCMLSettings.self)
        XCTAssertEqual(cml.cml.lambdaASC, 0.2)
        XCTAssertEqual(cml.cmlStage1Iterations, 10)
        XCTAssertEqual(cml.cmlTeacherCheckpoints, 2)
        XCTAssertEqual(config.settings(CMCSettings.self).cmcSharedEncoder, true)
        XCTAssertEqual(config.settings(CMCSettings.self).cmc.lambdaCSC, 0.3)
        XCTAssertEqual(config.settings(CMCSettings.self).cmc.lambdaCAC, 0.1)
        XCTAssertEqual(config.settings(MeanTeacherSettings.self).meanTeacher.emaDecay, 0.95)
        XCTAssertEqual(config.settings(CPSSettings.self).cps.weight, 1.5)
        XCTAssertEqual(config.unet.initialization, .he)
        XCTAssertEqual(config.optimizer, .adamw)
        // Written back, every old key is where it was.
        let object = try encoded(config)
        for key in ["cml", "cmlStage1Iterations", "cmlTeacherCheckpoints", "cmc", "cmcSharedEncoder", "meanTeacher", "cps"] {
            XCTAssertNotNil(object[key], key)
        }
        // The method checks its own settings.
        var bad = config
        var settings = cml
        settings.cmlStage1Iterations = 30
        bad.setSettings(settings)
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("cmlStage1Iterations"), "\($0)") }
        var twoD = config
        twoD.method = "cmc"
        twoD.unet.rank = 2
        twoD.patch = [16, 16]
        XCTAssertThrowsError(try twoD.validate()) { XCTAssertTrue("\($0)".contains("2D"), "\($0)") }
    }

    func testSettingsDecodingMergesNestedObjectsOverDefaults() throws {
        let vit = try SettingsDecoding.decode(ViTConfig.self, overrides: ["depth": 3], defaults: ViTConfig.small(), source: "test")
        XCTAssertEqual(vit.depth, 3)
        XCTAssertEqual(vit.embedDim, ViTConfig.small().embedDim)
        XCTAssertThrowsError(try SettingsDecoding.decode(ViTConfig.self, overrides: ["dept": 3], defaults: ViTConfig(), source: "weights.json")) {
            XCTAssertTrue("\($0)".contains("weights.json") && "\($0)".contains("dept"), "\($0)")
        }
    }

    /// Callers match cases, not message text.
    func testErrorsAreCasesACallerCanMatch() throws {
        var config = TrainingConfig()
        config.method = "no-such-method"
        XCTAssertThrowsError(try config.validate()) {
            guard case .unknownMethod(let name, let known)? = $0 as? SegmentationError else { return XCTFail("\($0)") }
            XCTAssertEqual(name, "no-such-method")
            XCTAssertTrue(known.contains("cmc"))
        }
        XCTAssertThrowsError(try TrainingConfig.overriding(["learningRte": 1], source: "my.yaml")) {
            guard case .invalidSettings(let source, let problem)? = $0 as? SegmentationError else { return XCTFail("\($0)") }
            XCTAssertEqual(source, "my.yaml")
            XCTAssertTrue(problem.contains("learningRte"))
        }
        config.method = "cmc"
        config.iterations = 0
        XCTAssertThrowsError(try config.validate()) { XCTAssertEqual($0 as? SegmentationError, .config("iterations must be > 0")) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("concord-not-a-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try Predictor(run: folder)) {
            XCTAssertEqual($0 as? SegmentationError, .invalidRun(path: folder.path, problem: "not a Concord run (no run.json)"))
            XCTAssertEqual("\($0)", "\(folder.path): not a Concord run (no run.json)")
        }
        XCTAssertThrowsError(try MethodContext(config: { var c = TrainingConfig(); c.inputModalities = [3]; return c }(),
                                               modalityNames: ["a", "b"], numClasses: 2)) {
            guard case .invalidSettings("config", _)? = $0 as? SegmentationError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try SemiCMLMethod(modalityNames: ["a"], numClasses: 2)) {
            guard case .incompatibleData? = $0 as? SegmentationError else { return XCTFail("\($0)") }
        }
    }
}
