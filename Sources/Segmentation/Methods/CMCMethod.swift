import Essentials
import Foundation
import Torch

/// Loss weights and schedule of CMC.
public struct CMCLossConfig: Codable, Sendable {
    public var lambdaCSC: Double = 0.1
    public var lambdaCAC: Double = 0.1
    public var temperatureCSC: Double = 0.5
    public var temperatureCAC: Double = 0.5
    /// Pooled grid of the channel embeddings (per axis).
    public var cscGrid: Int = 4
    /// Pooling of region maps before CAC (per axis), for misaligned modalities.
    public var cacPool: Int = 2
    /// Unpaired mode: grid (per axis) the region maps are pooled to before CAC.
    public var unpairedGrid: Int = 4
    /// w(t) = exp(-5 (1 - t)^2) with t = (progress - rampStart) / (rampEnd - rampStart), as fractions of training.
    public var rampStart: Double = 0
    public var rampEnd: Double = 1
    /// Apply L_CSC to the labelled batch too (the method applies it to labelled and unlabelled data).
    public var cscOnLabeled: Bool = true
    /// Modality dropout: the probability, per training batch, that one modality (chosen uniformly)
    /// is removed from the whole batch, labelled and unlabelled parts alike, so the network trains
    /// under its missing-modality rule (the branch is skipped, its fusion slot is zeros). That
    /// batch's supervised term averages the present branches only, and CSC / CAC are taken over
    /// present modality pairs only (none with two modalities: those terms are left out of that
    /// step and of its log line). Drawn from a generator keyed by (seed, iteration), so runs and
    /// resumes stay deterministic. 0 = off. Per batch rather than per element because a missing
    /// modality is a whole input tensor left out (nil), exactly as at inference.
    public var modalityDropout: Double = 0
    public init() {}
}

/// `cmcFusion`: how CMC's final answer combines its branches.
public enum CMCFusion: String, SettingChoice {
    /// The mean of the branches' probabilities (the paper's).
    case mean
    /// Per class, the branches' probabilities weighted by their Dice on that class at the last
    /// validation (`CMCMethod.fusionWeights`). Uses the validation labels a second time, so it is
    /// reported as its own variant, never as plain CMC.
    case validated
}

/// CMC's settings: the top-level keys `cmc` (loss weights and schedule), `cmcSharedEncoder`,
/// `cmcAttention` and `cmcFusion`.
public struct CMCSettings: MethodSettings {
    public var cmc = CMCLossConfig()
    /// One encoder for every modality instead of one each.
    public var cmcSharedEncoder = false
    /// MIA channel attention on. false (the "without MIA" ablation): every gamma stays frozen at
    /// its initial 0, so each attention block is the identity throughout training.
    public var cmcAttention = true
    /// The final answer: the branches' mean, or weighted per class by validation Dice.
    public var cmcFusion = CMCFusion.mean
    public init() {}

    public func validate(in config: TrainingConfig) throws {
        guard (0...1).contains(cmc.modalityDropout) else {
            throw SegmentationError.config("cmc.modalityDropout must be in [0, 1] (a probability per batch), got \(cmc.modalityDropout)")
        }
        if config.unet.rank != 3 {
            throw SegmentationError.config("the 2D (slice-wise) network is not available for cmc (unet.rank must be 3)")
        }
    }
}

