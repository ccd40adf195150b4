import Torch

/// Supervised baseline: a U-Net on one modality, or on several concatenated as channels (early
/// fusion). Unlabelled data is ignored. Trained on the labelled subset it is the lower bound; on
/// all labels, the upper bound.
public final class SupervisedMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "supervised", summary: "a U-Net on the labelled cases only (early fusion of inputModalities)"
    ) { context in
        try SupervisedMethod(inputModalities: context.inputModalities, modalityNames: context.modalityNames,
                             numClasses: context.numClasses, unet: context.unet, supervised: context.supervisedLoss)
    }

    public let name = "supervised"
    public let network: UNet
    public let input: ModalityInput
    public var inputModalities: [Int] { input.indices }
    public let modalityNames: [String]
    public var supervised: DiceCELoss

    public init(inputModalities: [Int], modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(),
                supervised: DiceCELoss = DiceCELoss()) throws {
        guard !inputModalities.isEmpty else { throw SegmentationError.incompatibleData("supervised: no input modality") }
        input = ModalityInput(indices: inputModalities, modalityNames: modalityNames, consumer: "supervised model")
        self.modalityNames = modalityNames
        self.supervised = supervised
        network = try UNet(inChannels: inputModalities.count, numClasses: numClasses, config: unet)
    }

    /// A supervised baseline sees labelled cases only.
    public var usesUnlabeledData: Bool { false }

    public var model: Module { network }
    public var trainableParameters: [Parameter] { network.trainableParameters() }
    public var outputNames: [String] {
        [inputModalities.count == 1 ? modalityNames[inputModalities[0]] : "fused(" + input.joinedNames + ")"]
    }

    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        // Early fusion needs channels of one patient: paired data (the trainer enforces it).
        let outputs = try network.outputs(input(batch.labeledImages))
        let sup = try supervised(outputs: outputs, target: batch.labels[inputModalities[0]])
        return LossTerms(terms: [("sup", sup)], total: sup)
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        [try F.softmax(network(input(images)), dim: 1)]
    }
}
