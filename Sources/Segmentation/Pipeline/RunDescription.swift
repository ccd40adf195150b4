import Essentials
import Foundation
import Torch
import Volumes
import Yams

/// `RUN/run.json`: what `concord predict` needs besides the weights — the dataset's channel and
/// class names, whether modalities were paired, the preprocessing plan and the training config.
public struct RunDescription: Codable {
    public var concordVersion: String
    public var dataset: String
    public var modalityNames: [String]
    /// Class index -> name, background included.
    public var classNames: [Int: String]
    public var paired: Bool
    public var fileEnding: String
    public var plan: PreprocessingPlan
    public var config: TrainingConfig

    public init(concordVersion: String, dataset: String, modalityNames: [String], classNames: [Int: String], paired: Bool,
                fileEnding: String, plan: PreprocessingPlan, config: TrainingConfig) {
        self.concordVersion = concordVersion; self.dataset = dataset; self.modalityNames = modalityNames
        self.classNames = classNames; self.paired = paired; self.fileEnding = fileEnding; self.plan = plan; self.config = config
    }

    public var numClasses: Int { (classNames.keys.max() ?? 0) + 1 }

    public static func url(in run: URL) -> URL { run.appendingPathComponent("run.json") }

    /// Writes run.json and, for people, the resolved training settings as config.yaml (the same
    /// keys `concord train --config` reads).
    public func write(to run: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: Self.url(in: run))
        try AtomicFile.write(Data(try YAMLEncoder().encode(config).utf8), to: run.appendingPathComponent("config.yaml"))
    }

    public static func read(from run: URL) throws -> RunDescription {
        let url = Self.url(in: run)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SegmentationError.invalidRun(path: run.path, problem: "not a Concord run (no run.json)")
        }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let settings = object["config"] as? [String: Any] else {
            throw SegmentationError.invalidRun(path: url.path, problem: "not a JSON object with a config")
        }
        // The training settings are read over today's defaults, the one way every settings file is
        // read (`SettingsDecoding`), so a run written before a setting existed still loads (the new
        // setting takes its default).
        let config = try TrainingConfig.overriding(settings, source: "\(url.path): config")
        object["config"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config))
        do {
            return try JSONDecoder().decode(RunDescription.self, from: JSONSerialization.data(withJSONObject: object))
        } catch {
            throw SegmentationError.invalidRun(path: url.path, problem: "unreadable (\(error))")
        }
    }
}
