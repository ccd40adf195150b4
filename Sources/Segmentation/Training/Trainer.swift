import Foundation
import Torch

/// What the trainer trains on: prepared cases and their names.
public struct TrainingData {
    public var modalityNames: [String]
    public var numClasses: Int
    public var paired: Bool
    public var labeled: [PreparedCase]
    public var unlabeled: [PreparedCase]
    public var validation: [PreparedCase]
    /// Voxel size in mm along the tensor axes (D, H, W) of the prepared cases.
    public var spacing: [Double]

    public init(modalityNames: [String], numClasses: Int, paired: Bool, labeled: [PreparedCase], unlabeled: [PreparedCase],
                validation: [PreparedCase], spacing: [Double] = [1, 1, 1]) {
        self.modalityNames = modalityNames; self.numClasses = numClasses; self.paired = paired
        self.labeled = labeled; self.unlabeled = unlabeled; self.validation = validation; self.spacing = spacing
    }
}

/// Thrown when a run stopped on Ctrl-C after saving its checkpoint.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let iteration: Int
    public var description: String { "training interrupted at iteration \(iteration); checkpoint saved, continue with --resume" }
}

/// The end of a run.
public struct TrainingSummary {
    public var iterations: Int
    public var bestIteration: Int
    public var bestDice: Double
    public var seconds: Double
    public var stoppedByDeadline: Bool = false
}

/// The method-agnostic training loop: batches, losses by name, optimizer, LR schedule, gradient
/// clipping, periodic validation with the best checkpoint kept, periodic atomic checkpoints,
/// progress with ETA, Ctrl-C handling and bit-exact resumption.
///
/// Determinism: the batch of iteration i is a function of (seed, i) and libtorch's generator is
/// re-seeded from (seed, i) before every step, so a resumed run computes exactly what the
/// uninterrupted run would have.
///
/// Data parallel (`parallel` given; docs/distributed.md): rank 0's initial weights are broadcast,
/// each rank draws its own elements of the global batch, c10d's Reducer averages the gradients
/// during backward, validation is sharded over the ranks and its sums all-reduced (every rank
/// sees the same scores, so method hooks decide alike), the ranks agree every iteration on
/// stopping (Ctrl-C, the deadline), and rank 0 alone writes the log and the checkpoints.
public final class Trainer {
    public let config: TrainingConfig
    public let data: TrainingData
    public let run: URL
    public let method: SegmentationMethod
    public var optimizer: Optimizer
    let schedule: LearningRateSchedule
    let inference: SlidingWindowInference
    let device: Device
    /// The networks' autocast policy (nil = fp32) and, for fp16, the loss scaler.
    let precision: MixedPrecision?
    let scaler: GradScaler?
    /// Optimizer steps skipped by the loss scaler (inf/NaN gradients), for the log.
    var skippedSteps = 0
    let output: (String) -> Void
    var bestDice = -1.0
    var bestIteration = 0
    var startIteration = 0
    /// When `train` started (for the elapsed time of a validation a method asks for).
    var trainingStart = Date()
    /// The open log while `train` runs (a method's hooks write events to it).
    var currentLog: TrainingLog?
    /// This process's part in a data-parallel run (nil: a single process).
    public let parallel: DataParallel?
    /// c10d's gradient reducer over the trainable parameters (data-parallel runs).
    var reducer: GradientReducer?
    /// Rank 0 (or a single process) writes the log and the checkpoints.
    var isPrimary: Bool { parallel?.isPrimary ?? true }

    public var checkpointDirectory: URL { run.appendingPathComponent("checkpoints") }
    public var lastCheckpoint: URL { checkpointDirectory.appendingPathComponent("last.safetensors") }
    public var bestCheckpoint: URL { checkpointDirectory.appendingPathComponent("best.safetensors") }

