import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// A tiny two-modality training setup (16^3 synthetic cases, widths 4-8-16) shared by the
/// trainer's tests.
enum TinyTraining {
    static func config(_ method: String, iterations: Int) -> TrainingConfig {
        var config = TrainingConfig()
        config.method = method
        config.iterations = iterations
        config.patch = [16, 16, 16]
        config.unet = UNetConfig(widths: [4, 8, 16])
        config.labeledBatch = 1
        config.unlabeledBatch = 2
        config.validationInterval = 3
        config.checkpointInterval = 3
        config.logInterval = 1
        config.learningRate = 3e-3
        return config
    }

    static func data() throws -> TrainingData {
        TrainingData(modalityNames: ["A", "B"], numClasses: 3, paired: true,
                     labeled: [try syntheticCase("l0", seed: 1)],
                     unlabeled: [try syntheticCase("u0", seed: 2, labeled: false), try syntheticCase("u1", seed: 3, labeled: false)],
                     validation: [try syntheticCase("v0", seed: 4)])
    }

    static func temporaryRun() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func trainLosses(_ run: URL) throws -> [Int: [String: Double]] {
        let text = try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8)
        var out: [Int: [String: Double]] = [:]
        for line in text.split(separator: "\n") {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if o["kind"] as? String == "train" { out[o["iteration"] as! Int] = o["losses"] as? [String: Double] }
        }
        return out
    }

}
