import Foundation
import Torch

/// Every hyperparameter of a run. Saved resolved (defaults filled in) as `RUN/config.json` and
/// `RUN/config.yaml`; `concord train --config FILE.yaml` reads a partial one (missing keys keep
/// their defaults).
public struct TrainingConfig: Codable, Sendable {
    public var method: String = "cmc"
    public var seed: UInt64 = 0
    public var iterations: Int = 2000
    public var patch: [Int] = [64, 64, 64]
    public var labeledBatch: Int = 2
    public var unlabeledBatch: Int = 2
    public var foregroundFraction: Double = 0.33
    public var labeledRatio: Double = 0.1
    public var optimizer: String = "adam"          // adam | adamw | sgd
    public var learningRate: Double = 1e-3
    public var weightDecay: Double = 1e-4
    public var momentum: Double = 0.99             // sgd only
    public var schedule: String = "poly"           // poly | constant | cosine
    public var warmupIterations: Int = 0
    public var gradientClip: Double = 12
    public var validationInterval: Int = 200
    public var checkpointInterval: Int = 100
    public var logInterval: Int = 10
    public var overlap: Double = 0.5
    public var windowBatch: Int = 2
    public var device: String = "cpu"
    public var unet: UNetConfig = UNetConfig()
    public var augmentation: Augmentation = Augmentation()
    public var cmc: CMCLossConfig = CMCLossConfig()
    public var cmcSharedEncoder: Bool = false
    public var cml: SemiCMLConfig = SemiCMLConfig()
    /// Semi-CML: iterations of stage 1 (contrastive mutual learning); the rest is PReL. 0 = no PReL.
    public var cmlStage1Iterations: Int = 0
    /// Semi-CML: best checkpoints per network averaged into the PReL teacher.
    public var cmlTeacherCheckpoints: Int = 3
    public var meanTeacher: MeanTeacherConfig = MeanTeacherConfig()
    /// Supervised / mean teacher: modalities fed to the network (channel indices); empty = all
    /// (early fusion).
    public var inputModalities: [Int] = []

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case method, seed, iterations, patch, labeledBatch = "labeled_batch", unlabeledBatch = "unlabeled_batch"
        case foregroundFraction = "foreground_fraction", labeledRatio = "labeled_ratio", optimizer
        case learningRate = "learning_rate", weightDecay = "weight_decay", momentum, schedule
        case warmupIterations = "warmup_iterations", gradientClip = "gradient_clip"
        case validationInterval = "validation_interval", checkpointInterval = "checkpoint_interval"
        case logInterval = "log_interval", overlap, windowBatch = "window_batch", device, unet, augmentation, cmc
        case cmcSharedEncoder = "cmc_shared_encoder", cml, cmlStage1Iterations = "cml_stage1_iterations"
        case cmlTeacherCheckpoints = "cml_teacher_checkpoints", meanTeacher = "mean_teacher"
        case inputModalities = "input_modalities"
    }

    /// Decodes a partial config over the defaults.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        try read(.method, &method); try read(.seed, &seed); try read(.iterations, &iterations); try read(.patch, &patch)
        try read(.labeledBatch, &labeledBatch); try read(.unlabeledBatch, &unlabeledBatch)
        try read(.foregroundFraction, &foregroundFraction); try read(.labeledRatio, &labeledRatio)
        try read(.optimizer, &optimizer); try read(.learningRate, &learningRate); try read(.weightDecay, &weightDecay)
        try read(.momentum, &momentum); try read(.schedule, &schedule); try read(.warmupIterations, &warmupIterations)
        try read(.gradientClip, &gradientClip); try read(.validationInterval, &validationInterval)
        try read(.checkpointInterval, &checkpointInterval); try read(.logInterval, &logInterval)
        try read(.overlap, &overlap); try read(.windowBatch, &windowBatch); try read(.device, &device)
        try read(.unet, &unet); try read(.augmentation, &augmentation); try read(.cmc, &cmc)
        try read(.cmcSharedEncoder, &cmcSharedEncoder); try read(.cml, &cml)
        try read(.cmlStage1Iterations, &cmlStage1Iterations); try read(.cmlTeacherCheckpoints, &cmlTeacherCheckpoints)
        try read(.meanTeacher, &meanTeacher); try read(.inputModalities, &inputModalities)
        // A misspelt key must not silently fall back to a default.
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let given = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        let unknown = given.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "unknown config key(s): \(unknown.joined(separator: ", ")); known: \(known.sorted().joined(separator: ", "))"))
        }
    }

    /// Checks values a typo could make absurd; the message names the key.
    public func validate() throws {
        func fail(_ s: String) -> TorchError { TorchError("config: \(s)") }
        guard ["cmc", "cml", "mean-teacher", "supervised"].contains(method) else { throw fail("method must be cmc, cml, mean-teacher or supervised, got '\(method)'") }
        guard iterations > 0 else { throw fail("iterations must be > 0") }
        guard patch.count == unet.rank, patch.allSatisfy({ $0 > 0 && $0 % unet.divisor == 0 }) else {
            throw fail("patch \(patch) must have \(unet.rank) sizes divisible by \(unet.divisor) (2^(stages-1))")
        }
        guard labeledBatch > 0, unlabeledBatch >= 0 else { throw fail("batch sizes must be positive") }
        guard labeledRatio > 0, labeledRatio <= 1 else { throw fail("labeled_ratio must be in (0, 1]") }
        guard ["adam", "adamw", "sgd"].contains(optimizer) else { throw fail("optimizer must be adam, adamw or sgd") }
        guard ["poly", "constant", "cosine"].contains(schedule) else { throw fail("schedule must be poly, constant or cosine") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning_rate must be positive") }
        guard (0..<1).contains(overlap) else { throw fail("overlap must be in [0, 1)") }
        guard validationInterval > 0, checkpointInterval > 0, logInterval > 0 else { throw fail("intervals must be > 0") }
        if method == "cml" && cmlStage1Iterations > iterations { throw fail("cml_stage1_iterations exceeds iterations") }
    }

    public func learningRateSchedule() -> LearningRateSchedule {
        switch schedule {
        case "constant": return ConstantLR(learningRate)
        case "cosine": return WarmupCosineLR(base: learningRate, warmupSteps: warmupIterations, totalSteps: iterations)
        default: return PolyLR(base: learningRate, totalSteps: iterations)
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
