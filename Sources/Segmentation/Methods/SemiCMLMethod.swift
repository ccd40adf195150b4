import Foundation
import Torch

/// Loss settings of Semi-CML with PReL (the `cml:` key).
public struct SemiCMLConfig: Codable, Sendable {
    public var lambdaASC: Double = 0.1
    public var lambdaMSE: Double = 0.1
    public var temperatureASC: Double = 1.0
    /// Sigmoid ramp-up of the cross-modal terms, as a fraction of stage 1.
    public var rampUpFraction: Double = 0.4
    /// PReL: weight of ASC against (CE + Dice) on the soft pseudo-labels.
    public var alpha: Double = 0.5
    /// PReL: stochastic (dropout) passes of the teacher averaged into a soft pseudo-label.
    public var pseudoLabelPasses: Int = 4
    /// PReL: keep the labelled supervision on during stage 2 (the original script turns it off).
    public var supervisionInStage2: Bool = true
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
/// Stage 1 (contrastive mutual learning): per network CE + Dice on labelled data, plus over the
/// labelled and unlabelled batch the area-similarity contrastive loss ASC and an MSE consistency
/// between the modalities' softmax maps, ramped up. Both cross-modal terms reach both networks.
/// Averaged over modality pairs when there are more than two modalities. Needs paired data (the
/// same patient's modalities side by side).
///
/// Stage 2 (PReL), from iteration `cmlStage1Iterations` on: `startPReL` freezes a teacher (the
/// modality network with the best validation Dice, its weights averaged over its best
/// `cmlTeacherCheckpoints` snapshots, which `didValidate` keeps during stage 1); soft pseudo-labels are the mean softmax of K dropout
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
                                 teacherCheckpoints: settings.cmlTeacherCheckpoints, supervised: context.supervisedLoss)
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
                supervised: DiceCELoss = DiceCELoss()) throws {
        guard modalityNames.count >= 2 else { throw SegmentationError.incompatibleData("Semi-CML needs at least two modalities") }
        self.modalityNames = modalityNames
        self.config = config
        self.stage1Iterations = stage1Iterations
        self.teacherCheckpoints = teacherCheckpoints
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
    public var outputNames: [String] { modalityNames + ["mean"] }

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
        let w = RampUp.sigmoid(step: progress.step, length: Int(config.rampUpFraction * Double(progress.totalSteps)))
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

    /// At iteration `stage1Iterations`: the best network by validation Dice becomes the teacher
    /// (its kept snapshots averaged), the worst the student.
    public func willStartIteration(_ iteration: Int, context: MethodTrainingContext) throws {
        guard prel == nil, stage1Iterations > 0, iteration >= stage1Iterations else { return }
        if snapshotScores.allSatisfy({ $0.isEmpty }) { _ = try context.validateNow(iteration: iteration) }
        let best = snapshotScores.map { $0.first?.dice ?? -1 }
        let teacher = best.indices.max { best[$0] < best[$1] }!
        let student = best.indices.filter { $0 != teacher }.min { best[$0] < best[$1] }!
        let states = try snapshotScores[teacher].map {
            try Safetensors.read(snapshotURL(teacher, $0.iteration, in: context.checkpointDirectory)).dictionary
        }
        let averaged = states.isEmpty ? Dictionary(try ensemble.networks[teacher].stateDict(), uniquingKeysWith: { a, _ in a })
                                      : try averageStateDicts(states)
        try startPReL(teacher: teacher, student: student, teacherState: averaged)
        context.event(iteration: iteration, "PReL: teacher \(modalityNames[teacher]) (best val Dice \(String(format: "%.4f", best[teacher])), \(states.count) checkpoints averaged), student \(modalityNames[student])")
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
        return probabilities + [try mean(of: probabilities.compactMap { $0 })]
    }
}
