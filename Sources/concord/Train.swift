import ArgumentParser
import Foundation
import Segmentation
import Torch
import Yams

/// `concord train`: preprocess, split, train, validate, checkpoint.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a segmentation method on a dataset folder.",
        discussion: """
        The run folder receives run.json (what predict needs), config.yaml (every hyperparameter, resolved),
        splits.json, log.jsonl (losses per iteration, validation Dice) and checkpoints/{last,best}.safetensors.
        Ctrl-C saves a checkpoint and stops; --resume continues bit-for-bit from the last checkpoint.
        Settings: defaults < --config FILE.yaml < command-line options. Choices in the config file:
        optimizer \(OptimizerKind.choices); schedule \(LearningRateScheduleKind.choices); device \(DeviceSetting.choices); precision \(PrecisionSetting.choices).
        """
    )

    @Option(help: "Dataset folder (nnU-Net v2 raw layout, plus imagesUnlabeled/).") var dataset: String
    @Option(help: ArgumentHelp("Method: \(MethodRegistry.names.joined(separator: ", ")).", discussion: MethodRegistry.helpText))
    var method: String?
    @Option(help: "Fraction of the training cases that keep their labels, e.g. 0.1.") var labeled: Double?
    @Option(help: "Cubic patch size (or set patch in the config).") var patch: Int?
    @Option(help: "Training iterations.") var iterations: Int?
    @Option(help: "Network dimensions: 3 (volumes) or 2 (slice-wise; not every method has a 2D form).") var dimensions: Int?
    @Option(help: "Random seed.") var seed: UInt64?
    @Option(help: "YAML file with settings (keys as in RUN/config.yaml).") var config: String?
    @Option(help: "Device: \(DeviceSetting.choices).") var device: String?
    @Option(help: "Precision of the networks: \(PrecisionSetting.choices) (fp16: CUDA, with loss scaling).") var precision: String?
    @Option(help: "Run folder.") var out: String
    @Flag(help: "Continue the run in --out from its last checkpoint.") var resume = false

    func run() throws {
        let runURL = URL(fileURLWithPath: out)
        var settings: TrainingConfig
        if resume {
            settings = try RunDescription.read(from: runURL).config
            if let iterations { settings.iterations = iterations }
        } else {
            var overrides: [String: Any] = [:]
            if let config {
                guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw ValidationError("cannot read \(config)") }
                guard let object = try Yams.load(yaml: text) as? [String: Any] else { throw ValidationError("\(config): not a YAML mapping") }
                overrides = object
            }
            settings = try TrainingConfig.overriding(overrides, source: config ?? "config")
            if let method { settings.method = method }
            if let labeled { settings.labeledRatio = labeled }
            if let rank = dimensions {
                settings.unet.rank = rank
                if settings.patch.count != rank { settings.patch = Array(settings.patch.suffix(rank)) }
            }
            if let patch { settings.patch = Array(repeating: patch, count: settings.unet.rank) }
            if let iterations { settings.iterations = iterations }
            if let seed { settings.seed = seed }
            if let precision {
                guard let parsed = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision \(precision): must be \(PrecisionSetting.choices)") }
                settings.precision = parsed
            }
            if let device {
                guard let parsed = DeviceSetting(parsing: device) else { throw ValidationError("--device \(device): must be \(DeviceSetting.choices)") }
                settings.device = parsed
            }
            try settings.validate()
            if FileManager.default.fileExists(atPath: runURL.appendingPathComponent("checkpoints/last.safetensors").path) {
                throw ValidationError("\(out) already holds a run; use --resume to continue it or choose another --out")
            }
        }
        try FileManager.default.createDirectory(at: runURL, withIntermediateDirectories: true)
        let loaded = try DatasetLoading.load(dataset: URL(fileURLWithPath: dataset), config: settings, run: runURL) { print($0) }
        var description = loaded.description
        description.config = settings
        try description.write(to: runURL)
        let trainer = try Trainer(config: settings, data: loaded.data, run: runURL, resume: resume) { print($0) }
        print("training \(trainer.method.name) on \(loaded.data.labeled.count) labelled + \(loaded.data.unlabeled.count) unlabelled cases, \(trainer.method.model.parameterCount) parameters, \(Runtime.threads) threads")
        do {
            let summary = try trainer.train()
            if loaded.data.validation.isEmpty {
                // Nothing to select on: best.safetensors is the last checkpoint.
                print("done: \(summary.iterations) iterations in \(formatDuration(summary.seconds)) (no validation cases)")
            } else {
                print(String(format: "done: %d iterations in %@, best validation Dice %.4f at iteration %d", summary.iterations,
                             formatDuration(summary.seconds), summary.bestDice, summary.bestIteration))
            }
        } catch let interrupted as TrainingInterrupted {
            print(interrupted.description)
            throw ExitCode(130)
        }
    }
}
