import Foundation
import Torch
import Volumes

/// Loads a trained run and segments cases in their own geometry: the run's preprocessing,
/// sliding-window inference, then every preprocessing step undone so each mask has exactly the
/// shape, affine and qform/sform codes of the case's reference channel (the first present one).
public final class Predictor {
    public let run: URL
    public let description: RunDescription
    public let method: SegmentationMethod
    public var inference: SlidingWindowInference
    /// Which output head to write: nil = the method's final answer (last head).
    public var head: Int?

    /// `precision` nil predicts in the precision the run trained in.
    public init(run: URL, checkpoint: String = "best", overlap: Double? = nil, flipTTA: Bool = false, device: Device = .cpu,
                precision: PrecisionSetting? = nil) throws {
        self.run = run
        description = try RunDescription.read(from: run)
        method = try MethodRegistry.make(config: description.config, modalityNames: description.modalityNames,
                                        numClasses: description.numClasses)
        let url = run.appendingPathComponent("checkpoints/\(checkpoint).safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else { throw SegmentationError.invalidRun(path: url.path, problem: "no such checkpoint") }
        let ck = try Checkpoint.read(url)
        try method.restore(from: ck.methodState)
        try method.model.loadStateDict(ck.modelDictionary)
        try method.model.to(device)
        method.model.setMixedPrecision(try (precision ?? description.config.precision).policy(on: device))
        method.model.eval()
        inference = SlidingWindowInference(patch: description.config.volumePatch, overlap: overlap ?? description.config.overlap,
                                           windowBatch: description.config.windowBatch, flipTTA: flipTTA, device: device)
    }

    /// Segments one case (channels in dataset order, nil = absent). Returns the label map of the
    /// selected head (`head`, default the final answer) in the reference channel's geometry.
    public func segment(_ input: CaseVolumes, progress: ((Int, Int) -> Void)? = nil) throws -> Volume {
        let index = head ?? method.outputNames.count - 1
        guard let mask = try segment(input, heads: [index], progress: progress)[0] else {
            throw SegmentationError.incompatibleData("\(input.name): head \(index) produced no prediction (missing modality?)")
        }
        return mask
    }

    /// Segments one case once and returns a label map per requested head index (one sliding-window
    /// pass serves every head: CMC's branches and their mean come from the same forward pass);
    /// nil where a head produced no prediction (its modality is absent).
    public func segment(_ input: CaseVolumes, heads wanted: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> [Volume?] {
        let prepared = try description.plan.apply(input)
        let tensors = try PreparedCase(name: input.name, channels: prepared.channels, present: prepared.present, label: nil)
        let heads = try inference.run(images: tensors.images, present: tensors.present, progress: progress) { try method.predict($0) }
        return try wanted.map { index in
            guard heads.indices.contains(index) else { throw SegmentationError.incompatibleData("head \(index): this run has \(heads.count) heads") }
            guard let probabilities = heads[index] else { return nil }
            let labels = try probabilities.argmax(dim: 0).to(.float32)
            let onGrid = try prepared.channels[0].replacingVoxels(with: labels)
            return try description.plan.restore(onGrid, record: prepared.record)
        }
    }
}
