import Foundation
import Torch
import Volumes

/// What an exported model needs to be used outside Concord, stored as `concord.json` in the
/// TorchScript archive (`torch.jit.load(path, _extra_files={"concord.json": ""})`).
public struct ExportMetadata: Codable, Equatable {
    public var format = "concord-torchscript"
    public var formatVersion = 1
    /// Concord version that trained the run.
    public var trainedWith: String
    public var dataset: String
    public var method: String
    public var head: String
    /// Every head this run can be exported with (`concord export --head`).
    public var availableHeads: [String]
    /// `logits` or `log-probabilities` (an averaged head); softmax over axis 1 gives the
    /// probabilities `concord predict` computes, argmax the mask.
    public var output: String
    /// Names of x's channels, in order, and their indices among the dataset's channels.
    public var inputChannels: [String]
    public var inputChannelIndices: [Int]
    /// Class index (as a string) -> name, background included.
    public var classNames: [String: String]
    /// 3: x is (B, C, D, H, W). 2: x is (B, C, H, W) or slices (B, C, 1, H, W).
    public var spatialRank: Int
    /// x's axis order: D H W are the voxel axes k j i of the preprocessed (RAS-reoriented) image,
    /// the reverse of NIfTI's i j k (a nibabel array needs `.transpose` to it); the MONAI bundle's
    /// model takes i j k.
    public var layout: ExportLayout
    /// Every spatial size of x must be a multiple of this (the U-Net's downsampling).
    public var inputSizeDivisor: Int
    /// The training patch (voxels, D H W; depth 1 for 2D) and sliding-window overlap Concord
    /// predicts with.
    public var patch: [Int]
    public var overlap: Double
    /// The preprocessing applied before the network: reorientation to RAS, per-channel resampling
    /// onto the first channel, crop to the non-zero box, resampling to `targetSpacing` (mm, axes
    /// i j k after reorientation), per-channel intensity normalisation; undone on the mask.
    public var preprocessing: PreprocessingPlan
    /// How attribute names map to the run's checkpoint keys.
    public var attributeNaming = "state-dict path with '.' replaced by '__'"
}

/// `concord export`: a trained run as a TorchScript module or a MONAI bundle.
public struct RunExport {
    public let predictor: Predictor
    public let head: ExportHead

    /// Loads `run`'s weights (`checkpoint`: best or last) and selects `headName` (nil = the
    /// method's final answer).
    public init(run: URL, checkpoint: String = "best", head headName: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: RunDescription.url(in: run).path) else {
            throw SegmentationError.invalidRun(path: run.path, problem: "not a Concord run (no run.json)")
        }
        let weights = run.appendingPathComponent("checkpoints/\(checkpoint).safetensors")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw SegmentationError.invalidRun(path: run.path, problem: "no weights: \(weights.path) does not exist (train the run first, or pick --checkpoint best|last)")
        }
        predictor = try Predictor(run: run, checkpoint: checkpoint)
        head = try ModelExport.head(named: headName, of: predictor.method)
    }

    public func metadata(layout: ExportLayout = .concord) throws -> ExportMetadata {
        let d = predictor.description
            return ExportMetadata(
                trainedWith: d.concordVersion, dataset: d.dataset, method: predictor.method.name, head: head.name,
                availableHeads: try ModelExport.heads(of: predictor.method).map(\.name), output: head.output,
                inputChannels: head.inputChannels.map { d.modalityNames[$0] }, inputChannelIndices: head.inputChannels,
                classNames: Dictionary(uniqueKeysWithValues: d.classNames.map { ("\($0.key)", $0.value) }),
                spatialRank: d.config.unet.rank, layout: layout, inputSizeDivisor: d.config.unet.divisor,
                patch: d.config.volumePatch, overlap: predictor.inference.overlap, preprocessing: d.plan)
    }

    public func metadataJSON(layout: ExportLayout = .concord) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(metadata(layout: layout))
    }

    /// Writes the TorchScript module (with `concord.json`) to `url`.
    public func writeTorchScript(to url: URL, layout: ExportLayout = .concord) throws {
        let module = try ModelExport.build(method: predictor.method, head: head, layout: layout)
        try module.save(to: url, extraFiles: [(ModelExport.metadataFile, try metadataJSON(layout: layout))])
    }
}

/// The formats `concord export` writes.
public enum ExportFormat: String, CaseIterable, Sendable {
    case torchscript
    case monaiBundle = "monai-bundle"

    public static func parse(_ text: String) throws -> ExportFormat {
        guard let format = ExportFormat(rawValue: text) else {
            throw SegmentationError.unsupportedExport("unknown export format '\(text)'; use one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return format
    }
}

extension RunExport {
    /// Concord's forward on one patch-sized input, for checking an export elsewhere: writes
    /// `input` (standard normal, seeded) and `output` (what the exported forward must return) as
    /// safetensors, and returns the median wall time of `repeats` Concord forward passes.
    @discardableResult
    public func writeReference(to url: URL, seed: UInt64 = 0, repeats: Int = 3) throws -> Double {
        try Runtime.manualSeed(seed)
        let patch = predictor.description.config.volumePatch
        let spatial = predictor.description.config.unet.rank == 2 ? Array(patch.dropFirst()) : patch
        let x = try Tensor.randn([1, head.inputChannels.count] + spatial)
        var output = try ModelExport.concordOutput(method: predictor.method, head: head, input: x)
        var times: [Double] = []
        for _ in 0..<Swift.max(repeats, 1) {
            let start = Date()
            output = try ModelExport.concordOutput(method: predictor.method, head: head, input: x)
            _ = try output.sum().item()
            times.append(Date().timeIntervalSince(start))
        }
        try Safetensors.write([("input", x), ("output", output)], metadata: ["head": head.name, "output": head.output], to: url)
        return times.sorted()[times.count / 2]
    }
}