    public init(config: TrainingConfig, data: TrainingData, run: URL, resume: Bool, parallel: DataParallel? = nil,
                output: @escaping (String) -> Void = { print($0) }) throws {
        try config.validate()
        // A data-parallel rank on CUDA uses the GPU of its local rank.
        let device = try parallel?.device(config.device) ?? config.device.resolve()
        self.config = config; self.data = data; self.run = run; self.output = output; self.device = device
        self.parallel = parallel
        try Runtime.manualSeed(config.seed)
        method = try MethodRegistry.make(config: config, modalityNames: data.modalityNames, numClasses: data.numClasses)
        // Pretrained ViT weights: read now for a new run (a resumed one has them in its checkpoint);
        // either way the frozen backbone is frozen before the optimizer takes its parameter list.
        if config.unet.encoder == .vit, try preparePretrainedViT(in: method.model, config: config.unet.vit, load: !resume) > 0 {
            output("ViT encoder: " + (resume ? "" : "weights from \(config.unet.vit.pretrained), ")
                   + (config.unet.vit.freezePretrained ? "backbone frozen" : "all trainable"))
        }
        try method.model.to(device)
        // Every rank starts from rank 0's weights (a resumed run then loads the same checkpoint).
        try parallel?.broadcast(method.model)
        precision = try config.precision.policy(on: device)
        scaler = config.lossScaling.enabled(for: config.precision) ? try GradScaler(initialScale: config.initialLossScale) : nil
        try Trainer.configureBackends(config, device: device, model: method.model, output: output)
        method.model.setMixedPrecision(precision)
        optimizer = try Trainer.makeOptimizer(config, method.trainableParameters)
        schedule = config.learningRateSchedule()
        inference = SlidingWindowInference(patch: config.volumePatch, overlap: config.overlap, windowBatch: config.windowBatch, device: device)
        if isPrimary { try FileManager.default.createDirectory(at: checkpointDirectory, withIntermediateDirectories: true) }
        if resume { try restore() }
    }

    /// Memory layout and the backend switches, once per run; says what applies on this device.
    static func configureBackends(_ config: TrainingConfig, device: Device, model: Module, output: (String) -> Void) throws {
        if config.channelsLast { try model.convert(to: config.unet.rank == 3 ? .channelsLast3d : .channelsLast) }
        if case .cuda = device {
            try Runtime.setCuDNNBenchmark(config.cudnnBenchmark)
            try Runtime.setTF32(config.tf32)
        } else if config.tf32 {
            throw SegmentationError.config("tf32 applies to CUDA devices only; this run is on \(device)")
        }
        if config.deterministic { try Runtime.setDeterministic(true) }
        var notes = ["precision \(config.precision.rawValue)"]
        if config.channelsLast { notes.append("channels-last") }
        if case .cuda = device { notes.append("cuDNN benchmark \(config.cudnnBenchmark ? "on" : "off"), TF32 \(config.tf32 ? "on" : "off")") }
        if config.deterministic { notes.append("deterministic algorithms") }
        output("device \(device): " + notes.joined(separator: ", "))
    }

    static func makeOptimizer(_ config: TrainingConfig, _ parameters: [Parameter]) throws -> Optimizer {
        switch config.optimizer {
        case .sgd: return try SGD(parameters, learningRate: config.learningRate, momentum: config.momentum,
                                   weightDecay: config.weightDecay, nesterov: true)
        case .adamw: return Adam.adamW(parameters, learningRate: config.learningRate, weightDecay: config.weightDecay)
        case .adam: return Adam(parameters, learningRate: config.learningRate, weightDecay: config.weightDecay)
        }
    }

    // MARK: checkpoints

    func checkpoint(iteration: Int) throws -> Checkpoint {
        let state = try method.checkpointState()
        var meta = state.metadata
        let trainerKeys = ["iteration": "\(iteration)", "best_dice": "\(bestDice)", "best_iteration": "\(bestIteration)", "method": method.name,
                           "world_size": "\(worldSize)", "global_batch": "\(config.labeledBatch * worldSize),\(config.unlabeledBatch * worldSize)"]
        for (key, value) in trainerKeys {
            guard meta[key] == nil else { throw SegmentationError.invalidMethod("method \(method.name): checkpoint metadata key '\(key)' is the trainer's") }
            meta[key] = value
        }
        if let scaler {
            // The loss scale and its growth counter: a resumed fp16 run scales exactly as before.
            meta["grad_scaler"] = String(decoding: try JSONEncoder().encode(scaler.state), as: UTF8.self)
        }
        return Checkpoint(model: try method.model.stateDict(), optimizer: try optimizer.stateTensors(), extra: state.tensors, metadata: meta)
    }

