import Foundation
import Torch

/// The settings every method shares (the keys of a run configuration that no method owns).
public struct SharedTrainingSettings: Codable, Sendable {
    public var method: String = "cmc"
    public var seed: UInt64 = 0
    public var iterations: Int = 2000
    public var patch: [Int] = [64, 64, 64]
    public var labeledBatch: Int = 2
    public var unlabeledBatch: Int = 2
    public var foregroundFraction: Double = 0.33
    public var labeledRatio: Double = 0.1
    /// Unpaired datasets: labelled ratio per modality (channel name -> ratio, e.g. {CT: 0.1,
    /// MR: 0.2}); a modality not listed uses `labeledRatio`. Splits are stratified by modality.
    public var labeledRatioPerModality: [String: Double] = [:]
    public var optimizer: OptimizerKind = .adam
    public var learningRate: Double = 1e-3
    public var weightDecay: Double = 1e-4
    public var momentum: Double = 0.99             // sgd only
    public var schedule: LearningRateScheduleKind = .poly
    /// Linear warm-up of the learning rate over this many iterations, then `schedule` (any of them).
    public var warmupIterations: Int = 0
    public var gradientClip: Double = 12
    public var validationInterval: Int = 200
    public var checkpointInterval: Int = 100
    public var logInterval: Int = 10
    public var overlap: Double = 0.5
    public var windowBatch: Int = 2
    public var device: DeviceSetting = .cpu
    public var unet: UNetConfig = UNetConfig()
    public var augmentation: Augmentation = Augmentation()
    /// Supervised / mean teacher / CPS: modalities fed to the network (channel indices); empty = all
    /// (early fusion).
    public var inputModalities: [Int] = []
    /// Whether the Dice term of the supervised loss averages over the background class too (MONAI's
    /// and the public CMC code's default) or over the foreground classes only (nnU-Net's).
    public var diceIncludeBackground: Bool = true
    /// Whether the Dice term sums each class over the whole batch (nnU-Net's batch Dice) instead of
    /// averaging per-sample Dice (`DiceLoss` says why it matters for small structures).
    public var diceBatch: Bool = false
    /// Arithmetic of the networks' forward passes in training and prediction: fp32, bf16 (CPU and
    /// CUDA) or fp16 (CUDA, with dynamic loss scaling). Losses stay float32 (`MixedPrecision`).
    public var precision: PrecisionSetting = .fp32
    /// Convolution weights and activations in channels-last layout (NDHWC): faster convolutions
    /// with oneDNN/cuDNN on some machines; the numbers are the same up to float rounding order.
    public var channelsLast: Bool = false
    /// Dynamic loss scaling (`GradScaler`): auto = on exactly when precision is fp16; dynamic =
    /// always (harmless in fp32/bf16, where gradients do not underflow); none = never (fp16 then
    /// risks zero gradients).
    public var lossScaling: LossScalingSetting = .auto
    /// The loss scale a run starts from (PyTorch's default 2^16).
    public var initialLossScale: Double = 65536
    /// CUDA only: let cuDNN time its algorithms for the patch size and keep the fastest (on the
    /// CPU there is no cuDNN and training says so when it starts).
    public var cudnnBenchmark: Bool = true
    /// CUDA only: TensorFloat-32 matmuls and convolutions in fp32 mode (Ampere and newer).
    public var tf32: Bool = false
    /// Deterministic algorithms only (libtorch refuses ops that have none): a rerun on the same
    /// machine gives the same numbers, at some cost in speed on GPUs.
    public var deterministic: Bool = false
    /// Data-parallel training (used when the run has several processes; docs/distributed.md).
    public var distributed: DistributedSettings = DistributedSettings()

    public init() {}
}

