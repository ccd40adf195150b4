import Foundation
import Torch

/// Loss settings of Semi-CML with PReL (the `cml:` key).
public struct SemiCMLConfig: Codable, Sendable {
    public var lambdaASC: Double = 0.1
    public var lambdaMSE: Double = 0.1
    public var temperatureASC: Double = 1.0
    /// Sigmoid ramp-up of the cross-modal terms, as a fraction of stage 1 (of the whole run when
    /// there is no PReL stage).
    public var rampUpFraction: Double = 0.4
    /// PReL: weight of ASC against (CE + Dice) on the soft pseudo-labels.
    public var alpha: Double = 0.5
    /// PReL: stochastic (dropout) passes of the teacher averaged into a soft pseudo-label.
    public var pseudoLabelPasses: Int = 4
    /// PReL: keep the labelled supervision on during stage 2 (the original script turns it off).
    public var supervisionInStage2: Bool = true
    /// Make the two-network mean the final answer (the default head of `concord predict` and
    /// `evaluate`, and what model selection uses) instead of each modality's own network. The
    /// `mean` head is always available by name; this only changes which head is final.
    public var outputMean: Bool = false
    public init() {}
}

/// Semi-CML's settings: the top-level keys `cml` (losses), `cmlStage1Iterations` and
/// `cmlTeacherCheckpoints` (PReL's schedule and teacher).
public struct SemiCMLSettings: MethodSettings {
    public var cml = SemiCMLConfig()
    /// Iterations of stage 1 (contrastive mutual learning); the rest is PReL. 0 = no PReL.
    public var cmlStage1Iterations = 0
    /// Best checkpoints per network averaged into the PReL teacher (0: the network as it is at the
    /// switch).
    public var cmlTeacherCheckpoints = 3
    public init() {}

    public func validate(in config: TrainingConfig) throws {
        guard cmlStage1Iterations >= 0, cmlStage1Iterations <= config.iterations else {
            throw SegmentationError.config("cmlStage1Iterations must be in [0, iterations (\(config.iterations))], got \(cmlStage1Iterations)")
        }
        guard cmlTeacherCheckpoints >= 0 else {
            throw SegmentationError.config("cmlTeacherCheckpoints must be >= 0 (0: the teacher is the network as it is at the switch), got \(cmlTeacherCheckpoints)")
        }
    }
}

