import Torch

/// Settings of cross pseudo supervision.
public struct CPSConfig: Codable, Sendable {
    /// Weight of the cross pseudo-label terms after ramp-up (CPS paper: 1.5 on its tasks).
    public var weight: Double = 1.0
    /// Sigmoid ramp-up length as a fraction of training.
    public var rampUpFraction: Double = 0.4
    public init() {}
}

/// CPS's settings: the top-level key `cps`.
public struct CPSSettings: MethodSettings {
    public var cps = CPSConfig()
    public init() {}
}

/// Cross pseudo supervision (Chen et al., CVPR 2021): two U-Nets with different initialisations on
/// the same input (early fusion of the chosen modalities); each is supervised on labelled data and,
/// on every sample, trained with cross-entropy against the other's argmax (a hard pseudo-label that
/// carries no gradient). Prediction averages the two softmaxes.
public final class CrossPseudoSupervisionMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "cps", summary: "cross pseudo supervision, two U-Nets teaching each other with hard pseudo-labels (early fusion)",
        settings: CPSSettings.self
    ) { context, settings in
        try CrossPseudoSupervisionMethod(inputModalities: context.inputModalities, modalityNames: context.modalityNames,
                                         numClasses: context.numClasses, unet: context.unet, config: settings.cps,
                                         supervised: context.supervisedLoss)
    }

    public let name = "cps"
    /// The saved model: `networks.0.encoder...`, `networks.1.encoder...`.
    public let pair: NetworkList
    public let input: ModalityInput
    public var inputModalities: [Int] { input.indices }
    public let modalityNames: [String]
    public let config: CPSConfig
    public var supervised: DiceCELoss

    public init(inputModalities: [Int], modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(),
                config: CPSConfig = CPSConfig(), supervised: DiceCELoss = DiceCELoss()) throws {
        input = ModalityInput(indices: inputModalities, modalityNames: modalityNames, consumer: "CPS")
        self.supervised = supervised
        self.modalityNames = modalityNames
        self.config = config
        pair = NetworkList(try (0..<2).map { _ in try UNet(inChannels: inputModalities.count, numClasses: numClasses, config: unet) })
    }

    public var model: Module { pair }
    public var trainableParameters: [Parameter] { pair.trainableParameters() }
    public var outputNames: [String] { ["cps(" + input.joinedNames + ")"] }

    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        let labeled = try input(batch.labeledImages)
        let all = batch.hasUnlabeled ? try Tensor.cat([labeled, input(batch.unlabeledImages)], dim: 0) : labeled
        let nl = labeled.size(0)
        let outputs = try pair.networks.map { try $0.outputs(all) }
        let logits = outputs.map { $0[0] }
        let target = batch.labels[inputModalities[0]]
        let sup = try supervised(outputs: labeledPart(outputs[0], nl), target: target)
            + supervised(outputs: labeledPart(outputs[1], nl), target: target)
        // Hard pseudo-labels from the other network, outside the graph.
        let pseudo = try withNoGrad { try logits.map { try $0.argmax(dim: 1) } }
        let cross = try F.crossEntropy(logits[0], target: pseudo[1]) + F.crossEntropy(logits[1], target: pseudo[0])
        let w = config.weight * RampUp.sigmoid(step: progress.step, length: Int(config.rampUpFraction * Double(progress.totalSteps)))
        return LossTerms(terms: [("sup", sup), ("cps", cross)], total: try weightedTotal([(sup, 1), (cross, w)]))
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        let x = try input(images)
        return [try mean(of: pair.networks.map { try F.softmax($0(x), dim: 1) })]
    }
}