/// How gradients are reduced in a data-parallel run.
public struct DistributedSettings: Codable, Sendable, Equatable {
    /// Size of c10d's gradient buckets (PyTorch's DDP default, 25 MB): a bucket's all-reduce
    /// starts as soon as all its gradients exist, overlapping the rest of backward.
    public var bucketMB: Double = 25
    /// Let the reducer walk the graph for parameters that get no gradient in an iteration
    /// (a method that leaves some out); costs a graph traversal per iteration. Off: every
    /// trainable parameter must receive a gradient each iteration, as with every built-in method.
    public var findUnusedParameters: Bool = false

    public init() {}
}

/// Every hyperparameter of a run: the shared settings (read as `config.iterations` etc. through
/// dynamic member lookup) and one `MethodSettings` value per registered settings type, all as
/// top-level keys of one object. Saved resolved (defaults filled in) as `RUN/config.json`;
/// `concord train --config FILE.yaml` reads a partial one (missing keys keep their defaults, see
/// `overriding`).
///
/// Why method settings are top-level keys rather than one section per method: runs written
/// before the methods were pluggable have `cmc:`, `cml:`, `cmlStage1Iterations`, `meanTeacher:`...
/// at the top level, and they must still load; each method's settings type declares exactly those
/// keys, so old and new files have one layout and no translation step.
@dynamicMemberLookup
public struct TrainingConfig: Codable, Sendable {
    public var shared = SharedTrainingSettings()
    /// By settings type; a type not stored here reads as its defaults.
    private var methodSettings: [ObjectIdentifier: any MethodSettings] = [:]