/// Semi-CML (Zhang et al., MedIA 2023): one independent U-Net per modality; at inference each
/// modality is segmented by its own network alone.
///
/// Heads: one per modality (network m on modality m), `mean` (the networks' mean softmax, an
/// ensemble the method does not define; on request) and `reference`: the case's first present
/// modality (the reference channel, whose geometry masks are written in) segmented by its own
/// network. `reference` is the final answer unless `cml.outputMean` is set. Model selection (the
/// best checkpoint, the logged validation Dice) uses the per-class mean over the modality heads,
/// each network scored on its own modality, so neither network is judged through the other.
///
/// Stage 1 (contrastive mutual learning): per network CE + Dice on labelled data, plus over the
/// labelled and unlabelled batch the area-similarity contrastive loss ASC and an MSE consistency
/// between the modalities' softmax maps, ramped up. Both cross-modal terms reach both networks.
/// Averaged over modality pairs when there are more than two modalities. Needs paired data (the
/// same patient's modalities side by side).
///
/// Stage 2 (PReL), from iteration `cmlStage1Iterations` on: `startPReL` freezes a teacher (the
/// modality network with the best validation Dice, its weights averaged over its best
/// `cmlTeacherCheckpoints` snapshots, which `didValidate` keeps during stage 1; when the periodic
/// validations of stage 1 are fewer than that, `willStartIteration` validates at
/// `forcedSnapshotIterations` as well, and the switch logs which snapshots were averaged, with
/// their iteration and Dice, and says so when fewer existed); soft pseudo-labels are the mean softmax of K dropout
/// passes of the teacher on the unlabelled data; the student (the weaker modality's network) is
/// trained with alpha ASC + (1 - alpha) (CE + Dice) against them, plus labelled supervision unless
/// switched off.
public final class SemiCMLMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "cml", summary: "Semi-CML, one U-Net per modality with contrastive mutual learning, then PReL (paired)",
        settings: SemiCMLSettings.self
    ) { context, settings in
        var unet = context.unet
        if unet.dropout == 0 { unet.dropout = 0.1 }   // PReL's stochastic passes need dropout
        return try SemiCMLMethod(modalityNames: context.modalityNames, numClasses: context.numClasses, unet: unet,
                                 config: settings.cml, stage1Iterations: settings.cmlStage1Iterations,
                                 teacherCheckpoints: settings.cmlTeacherCheckpoints, validationInterval: context.config.validationInterval,
                                 supervised: context.supervisedLoss)
    }

    public let name = "cml"
    /// The saved model: `networks.0.encoder...`, one U-Net per modality.
    public let ensemble: NetworkList
    public let modalityNames: [String]
    public let config: SemiCMLConfig
    /// PReL starts at this iteration (0 = never).
    public let stage1Iterations: Int
    /// Snapshots per modality network averaged into the PReL teacher.
    public let teacherCheckpoints: Int
    /// The trainer's validation interval (nil: unknown, no forced snapshot validations).
    public let validationInterval: Int?
    public var supervised: DiceCELoss
    public let asc: AreaSimilarityContrastiveLoss
    let consistency = SoftmaxMSELoss()
    /// Stage 2 state: (teacher modality, student modality, frozen teacher).
    public private(set) var prel: (teacher: Int, student: Int, network: UNet)?
    /// Per modality network, (dice, iteration) of the kept stage-1 snapshots, best first.
    private(set) var snapshotScores: [[SnapshotScore]]

    struct SnapshotScore: Codable { var dice: Double; var iteration: Int }

    public init(modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(dropout: 0.1),
                config: SemiCMLConfig = SemiCMLConfig(), stage1Iterations: Int = 0, teacherCheckpoints: Int = 3,
                validationInterval: Int? = nil, supervised: DiceCELoss = DiceCELoss()) throws {
        guard modalityNames.count >= 2 else { throw SegmentationError.incompatibleData("Semi-CML needs at least two modalities") }
        self.modalityNames = modalityNames
        self.config = config
        self.stage1Iterations = stage1Iterations
        self.teacherCheckpoints = teacherCheckpoints
        self.validationInterval = validationInterval
        self.supervised = supervised
        snapshotScores = Array(repeating: [], count: modalityNames.count)
        ensemble = NetworkList(try modalityNames.map { _ in try UNet(inChannels: 1, numClasses: numClasses, config: unet) })
        asc = AreaSimilarityContrastiveLoss(temperature: config.temperatureASC)
    }

    public var model: Module { ensemble }
    public var trainableParameters: [Parameter] {
        if let prel { return ensemble.networks[prel.student].trainableParameters() }
        return ensemble.trainableParameters()
    }
    public var outputNames: [String] { modalityNames + (config.outputMean ? ["reference", "mean"] : ["mean", "reference"]) }

    /// Model selection: with `outputMean` the mean head's Dice; otherwise the per-class mean of the
    /// modality heads' Dice (each network on its own modality; heads without cases left out).
    public func selectionDice(_ heads: [[Int: Double]?]) -> [Int: Double]? {
        if config.outputMean { return heads.last ?? nil }
        let own = heads.prefix(modalityNames.count).compactMap { $0 }
        guard !own.isEmpty else { return nil }
        var sums: [Int: Double] = [:]
        for scores in own { sums.merge(scores, uniquingKeysWith: +) }
        return sums.mapValues { $0 / Double(own.count) }
    }

    /// Weight of the cross-modal terms at `progress`: the sigmoid ramp exp(-5 (1 - t)^2) over the
    /// first `rampUpFraction` of stage 1 (of the whole run when there is no PReL stage).
    public func rampWeight(_ progress: TrainingProgress) -> Double {
        let stage1 = stage1Iterations > 0 ? stage1Iterations : progress.totalSteps
        return RampUp.sigmoid(step: progress.step, length: Int(config.rampUpFraction * Double(stage1)))
    }

    /// Switches to PReL with a teacher network holding `teacherState` (e.g. averaged checkpoints).
    public func startPReL(teacher: Int, student: Int, teacherState: [String: Tensor]) throws {
        guard teacher != student, modalityNames.indices.contains(teacher), modalityNames.indices.contains(student) else {
            throw SegmentationError.incompatibleData("PReL: invalid teacher/student modalities \(teacher), \(student)")
        }
        let source = ensemble.networks[teacher]
        let frozen = try UNet(inChannels: 1, numClasses: source.decoder.head.weight.value.size(0), config: source.config)
        try frozen.to(source.decoder.head.weight.value.device)
        try frozen.loadStateDict(teacherState)
        for p in frozen.parameters() { p.isFrozen = true }
        frozen.mixedPrecision = source.mixedPrecision   // the teacher computes as its source network did
        prel = (teacher, student, frozen)
    }

    /// Mean softmax of `passes` dropout-on passes of the frozen teacher (no gradients).
    public func softPseudoLabels(_ x: Tensor, teacher: UNet) throws -> Tensor {
        try withNoGrad {
            teacher.train()   // dropout on; instance norm has no running statistics to disturb
            defer { teacher.eval() }
            return try mean(of: (0..<Swift.max(config.pseudoLabelPasses, 1)).map { _ in try F.softmax(teacher(x), dim: 1) })
        }
    }

    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        if let prel { return try prelLosses(batch, prel) }
        let m = batch.modalities
        let nl = batch.labeledImages[0].size(0)
        let outputs = try (0..<m).map { i -> [Tensor] in
            let x = batch.hasUnlabeled ? try Tensor.cat([batch.labeledImages[i], batch.unlabeledImages[i]], dim: 0) : batch.labeledImages[i]
            return try ensemble.networks[i].outputs(x)
        }
        let logits = outputs.map { $0[0] }
        let sup = try (0..<m).map { try supervised(outputs: labeledPart(outputs[$0], nl), target: batch.labels[$0]) }
        var terms: [(name: String, value: Tensor)] = sup.enumerated().map { ("sup_\(modalityNames[$0.offset])", $0.element) }
        let w = rampWeight(progress)
        var parts: [(Tensor, Double)] = sup.map { ($0, 1) }
        if logits[0].size(0) >= 2 {
            let ascTerm = try meanOverPairs(m) { i, j in try asc(logits[i], logits[j]) }
            terms.append(("asc", ascTerm)); parts.append((ascTerm, w * config.lambdaASC))
        }
        let mse = try meanOverPairs(m) { i, j in try consistency(logits[i], logits[j]) }
        terms.append(("mse", mse)); parts.append((mse, w * config.lambdaMSE))
        return LossTerms(terms: terms, total: try weightedTotal(parts))
    }

    func prelLosses(_ batch: TrainingBatch, _ prel: (teacher: Int, student: Int, network: UNet)) throws -> LossTerms {
        let student = ensemble.networks[prel.student]
        var terms: [(name: String, value: Tensor)] = []
        var parts: [(Tensor, Double)] = []
        if config.supervisionInStage2 {
            let sup = try supervised(outputs: student.outputs(batch.labeledImages[prel.student]), target: batch.labels[prel.student])
            terms.append(("sup_\(modalityNames[prel.student])", sup)); parts.append((sup, 1))
        }
        if batch.hasUnlabeled {
            let soft = try softPseudoLabels(batch.unlabeledImages[prel.teacher], teacher: prel.network)
            let logits = try student(batch.unlabeledImages[prel.student])
            let ce = try F.crossEntropy(logits, target: soft)
            let dice = try supervised.dice(logits: logits, target: soft)
            let pseudo = try ce + dice
            terms.append(("pseudo_ce_dice", pseudo)); parts.append((pseudo, 1 - config.alpha))
            if logits.size(0) >= 2 {
                let a = try asc(logits, soft, bIsProbability: true)
                terms.append(("pseudo_asc", a)); parts.append((a, config.alpha))
            }
        }
        return LossTerms(terms: terms, total: try weightedTotal(parts))
    }

    // MARK: lifecycle: stage-1 snapshots, the switch to PReL, checkpoints

    func snapshotURL(_ m: Int, _ iteration: Int, in checkpoints: URL) -> URL {
        checkpoints.appendingPathComponent("cml/net\(m)_it\(iteration).safetensors")
    }

    /// During stage 1, keeps the best `teacherCheckpoints` snapshots of each modality network by
    /// its own validation Dice (the PReL teacher is their average).
    public func didValidate(iteration: Int, heads: [[Int: Double]?], context: MethodTrainingContext) throws {
        guard prel == nil, stage1Iterations > 0 else { return }
        for m in 0..<modalityNames.count {
            guard let scores = heads[m] else { continue }
            var kept = snapshotScores[m]
            kept.append(SnapshotScore(dice: scores.meanValue, iteration: iteration))
            kept.sort { $0.dice > $1.dice }
            let dropped = kept.count > teacherCheckpoints ? Array(kept[teacherCheckpoints...]) : []
            kept = Array(kept.prefix(teacherCheckpoints))
            if kept.contains(where: { $0.iteration == iteration }) {
                try ensemble.networks[m].save(to: snapshotURL(m, iteration, in: context.checkpointDirectory))
            }
            for d in dropped { try? FileManager.default.removeItem(at: snapshotURL(m, d.iteration, in: context.checkpointDirectory)) }
            snapshotScores[m] = kept
        }
    }

    /// Stage-1 iterations at which `willStartIteration` validates (keeping snapshots as a periodic
    /// validation does) because the periodic validations, every `validationInterval`, would give
    /// fewer than `teacherCheckpoints` snapshots: that many points evenly spaced over the last half
    /// of stage 1, ending at the switch, less those a periodic validation covers.
    public var forcedSnapshotIterations: [Int] {
        guard stage1Iterations > 0, teacherCheckpoints > 0, let interval = validationInterval, interval > 0,
              stage1Iterations / interval < teacherCheckpoints else { return [] }
        let step = Swift.max(1, stage1Iterations / (2 * teacherCheckpoints))
        let points = (0..<teacherCheckpoints).map { stage1Iterations - $0 * step }.filter { $0 > 0 && $0 % interval != 0 }
        return Array(Set(points)).sorted()
    }

    /// Before the switch: the forced snapshot validations. At iteration `stage1Iterations`: the
    /// best network by validation Dice (its best snapshot's) becomes the teacher, its kept
    /// snapshots averaged; the worst becomes the student. The log names the averaged snapshots.
    public func willStartIteration(_ iteration: Int, context: MethodTrainingContext) throws {
        guard prel == nil, stage1Iterations > 0 else { return }
        if forcedSnapshotIterations.contains(iteration), !snapshotScores.contains(where: { $0.contains { $0.iteration == iteration } }) {
            context.event(iteration: iteration, "PReL: snapshot validation at iteration \(iteration) (validation every \(validationInterval ?? 0) iterations gives fewer than \(teacherCheckpoints) snapshots in stage 1)")
            _ = try context.validateNow(iteration: iteration)
        }
        guard iteration >= stage1Iterations else { return }
        var best = snapshotScores.map { $0.first?.dice ?? -1 }
        if snapshotScores.allSatisfy({ $0.isEmpty }) {
            // No snapshot kept (cmlTeacherCheckpoints 0): choose by a validation now.
            let heads = try context.validateNow(iteration: iteration)
            best = modalityNames.indices.map { heads.indices.contains($0) ? heads[$0]?.meanValue ?? -1 : -1 }
        }
        let teacher = best.indices.max { best[$0] < best[$1] }!
        let student = best.indices.filter { $0 != teacher }.min { best[$0] < best[$1] }!
        let averagedScores = snapshotScores[teacher]
        let states = try averagedScores.map {
            try Safetensors.read(snapshotURL(teacher, $0.iteration, in: context.checkpointDirectory)).dictionary
        }
        let averaged = states.isEmpty ? Dictionary(try ensemble.networks[teacher].stateDict(), uniquingKeysWith: { a, _ in a })
                                      : try averageStateDicts(states)
        try startPReL(teacher: teacher, student: student, teacherState: averaged)
        let list = averagedScores.map { String(format: "iteration %d (Dice %.4f)", $0.iteration, $0.dice) }.joined(separator: ", ")
        var message = "PReL from iteration \(iteration): teacher \(modalityNames[teacher]) (best validation Dice \(best[teacher] < 0 ? "none" : String(format: "%.4f", best[teacher]))), student \(modalityNames[student]); "
        if states.isEmpty {
            message += teacherCheckpoints == 0 ? "teacher = the network as it is now (cmlTeacherCheckpoints 0)"
                                               : "NO stage-1 snapshot existed (no validation cases?): the teacher is the network as it is now, not an average of \(teacherCheckpoints) checkpoints"
        } else if states.count < teacherCheckpoints {
            message += "only \(states.count) of \(teacherCheckpoints) checkpoints existed and were averaged: \(list)"
        } else {
            message += "averaged \(states.count) checkpoints: \(list)"
        }
        context.event(iteration: iteration, message)
    }

    public func checkpointState() throws -> MethodCheckpointState {
        var state = MethodCheckpointState(metadata: ["cml_scores": String(decoding: try JSONEncoder().encode(snapshotScores), as: UTF8.self)])
        if let prel {
            state.metadata["prel_teacher"] = "\(prel.teacher)"; state.metadata["prel_student"] = "\(prel.student)"
            state.tensors["prel_teacher"] = try prel.network.stateDict()
        }
        return state
    }

    public func restore(from state: MethodCheckpointState) throws {
        if let text = state.metadata["cml_scores"],
           let scores = try? JSONDecoder().decode([[SnapshotScore]].self, from: Data(text.utf8)), scores.count == modalityNames.count {
            snapshotScores = scores
        }
        if let t = state.metadata["prel_teacher"].flatMap(Int.init), let s = state.metadata["prel_student"].flatMap(Int.init),
           let teacher = state.tensors["prel_teacher"] {
            try startPReL(teacher: t, student: s, teacherState: Dictionary(teacher, uniquingKeysWith: { a, _ in a }))
        }
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        let probabilities = try images.enumerated().map { i, x in try x.map { try F.softmax(ensemble.networks[i]($0), dim: 1) } }
        let meanHead = try mean(of: probabilities.compactMap { $0 })
        let reference = probabilities.compactMap { $0 }.first   // the first present modality's own network
        return probabilities + (config.outputMean ? [reference, meanHead] : [meanHead, reference])
    }
}