/// CMC (Zhou et al., MICCAI 2024): L = L_sup + w(t) (lambda_csc L_CSC + lambda_cac L_CAC).
///
/// Unlike the public reference code, both unlabelled terms are computed with gradients (they
/// train the encoders and decoders; a test checks it), the channel loss works on pooled
/// embeddings (memory independent of the patch size), and each modality has its own encoder.
/// Labelled and unlabelled samples go through the network in one forward pass.
///
/// Unpaired mode (a CT cohort and an MR cohort): batch element b of modality m is a different
/// patient for each m. L_sup uses each modality's own labels; L_CSC compares pooled channel
/// embeddings (already tolerant to any spatial mismatch within its 4^3 cells); L_CAC compares
/// region maps pooled to `unpairedGrid`^3, i.e. the coarse layout of each structure, since voxels of
/// two patients do not correspond.
public final class CMCMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "cmc", summary: "CMC, one encoder-decoder branch per modality with channel and anatomical consistency (paired or unpaired)",
        settings: CMCSettings.self
    ) { context, settings in
        let network = try CMCNetwork(config: CMCConfig(modalities: context.modalityNames.count, numClasses: context.numClasses,
                                                       unet: context.unet, sharedEncoder: settings.cmcSharedEncoder))
        if !settings.cmcAttention { for a in network.attention { a.gamma.isFrozen = true } }
        return CMCMethod(network: network, modalityNames: context.modalityNames, config: settings.cmc,
                         supervised: context.supervisedLoss, seed: context.config.seed, fusion: settings.cmcFusion)
    }

    public let name = "cmc"
    public let network: CMCNetwork
    public let modalityNames: [String]
    public let config: CMCLossConfig
    public var supervised = DiceCELoss()
    public let csc: ChannelSemanticConsistencyLoss
    public let cac: ContrastiveAnatomicalConsistencyLoss
    /// The run's seed, for the modality-dropout draws.
    public let seed: UInt64
    public let fusion: CMCFusion
    /// Per branch, its class Dice at the last validation (what `validated` fusion weighs by); nil
    /// before the first validation, or when a branch had no cases. Saved in checkpoints.
    public private(set) var branchDice: [[Int: Double]]?

    public init(network: CMCNetwork, modalityNames: [String], config: CMCLossConfig = CMCLossConfig(),
                supervised: DiceCELoss = DiceCELoss(), seed: UInt64 = 0, fusion: CMCFusion = .mean) {
        self.network = network
        self.seed = seed
        self.fusion = fusion
        self.supervised = supervised
        self.modalityNames = modalityNames
        self.config = config
        csc = ChannelSemanticConsistencyLoss(temperature: config.temperatureCSC, grid: config.cscGrid)
        cac = ContrastiveAnatomicalConsistencyLoss(temperature: config.temperatureCAC, pool: config.cacPool)
    }

    public var model: Module { network }
    public var trainableParameters: [Parameter] { network.trainableParameters() }
    /// The branches, then the final answer ("mean", or "weighted" with validated fusion).
    public var outputNames: [String] { modalityNames + [fusion == .mean ? "mean" : "weighted"] }

    public func rampWeight(_ progress: TrainingProgress) -> Double {
        let span = Swift.max(config.rampEnd - config.rampStart, 1e-9)
        let t = (progress.fraction - config.rampStart) / span
        if t < 0 { return 0 }
        let clamped = Swift.min(t, 1)
        return Foundation.exp(-5 * (1 - clamped) * (1 - clamped))
    }

    /// The modality removed from the batch of training step `step` by modality dropout (nil: none).
    /// With probability `modalityDropout` one of `modalities`, uniformly; from a generator keyed by
    /// (seed, step), so it does not depend on what ran before.
    public func droppedModality(step: Int, modalities: Int) -> Int? {
        guard config.modalityDropout > 0 else { return nil }
        var rng = SeededGenerator(seed: seed, stream: [SeededGenerator.key("cmcdrop"), UInt64(step)])
        guard rng.unit() < config.modalityDropout else { return nil }
        return rng.below(modalities)
    }

    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        let m = batch.modalities
        let nl = batch.labeledImages[0].size(0)
        let dropped = droppedModality(step: progress.step, modalities: m)
        let present = (0..<m).filter { $0 != dropped }
        let inputs: [Tensor?] = try (0..<m).map { i in
            if i == dropped { return nil }
            return batch.hasUnlabeled ? try Tensor.cat([batch.labeledImages[i], batch.unlabeledImages[i]], dim: 0) : batch.labeledImages[i]
        }
        let out = try network(inputs, auxiliary: true)
        // Present modalities only (all of them unless modality dropout removed one).
        let logits = present.map { out.logits[$0]! }, bottlenecks = present.map { out.bottlenecks[$0]! }
        // Deep supervision (when on) applies to this term only; CSC and CAC read the full-resolution
        // logits and the bottlenecks.
        let sup = try mean(of: present.indices.map { j in
            try supervised(outputs: labeledPart([logits[j]] + out.auxiliaryLogits[present[j]], nl), target: batch.labels[present[j]])
        })
        let w = rampWeight(progress)
        var terms: [(name: String, value: Tensor)] = [("sup", sup)]
        var parts: [(Tensor, Double)] = [(sup, 1)]
        let total0 = logits[0].size(0)
        // CSC on labelled + unlabelled (or unlabelled only) bottlenecks.
        let cscStart = config.cscOnLabeled ? 0 : nl
        if total0 > cscStart, present.count >= 2 {
            let features = try bottlenecks.map { try $0.narrow(dim: 0, start: cscStart, length: total0 - cscStart) }
            let l = try csc(features)
            terms.append(("csc", l)); parts.append((l, w * config.lambdaCSC))
        }
        if batch.hasUnlabeled, present.count >= 2 {
            let unlabeled = try logits.map { try $0.narrow(dim: 0, start: nl, length: total0 - nl) }
            var loss = cac
            if !batch.paired { loss.grid = config.unpairedGrid }
            let l = try loss(unlabeled)
            terms.append(("cac", l)); parts.append((l, w * config.lambdaCAC))
        }
        return LossTerms(terms: terms, total: try weightedTotal(parts))
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        let out = try network(images)
        let probabilities = try out.logits.map { try $0.map { try F.softmax($0, dim: 1) } }
        let present = probabilities.indices.filter { probabilities[$0] != nil }
        guard let weights = fusionWeights(present: present) else {
            return probabilities + [try mean(of: probabilities.compactMap { $0 })]
        }
        return probabilities + [try Self.weightedFusion(present.map { probabilities[$0]! }, weights: weights)]
    }

    /// Validated fusion's weights: w[j][k] for the j-th present branch and class k,
    /// w[j][k] = D_jk / sum_i D_ik over the present branches, with D_jk branch j's validation Dice on
    /// class k. Background (k = 0, which validation does not score) and a class no present branch
    /// found (all D 0) or without a score get equal weights, i.e. the plain mean. Why: a branch
    /// that misses a class (CMC's T1 branch scored 0 on the brain phantom's lesions after 300
    /// iterations) otherwise halves that class's probability in the mean, and the class loses the
    /// argmax where the other branch finds it.
    public static func fusionWeights(branchDice: [[Int: Double]], present: [Int], numClasses: Int) -> [[Double]] {
        let equal = 1 / Double(present.count)
        var weights = Array(repeating: Array(repeating: equal, count: numClasses), count: present.count)
        for k in 1..<numClasses {
            let scores = present.map { m in m < branchDice.count ? Swift.max(branchDice[m][k] ?? 0, 0) : 0 }
            let total = scores.reduce(0, +)
            guard total > 0 else { continue }
            for j in present.indices { weights[j][k] = scores[j] / total }
        }
        return weights
    }

    /// The final answer's weights for the modalities `present` (what `predict` applies and an
    /// export bakes in): nil for the mean.
    public func fusionWeights(present: [Int]) -> [[Double]]? {
        guard fusion == .validated, let branchDice else { return nil }
        return Self.fusionWeights(branchDice: branchDice, present: present, numClasses: network.config.numClasses)
    }

    /// p_k = sum_j w[j][k] p_jk, renormalized over k (per-class weights do not keep the sum at 1).
    public static func weightedFusion(_ probabilities: [Tensor], weights: [[Double]]) throws -> Tensor {
        let classes = probabilities[0].size(1), rank = probabilities[0].rank
        var shape = Array(repeating: 1, count: rank); shape[1] = classes
        var fused: Tensor? = nil
        for (j, p) in probabilities.enumerated() {
            let w = try Tensor(weights[j].map { Float($0) }, shape: shape).to(p.device, dtype: p.dtype)
            let term = try p * w
            fused = try fused.map { try $0 + term } ?? term
        }
        return try fused! / fused!.sum(dims: [1], keepDims: true).clamp(min: 1e-12)
    }

    public func didValidate(iteration: Int, heads: [[Int: Double]?], context: MethodTrainingContext) throws {
        let branches = Array(heads.prefix(modalityNames.count))
        branchDice = branches.count == modalityNames.count && branches.allSatisfy({ $0 != nil }) ? branches.map { $0! } : nil
    }

    public func checkpointState() throws -> MethodCheckpointState {
        guard let branchDice else { return MethodCheckpointState() }
        return MethodCheckpointState(metadata: ["cmc_branch_dice": String(decoding: try JSONEncoder().encode(branchDice), as: UTF8.self)])
    }

    public func restore(from state: MethodCheckpointState) throws {
        guard let text = state.metadata["cmc_branch_dice"] else { branchDice = nil; return }
        guard let parsed = try? JSONDecoder().decode([[Int: Double]].self, from: Data(text.utf8)) else {
            throw SegmentationError.config("checkpoint: cmc_branch_dice '\(text)' is not a list of class -> Dice objects")
        }
        guard parsed.count == modalityNames.count else {
            throw SegmentationError.config("checkpoint: cmc_branch_dice has \(parsed.count) branches, the network \(modalityNames.count)")
        }
        branchDice = parsed
    }
}