    public init() {
        for type in MethodRegistry.settingsTypes { methodSettings[ObjectIdentifier(type)] = type.init() }
    }

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<SharedTrainingSettings, T>) -> T {
        get { shared[keyPath: keyPath] }
        set { shared[keyPath: keyPath] = newValue }
    }

    /// A method's settings (its defaults when the configuration has none).
    public func settings<S: MethodSettings>(_ type: S.Type) -> S {
        methodSettings[ObjectIdentifier(type)] as? S ?? S()
    }

    public mutating func setSettings<S: MethodSettings>(_ value: S) {
        methodSettings[ObjectIdentifier(S.self)] = value
    }

    /// The top-level keys of the shared settings.
    static var sharedKeys: [String] {
        ((try? JSONSerialization.jsonObject(with: JSONEncoder().encode(SharedTrainingSettings()))) as? [String: Any] ?? [:]).keys.sorted()
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// One object: the shared keys, then each registered settings type's keys.
    public func encode(to encoder: Encoder) throws {
        try shared.encode(to: encoder)
        for type in MethodRegistry.settingsTypes {
            try (methodSettings[ObjectIdentifier(type)] ?? type.init()).encode(to: encoder)
        }
    }

    /// Strict: every shared key must be present (`overriding` fills in defaults first); a settings
    /// type none of whose keys are present takes its defaults (a method registered after the file
    /// was written); a key nobody owns is an error.
    public init(from decoder: Decoder) throws {
        let present = Set(try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue))
        var known = Set(Self.sharedKeys)
        shared = try SharedTrainingSettings(from: decoder)
        for type in MethodRegistry.settingsTypes {
            let keys = MethodRegistry.keys(of: type)
            known.formUnion(keys)
            methodSettings[ObjectIdentifier(type)] = keys.contains(where: present.contains) ? try type.init(from: decoder) : type.init()
        }
        let unknown = present.subtracting(known)
        guard unknown.isEmpty else {
            throw SegmentationError.config("unknown setting(s) \(unknown.sorted().joined(separator: ", "))")
        }
    }

    /// Reads a partial configuration (a JSON object, e.g. parsed from YAML) over the defaults.
    /// Keys are the property names (`learningRate`, `cmc: {lambdaCSC: 0.2}`); a key that is not a
    /// setting is an error naming it, so a typo never silently falls back to a default.
    /// `source` names the file in messages.
    public static func overriding(_ overrides: [String: Any], base: TrainingConfig = TrainingConfig(),
                                  source: String = "config") throws -> TrainingConfig {
        try SettingsDecoding.decode(TrainingConfig.self, overrides: overrides, defaults: base, source: source)
    }

    /// Checks values a typo could make absurd, then the chosen method's own settings; the message
    /// names the key.
    public func validate() throws {
        func fail(_ s: String) -> SegmentationError { .config(s) }
        guard let definition = MethodRegistry.definition(named: self.method) else {
            throw SegmentationError.unknownMethod(name: self.method, known: MethodRegistry.names)
        }
        guard self.iterations > 0 else { throw fail("iterations must be > 0") }
        if self.unet.encoder == .vit {
            guard self.unet.rank == 3 else { throw fail("unet.encoder vit is 3D only (unet.rank 3)") }
            let problems = self.unet.vit.problems()
            guard problems.isEmpty else { throw fail(problems.joined(separator: "; ")) }
        }
        let topology = self.unet.topologyProblems()
        guard topology.isEmpty else { throw fail(topology.joined(separator: "; ")) }
        let divisors = self.unet.divisors
        guard self.patch.count == self.unet.rank, zip(self.patch, divisors).allSatisfy({ $0 > 0 && $0 % $1 == 0 }) else {
            let divisorText = Set(divisors).count == 1 ? "\(divisors[0])" : "\(divisors) (D, H, W)"
            throw fail("patch \(self.patch) must have \(self.unet.rank) sizes divisible by \(divisorText) (per axis the product of the stage strides, 2^(stages-1) by default; with the ViT encoder also vit.patch)")
        }
        if self.unet.deepSupervision && self.unet.widths.count < 4 {
            throw fail("unet.deepSupervision needs at least 4 stages (unet.widths): the lowest-resolution decoder output is not supervised, so \(self.unet.widths.count) stages leave no auxiliary output")
        }
        guard self.labeledBatch > 0, self.unlabeledBatch >= 0 else { throw fail("batch sizes must be positive") }
        guard self.labeledRatio > 0, self.labeledRatio <= 1 else { throw fail("labeledRatio must be in (0, 1]") }
        for (name, r) in self.labeledRatioPerModality where !(r > 0 && r <= 1) {
            throw fail("labeledRatioPerModality.\(name) must be in (0, 1], got \(r)")
        }
        guard self.learningRate > 0, self.learningRate.isFinite else { throw fail("learning_rate must be positive") }
        guard self.warmupIterations >= 0, self.warmupIterations < self.iterations else {
            throw fail("warmupIterations must be in [0, iterations (\(self.iterations))), got \(self.warmupIterations)")
        }
        guard (0..<1).contains(self.overlap) else { throw fail("overlap must be in [0, 1)") }
        guard self.validationInterval > 0, self.checkpointInterval > 0, self.logInterval > 0 else { throw fail("intervals must be > 0") }
        guard self.distributed.bucketMB > 0, self.distributed.bucketMB.isFinite else {
            throw fail("distributed.bucketMB must be positive, got \(self.distributed.bucketMB)")
        }
        try settings(definition.settingsType).validate(in: self)
    }

    /// The patch as cropped from volumes: `patch` itself in 3D; [1, H, W] (single slices) for a 2D
    /// network.
    public var volumePatch: [Int] { self.unet.rank == 2 ? [1] + self.patch : self.patch }

    public func learningRateSchedule() -> LearningRateSchedule {
        // Every schedule honours warmupIterations: a linear warm-up, then the schedule over the
        // remaining iterations (cosine has the warm-up built in).
        let warmup = self.warmupIterations
        switch self.schedule {
        case .cosine: return WarmupCosineLR(base: self.learningRate, warmupSteps: warmup, totalSteps: self.iterations)
        case .constant:
            let constant = ConstantLR(self.learningRate)
            return warmup > 0 ? LinearWarmupLR(warmupSteps: warmup, then: constant) : constant
        case .poly:
            guard warmup > 0 else { return PolyLR(base: self.learningRate, totalSteps: self.iterations) }
            return LinearWarmupLR(warmupSteps: warmup, then: PolyLR(base: self.learningRate, totalSteps: self.iterations - warmup))
        }
    }
}
