import Torch

/// Builds the method a config names.
public enum MethodFactory {
    public static func make(config: TrainingConfig, modalityNames: [String], numClasses: Int) throws -> SegmentationMethod {
        let inputs = config.inputModalities.isEmpty ? Array(modalityNames.indices) : config.inputModalities
        guard inputs.allSatisfy({ modalityNames.indices.contains($0) }) else {
            throw TorchError("input_modalities \(inputs) outside the dataset's \(modalityNames.count) channels")
        }
        let method = try makeMethod(config: config, inputs: inputs, modalityNames: modalityNames, numClasses: numClasses)
        if let m = method as? SupervisedLossOwner {
            m.supervised = DiceCELoss(dice: DiceLoss(includeBackground: config.diceIncludeBackground))
        }
        return method
    }

    static func makeMethod(config: TrainingConfig, inputs: [Int], modalityNames: [String], numClasses: Int) throws -> SegmentationMethod {
        switch config.method {
        case "supervised":
            return try SupervisedMethod(inputModalities: inputs, modalityNames: modalityNames, numClasses: numClasses, unet: config.unet)
        case "mean-teacher":
            return try MeanTeacherMethod(inputModalities: inputs, modalityNames: modalityNames, numClasses: numClasses,
                                         unet: config.unet, config: config.meanTeacher)
        case "cmc":
            let network = try CMCNetwork(config: CMCConfig(modalities: modalityNames.count, numClasses: numClasses,
                                                           unet: config.unet, sharedEncoder: config.cmcSharedEncoder))
            return CMCMethod(network: network, modalityNames: modalityNames, config: config.cmc)
        case "cps":
            return try CrossPseudoSupervisionMethod(inputModalities: inputs, modalityNames: modalityNames, numClasses: numClasses,
                                                    unet: config.unet, config: config.cps)
        case "cml":
            var unet = config.unet
            if unet.dropout == 0 { unet.dropout = 0.1 }   // PReL's stochastic passes need dropout
            return try SemiCMLMethod(modalityNames: modalityNames, numClasses: numClasses, unet: unet, config: config.cml)
        default:
            throw TorchError("unknown method '\(config.method)' (cmc, cml, mean-teacher, cps, supervised)")
        }
    }
}

/// A method whose labelled term is Dice + CE (every method); the factory sets its Dice options.
protocol SupervisedLossOwner: AnyObject {
    var supervised: DiceCELoss { get set }
}

extension SupervisedMethod: SupervisedLossOwner {}
extension MeanTeacherMethod: SupervisedLossOwner {}
extension CMCMethod: SupervisedLossOwner {}
extension CrossPseudoSupervisionMethod: SupervisedLossOwner {}
extension SemiCMLMethod: SupervisedLossOwner {}
