import Torch

/// Supervised baseline: a U-Net on one modality, or on several concatenated as channels (early
/// fusion). Unlabelled data is ignored. Trained on the labelled subset it is the lower bound; on
/// all labels, the upper bound.
public final class SupervisedMethod: SegmentationMethod {
    public let name = "supervised"
    public let network: UNet
    /// Modalities fed to the network, in channel order.
    public let inputModalities: [Int]
    public let modalityNames: [String]
    public var supervised = DiceCELoss()

    public init(inputModalities: [Int], modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig()) throws {
        guard !inputModalities.isEmpty else { throw TorchError("supervised: no input modality") }
        self.inputModalities = inputModalities
        self.modalityNames = modalityNames
        network = try UNet(inChannels: inputModalities.count, numClasses: numClasses, config: unet)
    }

    public var model: Module { network }
    public var trainableParameters: [Parameter] { network.trainableParameters() }
    public var outputNames: [String] {
        [inputModalities.count == 1 ? modalityNames[inputModalities[0]] : "fused(" + inputModalities.map { modalityNames[$0] }.joined(separator: "+") + ")"]
    }

    func input(_ images: [Tensor?]) throws -> Tensor {
        let parts = try inputModalities.map { m -> Tensor in
            guard m < images.count, let x = images[m] else { throw TorchError("supervised model needs modality \(modalityNames[m])") }
            return x
        }
        return parts.count == 1 ? parts[0] : try Tensor.cat(parts, dim: 1)
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
