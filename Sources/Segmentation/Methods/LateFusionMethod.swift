import Torch

/// Late-fusion baseline: one single-modality U-Net per modality, each supervised (Dice + CE) on
/// its own modality's labelled images only, and the final answer is the mean of their softmax
/// probabilities. Unlabelled data is ignored. The networks are trained in one run and share
/// nothing but the batches drawn and the global gradient-norm clip (`gradientClip`), so this
/// equals two separately trained supervised U-Nets up to those two couplings; with Adam's
/// per-parameter steps and no clipping it is the same optimisation as two separate runs on the
/// same batches.
///
/// Heads: one per modality (its network alone) and `mean` (the final answer; the present
/// modalities only when one is absent).
public final class LateFusionMethod: SegmentationMethod, SupervisedLossOwner {
    public static let definition = MethodDefinition(
        name: "late-fusion", summary: "one supervised U-Net per modality, probabilities averaged (late-fusion baseline, labelled cases only)"
    ) { context in
        try LateFusionMethod(modalityNames: context.modalityNames, numClasses: context.numClasses, unet: context.unet,
                             supervised: context.supervisedLoss)
    }

    public let name = "late-fusion"
    /// The saved model: `networks.0.encoder...`, one U-Net per modality.
    public let ensemble: NetworkList
    public let modalityNames: [String]
    public var supervised: DiceCELoss

    public init(modalityNames: [String], numClasses: Int, unet: UNetConfig = UNetConfig(), supervised: DiceCELoss = DiceCELoss()) throws {
        guard modalityNames.count >= 2 else { throw SegmentationError.incompatibleData("late fusion needs at least two modalities") }
        self.modalityNames = modalityNames
        self.supervised = supervised
        ensemble = NetworkList(try modalityNames.map { _ in try UNet(inChannels: 1, numClasses: numClasses, config: unet) })
    }

    public var usesUnlabeledData: Bool { false }
    public var model: Module { ensemble }
    public var trainableParameters: [Parameter] { ensemble.trainableParameters() }
    public var outputNames: [String] { modalityNames + ["mean"] }

    /// L = sum over modalities m of DiceCE(network_m(x_m), y_m): independent terms.
    public func losses(_ batch: TrainingBatch, progress: TrainingProgress) throws -> LossTerms {
        let sup = try modalityNames.indices.map { m in
            try supervised(outputs: ensemble.networks[m].outputs(batch.labeledImages[m]), target: batch.labels[m])
        }
        var total = sup[0]
        for t in sup.dropFirst() { total = try total + t }
        return LossTerms(terms: sup.enumerated().map { ("sup_\(modalityNames[$0.offset])", $0.element) }, total: total)
    }

    public func predict(_ images: [Tensor?]) throws -> [Tensor?] {
        let probabilities = try images.enumerated().map { i, x in try x.map { try F.softmax(ensemble.networks[i]($0), dim: 1) } }
        return probabilities + [try mean(of: probabilities.compactMap { $0 })]
    }
}