    func restore() throws {
        guard FileManager.default.fileExists(atPath: lastCheckpoint.path) else {
            throw SegmentationError.invalidRun(path: lastCheckpoint.path, problem: "no checkpoint to resume from (--resume)")
        }
        let ck = try Checkpoint.read(lastCheckpoint)
        guard ck.metadata["method"] == method.name else {
            throw SegmentationError.invalidRun(path: lastCheckpoint.path, problem: "--resume: checkpoint is for method \(ck.metadata["method"] ?? "?"), config says \(method.name)")
        }
        if let saved = ck.metadata["world_size"].flatMap(Int.init), saved != worldSize {
            // Batch sizes are per process and a resume keeps the run's settings, so another world
            // size would change the global batch, and with it which samples every later iteration
            // draws: not a continuation of this run.
            throw SegmentationError.invalidRun(path: lastCheckpoint.path, problem: "--resume: the checkpoint was written by a run of \(saved) process(es) "
                + "(global batch \(ck.metadata["global_batch"] ?? "?") labelled,unlabelled); this launch has \(worldSize). Resume with \(saved) process(es)"
                + (saved > 1 ? " (--nproc \(saved) or the same launcher settings)" : ""))
        }
        try method.model.loadStateDict(ck.modelDictionary)
        try method.restore(from: ck.methodState)
        try rebuildOptimizerIfParametersChanged()
        try optimizer.loadState(ck.optimizerDictionary)
        if let scaler {
            guard let text = ck.metadata["grad_scaler"] else {
                throw SegmentationError.invalidRun(path: lastCheckpoint.path, problem: "--resume with precision fp16: the checkpoint has no loss-scaler state (it was written by a run in another precision)")
            }
            try scaler.load(JSONDecoder().decode(GradScaler.State.self, from: Data(text.utf8)))
        }
        startIteration = ck.iteration
        bestDice = Double(ck.metadata["best_dice"] ?? "") ?? -1
        bestIteration = Int(ck.metadata["best_iteration"] ?? "") ?? 0
        if isPrimary { try TrainingLog.truncate(url: run.appendingPathComponent("log.jsonl"), after: startIteration) }
        output("resuming from iteration \(startIteration) (\(lastCheckpoint.path))")
    }

    /// A hook may change what is trainable (PReL trains the student only): the optimizer then
    /// starts over on the new parameter list, as a new stage should.
    func rebuildOptimizerIfParametersChanged() throws {
        let now = method.trainableParameters
        guard !now.elementsEqual(optimizer.parameters, by: ===) else { return }
        optimizer = try Trainer.makeOptimizer(config, now)
        if reducer != nil { try makeReducer() }
    }

    var worldSize: Int { parallel?.worldSize ?? 1 }

    /// A reducer over the current trainable parameters (again when a hook changed them).
    func makeReducer() throws {
        guard let parallel else { return }
        reducer = nil   // the old one's autograd hooks go first
        reducer = try GradientReducer(group: parallel.group, parameters: optimizer.parameters, bucketMB: config.distributed.bucketMB,
                                      findUnusedParameters: config.distributed.findUnusedParameters)
    }

    /// Writes a checkpoint (rank 0 only; the others hold the same state, checked first).
    func save(iteration: Int, to url: URL) throws {
        try parallel?.verifyReplicasAgree(method.model, iteration: iteration)
        guard isPrimary else { return }
        try checkpoint(iteration: iteration).write(to: url)
    }

    // MARK: the loop

    /// Trains up to `config.iterations`, or stops after `stoppingAt` iterations with a checkpoint
    /// (as an interrupted run would; used to test resumption).
    ///
    /// With a `deadline`, training ends early (not as an interruption) when the time is up: the
    /// last and best checkpoints are written and the summary says how far it got.
    public func train(stoppingAt stop: Int? = nil, deadline: Date? = nil) throws -> TrainingSummary {
        guard let parallel else { return try trainLoop(stoppingAt: stop, deadline: deadline) }
        var iteration = startIteration
        do {
            return try trainLoop(stoppingAt: stop, deadline: deadline) { iteration = $0 }
        } catch let interrupted as TrainingInterrupted {
            throw interrupted
        } catch {
            // Name the rank that stopped, when it was another one.
            throw parallel.diagnose(error, iteration: iteration)
        }
    }

