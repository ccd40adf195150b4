import Torch

/// Settings of the mean-teacher baseline (the `meanTeacher:` key).
public struct MeanTeacherConfig: Codable, Sendable {
    public var emaDecay: Double = 0.99
    public var consistencyWeight: Double = 0.1
    /// Ramp-up length as a fraction of training (sigmoid ramp).
    public var rampUpFraction: Double = 0.4
    /// Standard deviation of the Gaussian noise on student and teacher inputs (clipped at 2 sigma).
    public var inputNoise: Double = 0.1
    public init() {}
}

/// The mean teacher's settings: the top-level key `meanTeacher`.
public struct MeanTeacherSettings: MethodSettings {
    public var meanTeacher = MeanTeacherConfig()
    public init() {}
}

/// Mean teacher (Tarvainen & Valpola): an EMA teacher of the student; on every sample (labelled
/// and unlabelled) the student's softmax under input noise is pulled towards the teacher's
/// (MSE), with a sigmoid ramp-up. The teacher gets no gradients; it is updated only by EMA with
/// decay min(1 - 1/(step+1), 0.99). The teacher is the model used for prediction.
public final class MeanTeacherMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "mean-teacher", summary: "an EMA teacher's softmax as the target of a noisy student (early fusion)",
        settings: MeanTeacherSettings.self
    ) { context, settings in
        try MeanTeacherMethod(inputModalities: context.inputModalities, modalityNames: context.modalityNames,
                              numClasses: context.numClasses, unet: context.unet, config: settings.meanTeacher,
                              supervised: context.supervisedLoss)
    }

    public let name = "mean-teacher"
    public let pair: StudentTeacher
    public let input: ModalityInput
    public var inputModalities: [Int] { input.indices }
    public let modalityNames: [String]
    public let config: MeanTeacherConfig
    public var supervised: DiceCELoss
    let consistency = SoftmaxMSELoss()
    let ema: ExponentialMovingAverage

    /// The saved model: student and teacher (`student.encoder...`, `teacher.encoder...`).
    public final class StudentTeacher: Module, @unchecked Sendable {
        public let student: UNet
        public let teacher: UNet
        init(student: UNet, teacher: UNet) { self.student = student; self.teacher = teacher; super.init() }
    }

    public init(inputModalities: [Int], modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(),
                config: MeanTeacherConfig = MeanTeacherConfig(), supervised: DiceCELoss = DiceCELoss()) throws {
        input = ModalityInput(indices: inputModalities, modalityNames: modalityNames, consumer: "mean teacher")
        self.supervised = supervised
        self.modalityNames = modalityNames
        self.config = config
        let student = try UNet(inChannels: inputModalities.count, numClasses: numClasses, config: unet)
        let teacher = try UNet(inChannels: inputModalities.count, numClasses: numClasses, config: unet)
        try teacher.loadStateDict(Dictionary(try student.stateDict(), uniquingKeysWith: { a, _ in a }))
        for p in teacher.parameters() { p.isFrozen = true }
        pair = StudentTeacher(student: student, teacher: teacher)
        ema = ExponentialMovingAverage(decay: config.emaDecay)
    }

    public var model: Module { pair }
    public var trainableParameters: [Parameter] { pair.student.trainableParameters() }
    public var outputNames: [String] { ["teacher(" + input.joinedNames + ")"] }

    func noisy(_ x: Tensor) throws -> Tensor {
        guard config.inputNoise > 0 else { return x }
        let noise = try (Tensor.randn(x.shape, dtype: x.dtype, device: x.device) * config.inputNoise)
            .clamp(min: -2 * config.inputNoise, max: 2 * config.inputNoise)
        return try x + noise
    }

    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        let labeled = try input(batch.labeledImages)
        let all = batch.hasUnlabeled ? try Tensor.cat([labeled, input(batch.unlabeledImages)], dim: 0) : labeled
        let studentOutputs = try pair.student.outputs(noisy(all))
        let studentLogits = studentOutputs[0]
        let nl = labeled.size(0)
        let sup = try supervised(outputs: labeledPart(studentOutputs, nl), target: batch.labels[inputModalities[0]])
        let teacherLogits = try withNoGrad { try pair.teacher(noisy(all)) }
        let cons = try consistency(studentLogits, teacherLogits)
        let w = config.consistencyWeight * RampUp.sigmoid(step: progress.step, length: Int(config.rampUpFraction * Double(progress.totalSteps)))
        return LossTerms(terms: [("sup", sup), ("consistency", cons)], total: try weightedTotal([(sup, 1), (cons, w)]))
    }

    public func afterOptimizerStep(progress: TrainingProgress) throws {
        try ema.update(teacher: pair.teacher, student: pair.student, step: progress.step)
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        [try F.softmax(pair.teacher(input(images)), dim: 1)]
    }
}
