import Foundation
import Torch

/// Settings of Semi-CML with PReL (SPEC 1.2).
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

/// Semi-CML (Zhang et al., MedIA 2023): one independent U-Net per modality; at inference each
/// modality is segmented by its own network alone.
///
/// Stage 1 (contrastive mutual learning): per network CE + Dice on labelled data, plus over the
/// labelled and unlabelled batch the area-similarity contrastive loss ASC and an MSE consistency
/// between the modalities' softmax maps, ramped up. Both cross-modal terms reach both networks.
/// Averaged over modality pairs when there are more than two modalities. Needs paired data (the
/// same patient's modalities side by side).
///
/// Stage 2 (PReL): `startPReL` freezes a teacher (the better modality's network, weights averaged
/// over its best checkpoints by the trainer); soft pseudo-labels are the mean softmax of K dropout
/// passes of the teacher on the unlabelled data; the student (the weaker modality's network) is
/// trained with alpha ASC + (1 - alpha) (CE + Dice) against them, plus labelled supervision unless
/// switched off.
public final class SemiCMLMethod: SegmentationMethod {
    public let name = "cml"
    public let ensemble: Networks
    public let modalityNames: [String]
    public let config: SemiCMLConfig
    public var supervised = DiceCELoss()
    public let asc: AreaSimilarityContrastiveLoss
    let consistency = SoftmaxMSELoss()
    /// Stage 2 state: (teacher modality, student modality, frozen teacher).
    public private(set) var prel: (teacher: Int, student: Int, network: UNet)?

    /// The saved model: `networks.0.encoder...`, one U-Net per modality.
    public final class Networks: Module {
        public let networks: [UNet]
        init(_ networks: [UNet]) { self.networks = networks; super.init() }
    }

    public init(modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(dropout: 0.1),
                config: SemiCMLConfig = SemiCMLConfig()) throws {
        guard modalityNames.count >= 2 else { throw TorchError("Semi-CML needs at least two modalities") }
        self.modalityNames = modalityNames
        self.config = config
        ensemble = Networks(try modalityNames.map { _ in try UNet(inChannels: 1, numClasses: numClasses, config: unet) })
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
            throw TorchError("PReL: invalid teacher/student modalities \(teacher), \(student)")
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

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        let probabilities = try images.enumerated().map { i, x in try x.map { try F.softmax(ensemble.networks[i]($0), dim: 1) } }
        return probabilities + [try mean(of: probabilities.compactMap { $0 })]
    }
}