    func trainLoop(stoppingAt stop: Int?, deadline: Date?, reached: (Int) -> Void = { _ in }) throws -> TrainingSummary {
        let log = isPrimary ? try TrainingLog(url: run.appendingPathComponent("log.jsonl")) : try TrainingLog.discarding()
        var augmentation = config.augmentation
        augmentation.spacing = data.spacing
        let source = try BatchSource(labeled: data.labeled, unlabeled: method.usesUnlabeledData ? data.unlabeled : [],
                                     labeledBatch: config.labeledBatch, unlabeledBatch: config.unlabeledBatch, paired: data.paired,
                                     sampler: PatchSampler(patch: config.volumePatch, foregroundFraction: config.foregroundFraction),
                                     augmentation: augmentation, seed: config.seed, rank: parallel?.rank ?? 0)
        let onGPU = device != .cpu
        let prefetcher = BatchPrefetcher(source: source, from: startIteration, to: config.iterations, pinMemory: onGPU)
        let batchFormat: MemoryFormat? = config.channelsLast ? (config.unet.rank == 3 ? .channelsLast3d : .channelsLast) : nil
        try Runtime.resetPeakMemory(on: device)
        defer { prefetcher.stop() }
        InterruptFlag.shared.install()
        if parallel != nil { try makeReducer() }
        defer { reducer = nil }
        method.model.train()
        let start = Date()
        trainingStart = start
        currentLog = log
        defer { currentLog = nil }
        var windowStart = Date(), windowIterations = 0
        var iteration = startIteration
        if iteration == 0 { log.event(iteration: 0, "start \(method.name), \(method.model.parameterCount) parameters") }
        var timeUp = false
        while iteration < config.iterations {
            reached(iteration)
            var timeIsUp = deadline.map { Date() >= $0 } ?? false
            var interrupted = InterruptFlag.shared.isRaised || iteration == stop
            if let parallel {
                // Every rank stops at the same iteration: any rank's Ctrl-C or deadline stops all.
                let agreed = try parallel.any([timeIsUp, interrupted])
                timeIsUp = agreed[0]; interrupted = agreed[1]
            }
            if timeIsUp {
                timeUp = true
                output("time budget reached at iteration \(iteration) of \(config.iterations)")
                log.event(iteration: iteration, "time budget reached")
                try validateAndKeepBest(iteration: iteration, log: log, elapsed: Date().timeIntervalSince(start))
                try save(iteration: iteration, to: lastCheckpoint)
                break
            }
            if interrupted {
                try save(iteration: iteration, to: lastCheckpoint)
                log.event(iteration: iteration, "interrupted; checkpoint saved")
                throw TrainingInterrupted(iteration: iteration)
            }
            try method.willStartIteration(iteration, context: self)
            try rebuildOptimizerIfParametersChanged()
            // Re-seed per iteration: dropout and noise depend only on (seed, iteration).
            // Rank r > 0 of a data-parallel run draws from its own stream.
            try Runtime.manualSeed(config.seed &* 1_000_003 &+ UInt64(iteration) &+ UInt64(parallel?.rank ?? 0) &* 0x9E37_79B9_7F4A_7C15)
            let batch = try prefetcher.batch(iteration: iteration).to(device, nonBlocking: onGPU, memoryFormat: batchFormat)
            let progress = TrainingProgress(step: iteration, totalSteps: config.iterations)
            optimizer.learningRate = schedule.rate(at: iteration)
            try optimizer.zeroGrad()
            let terms = try method.losses(batch, progress: progress)
            try reducer?.prepareForBackward([terms.total])
            if let scaler {
                try scaler.scale(terms.total).backward()
                // Clip the true gradients: unscale first (a no-op for the check in step).
                if config.gradientClip > 0, try !scaler.unscale(optimizer.parameters) {
                    try clipGradNorm(optimizer.parameters, maxNorm: config.gradientClip)
                }
                if try !scaler.step(optimizer) { skippedSteps += 1 }
                try scaler.update()
            } else {
                try terms.total.backward()
                if config.gradientClip > 0 { try clipGradNorm(optimizer.parameters, maxNorm: config.gradientClip) }
                try optimizer.step()
            }
            try method.afterOptimizerStep(progress: progress)
            iteration += 1
            windowIterations += 1
            if iteration % config.logInterval == 0 || iteration == config.iterations || iteration == startIteration + 1 {
                let values = try terms.values()
                guard values.allSatisfy({ $0.1.isFinite }) else {
                    throw SegmentationError.nonFiniteLoss(iteration: iteration, terms: values.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
                }
                let elapsed = Date().timeIntervalSince(start)
                let peakMB = Double(try Runtime.memory(on: device).peak) / 1_048_576
                var extra: [String: Any] = ["peak_memory_mb": peakMB]
                if let scaler { extra["loss_scale"] = scaler.scale; extra["skipped_steps"] = skippedSteps }
                log.train(iteration: iteration, lr: optimizer.learningRate, elapsed: elapsed, losses: values, extra: extra)
                let rate = Double(windowIterations) / Swift.max(Date().timeIntervalSince(windowStart), 1e-9)
                windowStart = Date(); windowIterations = 0
                let eta = Double(config.iterations - iteration) / Swift.max(rate, 1e-9)
                let text = values.map { String(format: "%@ %.4f", $0.0, $0.1) }.joined(separator: "  ")
                let scaling = scaler.map { String(format: "  scale %.0f (%d skipped)", $0.scale, skippedSteps) } ?? ""
                output(String(format: "it %d/%d  %@  lr %.2e  %.2f it/s  peak %.0f MB%@  ETA %@", iteration, config.iterations, text,
                              optimizer.learningRate, rate, peakMB, scaling, formatDuration(eta)))
            }
            if iteration % config.validationInterval == 0 || iteration == config.iterations {
                try validateAndKeepBest(iteration: iteration, log: log, elapsed: Date().timeIntervalSince(start))
            }
            if iteration % config.checkpointInterval == 0 || iteration == config.iterations {
                try save(iteration: iteration, to: lastCheckpoint)
            }
        }
        var bestMissing = isPrimary && !FileManager.default.fileExists(atPath: bestCheckpoint.path)
        if let parallel { bestMissing = try parallel.any([bestMissing])[0] }   // rank 0 decides for all (save is collective)
        if bestMissing { try save(iteration: iteration, to: bestCheckpoint) }
        log.event(iteration: iteration, "done; best mean Dice \(bestDice) at iteration \(bestIteration)")
        return TrainingSummary(iterations: iteration, bestIteration: bestIteration, bestDice: bestDice,
                               seconds: Date().timeIntervalSince(start), stoppedByDeadline: timeUp)
    }

    @discardableResult
    func validateAndKeepBest(iteration: Int, log: TrainingLog, elapsed: Double) throws -> [[Int: Double]?] {
        guard !data.validation.isEmpty else { return [] }
        let heads = try validationScores()
        guard let final = method.selectionDice(heads) else { return heads }   // the final head, or what the method selects by
        var extra: [String: Any] = [:]
        for (h, scores) in heads.enumerated() where h < method.outputNames.count {
            if let scores { extra["head_\(method.outputNames[h])"] = scores.meanValue }
        }
        log.validation(iteration: iteration, elapsed: elapsed, meanDice: final.meanValue, classDice: final, extra: extra)
        let perClass = final.sorted { $0.key < $1.key }.map { String(format: "%d:%.3f", $0.key, $0.value) }.joined(separator: " ")
        output(String(format: "validation it %d: mean Dice %.4f (%@)", iteration, final.meanValue, perClass))
        // Before the best checkpoint is written, so that it holds what the method keeps from this
        // validation (CMC's branch Dice for validated fusion), not the previous one's.
        try method.didValidate(iteration: iteration, heads: heads, context: self)
        if final.meanValue > bestDice {
            bestDice = final.meanValue
            bestIteration = iteration
            try save(iteration: iteration, to: bestCheckpoint)
        }
        return heads
    }
}

extension Trainer {
    /// Per head, the mean over validation cases of the per-class Dice. Data parallel: rank r
    /// scores cases r, r + N, ...; the sums and case counts are all-reduced, so every rank gets
    /// the same means (up to the order of the float64 additions).
    func validationScores() throws -> [[Int: Double]?] {
        guard let parallel else {
            return try validate(method: method, cases: data.validation, inference: inference, numClasses: data.numClasses)
        }
        let mine = stride(from: parallel.rank, to: data.validation.count, by: parallel.worldSize).map { data.validation[$0] }
        let local = try validationSums(method: method, cases: mine, inference: inference, numClasses: data.numClasses)
        let heads = method.outputNames.count, classes = Array(1..<data.numClasses)
        // Layout: per head, a presence flag then the class sums; the case count last.
        var flat: [Double] = []
        for h in 0..<heads {
            let scores = h < local.heads.count ? local.heads[h] : nil
            flat.append(scores == nil ? 0 : 1)
            flat += classes.map { scores?[$0] ?? 0 }
        }
        flat.append(Double(local.cases))
        let total = try parallel.sum(flat)
        let count = total.last ?? 0
        guard count > 0 else { return Array(repeating: nil, count: heads) }
        return (0..<heads).map { h in
            let base = h * (classes.count + 1)
            guard total[base] > 0 else { return nil }
            return Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, total[base + 1 + $0] / count) })
        }
    }
}

/// What a method's hooks may do during training.
extension Trainer: MethodTrainingContext {
    public var modalityNames: [String] { data.modalityNames }

    public func event(iteration: Int, _ message: String) {
        currentLog?.event(iteration: iteration, message)
        output(message)
    }

    public func validateNow(iteration: Int) throws -> [[Int: Double]?] {
        guard let log = currentLog else { throw SegmentationError.invalidMethod("validateNow: called outside training") }
        return try validateAndKeepBest(iteration: iteration, log: log, elapsed: Date().timeIntervalSince(trainingStart))
    }
}

public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
