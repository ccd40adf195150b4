import Foundation
import Torch

/// Every hyperparameter of a run. Saved resolved (defaults filled in) as `RUN/config.json`;
/// `concord train --config FILE.yaml` reads a partial one (missing keys keep their defaults, see
/// `overriding`).
public struct TrainingConfig: Codable, Sendable {
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
    public var cps: CPSConfig = CPSConfig()
    /// Supervised / mean teacher / CPS: modalities fed to the network (channel indices); empty = all
    /// (early fusion).
    public var inputModalities: [Int] = []
    /// Whether the Dice term of the supervised loss averages over the background class too (MONAI's
    /// and the public CMC code's default) or over the foreground classes only (nnU-Net's).
    public var diceIncludeBackground: Bool = true

    public init() {}

    /// Reads a partial configuration (a JSON object, e.g. parsed from YAML) over the defaults.
    /// Keys are the property names (`learningRate`, `cmc: {lambdaCSC: 0.2}`); a key that is not a
    /// setting is an error naming it, so a typo never silently falls back to a default.
    public static func overriding(_ overrides: [String: Any], base: TrainingConfig = TrainingConfig()) throws -> TrainingConfig {
        let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as! [String: Any]
        var unknown: [String] = []
        let merged = merge(defaults, overrides, path: "", unknown: &unknown)
        if !unknown.isEmpty {
            throw TorchError("config: unknown key(s) \(unknown.sorted().joined(separator: ", ")); known top-level keys: \(defaults.keys.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw TorchError("config: wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)")
        }
    }

    static func merge(_ base: [String: Any], _ over: [String: Any], path: String, unknown: inout [String]) -> [String: Any] {
        var out = base
        for (key, value) in over {
            let here = path.isEmpty ? key : "\(path).\(key)"
            guard let existing = base[key] else { unknown.append(here); continue }
            if let b = existing as? [String: Any], let o = value as? [String: Any] {
                out[key] = merge(b, o, path: here, unknown: &unknown)
            } else {
                out[key] = value
            }
        }
        return out
    }

    /// Checks values a typo could make absurd; the message names the key.
    public func validate() throws {
        func fail(_ s: String) -> TorchError { TorchError("config: \(s)") }
        guard ["cmc", "cml", "mean-teacher", "cps", "supervised"].contains(method) else { throw fail("method must be cmc, cml, mean-teacher, cps or supervised, got '\(method)'") }
        guard iterations > 0 else { throw fail("iterations must be > 0") }
        if unet.encoder == .vit {
            guard unet.rank == 3 else { throw fail("unet.encoder vit is 3D only (unet.rank 3)") }
            let problems = unet.vit.problems()
            guard problems.isEmpty else { throw fail(problems.joined(separator: "; ")) }
        }
        guard patch.count == unet.rank, patch.allSatisfy({ $0 > 0 && $0 % unet.divisor == 0 }) else {
            throw fail("patch \(patch) must have \(unet.rank) sizes divisible by \(unet.divisor) (2^(stages-1); with the ViT encoder also vit.patch)")
        }
        if unet.deepSupervision && unet.widths.count < 4 {
            throw fail("unet.deepSupervision needs at least 4 stages (unet.widths): the lowest-resolution decoder output is not supervised, so \(unet.widths.count) stages leave no auxiliary output")
        }
        if unet.rank == 2 && !["cml", "supervised", "mean-teacher", "cps"].contains(method) {
            throw fail("the 2D (slice-wise) network is available for cml, supervised, mean-teacher and cps, not \(method)")
        }
        guard labeledBatch > 0, unlabeledBatch >= 0 else { throw fail("batch sizes must be positive") }
        guard labeledRatio > 0, labeledRatio <= 1 else { throw fail("labeledRatio must be in (0, 1]") }
        for (name, r) in labeledRatioPerModality where !(r > 0 && r <= 1) {
            throw fail("labeledRatioPerModality.\(name) must be in (0, 1], got \(r)")
        }
        guard ["adam", "adamw", "sgd"].contains(optimizer) else { throw fail("optimizer must be adam, adamw or sgd") }
        guard ["poly", "constant", "cosine"].contains(schedule) else { throw fail("schedule must be poly, constant or cosine") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning_rate must be positive") }
        guard (0..<1).contains(overlap) else { throw fail("overlap must be in [0, 1)") }
        guard validationInterval > 0, checkpointInterval > 0, logInterval > 0 else { throw fail("intervals must be > 0") }
        if method == "cml" && cmlStage1Iterations > iterations { throw fail("cmlStage1Iterations exceeds iterations") }
    }

    /// The patch as cropped from volumes: `patch` itself in 3D; [1, H, W] (single slices) for a 2D
    /// network.
    public var volumePatch: [Int] { unet.rank == 2 ? [1] + patch : patch }

    public func learningRateSchedule() -> LearningRateSchedule {
        switch schedule {
        case "constant": return ConstantLR(learningRate)
        case "cosine": return WarmupCosineLR(base: learningRate, warmupSteps: warmupIterations, totalSteps: iterations)
        default: return PolyLR(base: learningRate, totalSteps: iterations)
        }
    }
}
