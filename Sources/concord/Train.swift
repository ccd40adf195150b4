import ArgumentParser
import Essentials
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
    @Option(help: "Wall-time budget for training in minutes: training ends early (best and last checkpoints written) when it is spent.") var minutes: Double?
    @Option(help: "Cross-validation fold to train: 0..<--folds, or 'all' (every labelled case). Without it: the fraction-based splits.") var fold: String?
    @Option(help: "Number of cross-validation folds (fixed in DATA/splits_final.json on first use).") var folds = 5
    @Flag(help: "Do not use the dataset plan (DATA/plans.json) for patch, network and batch sizes: keep the fixed defaults.") var noPlan = false

    func run() throws {
        let runURL = URL(fileURLWithPath: out)
        var settings: TrainingConfig
        var datasetPlan: PlannedConfiguration? = nil
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
            // Without an explicit patch or widths, the dataset's plan chooses them (and the
            // batch sizes unless given), computed and saved in DATA/plans.json when absent.
            let unetOverrides = overrides["unet"] as? [String: Any] ?? [:]
            let explicit = patch != nil || overrides["patch"] != nil || unetOverrides["widths"] != nil
                || unetOverrides["strides"] != nil || unetOverrides["kernels"] != nil
            if !noPlan && !explicit && settings.unet.rank == 3 && settings.unet.encoder == .unet {
                let deviceName = try settings.device.resolve() == .cpu ? "cpu" : "cuda"
                let (planned, _) = try ExperimentPlanner.planForTraining(dataset: URL(fileURLWithPath: dataset), method: settings.method,
                                                                       device: deviceName) { print($0) }
                planned.apply(to: &settings, keepBatches: overrides["labeledBatch"] != nil || overrides["unlabeledBatch"] != nil)
                datasetPlan = planned
                print("plan: patch \(settings.patch), widths \(settings.unet.widths), strides \(settings.unet.strides), batch \(settings.labeledBatch) + \(settings.unlabeledBatch) (\(planned.how))")
            }
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
        var split = DatasetLoading.SplitChoice.fractions
        if let fold {
            guard fold == "all" || Int(fold).map({ (0..<folds).contains($0) }) == true else {
                throw ValidationError("--fold \(fold): must be 0..<\(folds) (--folds) or 'all'")
            }
            split = .crossValidation(count: folds, fold: Int(fold))
        }
        if let datasetPlan {
            // The run records the plan it used.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(datasetPlan), to: runURL.appendingPathComponent("plan.json"))
        }
        let loaded = try DatasetLoading.load(dataset: URL(fileURLWithPath: dataset), config: settings, run: runURL, split: split,
                                             targetSpacing: datasetPlan?.targetSpacing) { print($0) }
        var description = loaded.description
        description.config = settings
        try description.write(to: runURL)
        let trainer = try Trainer(config: settings, data: loaded.data, run: runURL, resume: resume) { print($0) }
        print("training \(trainer.method.name) on \(loaded.data.labeled.count) labelled + \(loaded.data.unlabeled.count) unlabelled cases, \(trainer.method.model.parameterCount) parameters, \(Runtime.threads) threads")
        do {
            if let minutes, !(minutes > 0) { throw ValidationError("--minutes must be positive, got \(minutes)") }
            let summary = try trainer.train(deadline: minutes.map { Date().addingTimeInterval($0 * 60) })
            if summary.stoppedByDeadline { print("time budget of \(minutes ?? 0) minutes reached at iteration \(summary.iterations)") }
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
