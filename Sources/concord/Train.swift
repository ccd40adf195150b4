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
    @Option(help: ArgumentHelp("Data-parallel processes on this machine (c10d, Gloo): with --device cuda one per GPU (rank i on GPU i), on the CPU the cores split between them. labeledBatch/unlabeledBatch are per process.",
                               discussion: "Across machines, start one `concord train` per process with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or under srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR or --master-addr); see docs/distributed.md."))
    var nproc: Int?
    @Option(help: "Rank 0's address when MASTER_ADDR is not set (launches across machines).") var masterAddr: String?
    @Option(help: "Rank 0's port when MASTER_PORT is not set (default 29500).") var masterPort: Int?
    @Option(help: "Seconds a rank of a data-parallel run waits for the others before it stops with an error naming the rank that died or hangs.") var distTimeout: Double = 300

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        if let nproc {
            guard nproc >= 1 else { throw ValidationError("--nproc must be at least 1, got \(nproc)") }
            guard distTimeout > 0 else { throw ValidationError("--dist-timeout must be positive, got \(distTimeout)") }
            if environment["RANK"] == nil && nproc > 1 {
                // The launcher: start the ranks (each runs this same command line) and wait.
                let cuda = device.flatMap(DeviceSetting.init(parsing:)).map { if case .cuda = $0 { return true } else { return false } } ?? false
                let status = try LocalLauncher.run(worldSize: nproc, arguments: Array(CommandLine.arguments.dropFirst()), timeout: distTimeout,
                                                   cudaDevices: cuda)
                if status != 0 { throw ExitCode(status) }
                return
            }
            if let world = environment["WORLD_SIZE"], Int(world) != nproc {
                throw ValidationError("--nproc \(nproc) but WORLD_SIZE=\(world): under an outside launcher leave --nproc out")
            }
        }
        let launch: LaunchEnvironment?
        do { launch = try LaunchEnvironment.parse(environment, masterAddress: masterAddr, masterPort: masterPort) }
        catch { throw ValidationError(String(describing: error)) }
        guard let launch else { return try train(parallel: nil) }
        let parallel = try DataParallel(launch: launch, timeout: distTimeout)
        do {
            try train(parallel: parallel)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // Name the rank that stopped the run when it was another one; else say it was this one.
            throw parallel.diagnose(error, iteration: nil)
        }
    }

    /// One process's training: a single process, or one rank of a data-parallel run.
    func train(parallel: DataParallel?) throws {
        let primary = parallel?.isPrimary ?? true
        // Ranks other than 0 say nothing but errors (rank 0 speaks for the run).
        let say: (String) -> Void = primary ? { print($0) } : { _ in }
        if let parallel {
            // Every rank must run the same command line and, when given, the same config file.
            try parallel.requireSame("arguments", Data(CommandLine.arguments.dropFirst().joined(separator: " ").utf8), what: "command-line arguments")
            try parallel.requireSame("config-file", config.flatMap { FileManager.default.contents(atPath: $0) } ?? Data(), what: "--config file contents")
            say("data parallel: \(parallel.worldSize) processes (\(parallel.launch.source)), rank 0 at \(parallel.launch.masterAddress):\(parallel.launch.masterPort), timeout \(Int(parallel.timeout)) s")
        }
        let runURL = URL(fileURLWithPath: out)
        if let parallel, !parallel.isPrimary {
            // Rank 0 resolves the settings, plans, draws the splits and preprocesses; then this
            // rank loads what it wrote (the run folder must be on a file system every rank sees).
            try parallel.waitUntilReady("prepared", patience: Swift.max(3600, parallel.timeout), what: "the run folder (settings, plan, splits)")
            let settings = try RunDescription.read(from: runURL).config
            let loaded = try DatasetLoading.load(dataset: URL(fileURLWithPath: dataset), config: settings, run: runURL, split: splitChoice()) { _ in }
            let trainer = try Trainer(config: settings, data: loaded.data, run: runURL, resume: resume, parallel: parallel, output: say)
            try runTraining(trainer, hasValidation: !loaded.data.validation.isEmpty, say: say)
            return
        }
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
        let split = try splitChoice()
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
        try parallel?.signalReady("prepared")
        let trainer = try Trainer(config: settings, data: loaded.data, run: runURL, resume: resume, parallel: parallel) { print($0) }
        print("training \(trainer.method.name) on \(loaded.data.labeled.count) labelled + \(loaded.data.unlabeled.count) unlabelled cases, \(trainer.method.model.parameterCount) parameters, \(Runtime.threads) threads"
              + (parallel.map { ", \($0.worldSize) processes (global batch \(settings.labeledBatch * $0.worldSize) + \(settings.unlabeledBatch * $0.worldSize))" } ?? ""))
        try runTraining(trainer, hasValidation: !loaded.data.validation.isEmpty, say: say)
    }

    func splitChoice() throws -> DatasetLoading.SplitChoice {
        guard let fold else { return .fractions }
        guard fold == "all" || Int(fold).map({ (0..<folds).contains($0) }) == true else {
            throw ValidationError("--fold \(fold): must be 0..<\(folds) (--folds) or 'all'")
        }
        return .crossValidation(count: folds, fold: Int(fold))
    }

    func runTraining(_ trainer: Trainer, hasValidation: Bool, say: (String) -> Void) throws {
        do {
            if let minutes, !(minutes > 0) { throw ValidationError("--minutes must be positive, got \(minutes)") }
            let summary = try trainer.train(deadline: minutes.map { Date().addingTimeInterval($0 * 60) })
            if summary.stoppedByDeadline { say("time budget of \(minutes ?? 0) minutes reached at iteration \(summary.iterations)") }
            if !hasValidation {
                // Nothing to select on: best.safetensors is the last checkpoint.
                say("done: \(summary.iterations) iterations in \(formatDuration(summary.seconds)) (no validation cases)")
            } else {
                say(String(format: "done: %d iterations in %@, best validation Dice %.4f at iteration %d", summary.iterations,
                             formatDuration(summary.seconds), summary.bestDice, summary.bestIteration))
            }
        } catch let interrupted as TrainingInterrupted {
            say(interrupted.description)
            throw ExitCode(130)
        }
    }
}
