import Essentials
import Foundation
import Torch
import Volumes

/// A run as a MONAI bundle folder:
///
///     configs/metadata.json   inputs (channel names), outputs (class names), versions
///     configs/inference.json  Concord's preprocessing as MONAI transforms, a Gaussian-weighted
///                             SlidingWindowInferer with the run's patch and overlap, the
///                             TorchScript model, softmax/argmax and the inverse of the
///                             preprocessing, masks saved as NIfTI
///     models/model.ts         the TorchScript export of the selected head, taking MONAI's
///                             (B, C, i, j, k) axis order
///     labels.ctbl, labels.itksnap.txt   label colour tables
///
/// Inputs: `datalist`, a list of {"image_0": path, "image_1": path, ...} (one key per input
/// channel of the head, in `metadata.json`'s channel order); masks go to `output_dir`.
enum MONAIBundleWriter {
    static func inputKeys(_ head: ExportHead) -> [String] { head.inputChannels.indices.map { "image_\($0)" } }

    /// One channel's intensity normalisation as MONAI transforms on key `key`.
    static func normalization(_ n: ChannelNormalization, key: String) -> [[String: Any]] {
        switch n {
        case let .ct(clipLow, clipHigh, mean, std):
            // Clip then (x - mean) / std is one clipped linear map of [clipLow, clipHigh].
            let s = Swift.max(std, 1e-8)
            return [["_target_": "ScaleIntensityRanged", "keys": key, "a_min": clipLow, "a_max": clipHigh,
                     "b_min": (clipLow - mean) / s, "b_max": (clipHigh - mean) / s, "clip": true]]
        case let .zscore(nonZeroOnly):
            return [["_target_": "NormalizeIntensityd", "keys": key, "nonzero": nonZeroOnly]]
        case .none:
            return []
        }
    }

    static func inference(_ export: RunExport) throws -> [String: Any] {
        let plan = export.predictor.description.plan
        let head = export.head
        let keys = inputKeys(head)
        var pre: [[String: Any]] = [
            ["_target_": "LoadImaged", "keys": keys, "image_only": true],
            ["_target_": "EnsureChannelFirstd", "keys": keys],
        ]
        if plan.reorientToRAS { pre.append(["_target_": "Orientationd", "keys": keys, "axcodes": "RAS"]) }
        if plan.resampleChannelsToFirst && keys.count > 1 {
            pre.append(["_target_": "ResampleToMatchd", "keys": Array(keys.dropFirst()), "key_dst": keys[0], "mode": "bilinear"])
        }
        pre.append(["_target_": "ConcatItemsd", "keys": keys, "name": "image", "dim": 0])
        // Only `image` may remain with the `image_` prefix: Spacingd treats other such keys as
        // metadata dictionaries.
        pre.append(["_target_": "DeleteItemsd", "keys": keys])
        if plan.cropToNonZero {
            pre.append(["_target_": "CropForegroundd", "keys": "image", "source_key": "image", "select_fn": "$lambda x: x != 0",
                        "allow_smaller": true])
        }
        // Per-channel normalisation on the cropped grid, then resampling, as Concord orders them.
        pre.append(["_target_": "SplitDimd", "keys": "image", "output_postfixes": keys.indices.map { "c\($0)" },
                    "dim": 0, "keepdim": true, "update_meta": false])
        for (i, m) in head.inputChannels.enumerated() {
            pre += normalization(plan.normalization[m], key: "image_c\(i)")
        }
        pre.append(["_target_": "ConcatItemsd", "keys": keys.indices.map { "image_c\($0)" }, "name": "image", "dim": 0])
        pre.append(["_target_": "DeleteItemsd", "keys": keys.indices.map { "image_c\($0)" }])
        pre.append(["_target_": "Spacingd", "keys": "image", "pixdim": plan.targetSpacing, "mode": "bilinear"])
        pre.append(["_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"])

        let post: [[String: Any]] = [
            ["_target_": "Activationsd", "keys": "pred", "softmax": true],
            ["_target_": "AsDiscreted", "keys": "pred", "argmax": true],
            ["_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
             "nearest_interp": true, "to_tensor": true],
            ["_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg",
             "output_dtype": "$numpy.uint8", "resample": false, "separate_folder": false],
        ]
        return [
            "imports": ["$import torch", "$import numpy"],
            "bundle_root": ".",
            "output_dir": "$@bundle_root + '/eval'",
            "device": "$torch.device('cpu')",
            "datalist": [] as [Any],
            "network_def": "$torch.jit.load(@bundle_root + '/models/model.ts')",
            "network": "$@network_def.to(@device).eval()",
            "preprocessing": ["_target_": "Compose", "transforms": pre],
            "dataset": ["_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"],
            "dataloader": ["_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": false, "num_workers": 0],
            // MONAI's arrays are (C, i, j, k): the patch in that order (Concord's is D H W = k j i).
            "inferer": ["_target_": "SlidingWindowInferer", "roi_size": Array(export.predictor.description.config.volumePatch.reversed()),
                        "sw_batch_size": export.predictor.description.config.windowBatch,
                        "overlap": export.predictor.inference.overlap, "mode": "gaussian", "sigma_scale": 0.125,
                        "padding_mode": "constant", "cval": 0.0],
            "postprocessing": ["_target_": "Compose", "transforms": post],
            "evaluator": ["_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                          "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing", "amp": false],
            "initialize": ["$monai.utils.set_determinism(seed=0)"],
            "run": ["$@evaluator.run()"],
        ]
    }

    static func metadata(_ export: RunExport, _ meta: ExportMetadata) -> [String: Any] {
        let patch = Array(export.predictor.description.config.volumePatch.reversed())
        return [
            "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
            "version": "0.1.0",
            "monai_version": "1.3.0",
            "pytorch_version": "1.13.1",
            "numpy_version": "1.24.0",
            "required_packages_version": ["nibabel": "5.0.0"],
            "task": "Segmentation of \(meta.classNames.count - 1) structures (\(meta.dataset))",
            "name": "concord-\(meta.method)-\(meta.head)",
            "description": "Concord \(meta.method) run, head \(meta.head), exported with concord export --format monai-bundle.",
            "authors": "Concord",
            "copyright": "",
            "changelog": ["0.1.0": "exported by concord"],
            "concord": (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(meta))) ?? [:],
            "network_data_format": [
                "inputs": ["image": [
                    "type": "image", "format": "magnitude", "modality": meta.inputChannels.joined(separator: "+"),
                    "num_channels": meta.inputChannels.count, "spatial_shape": patch, "dtype": "float32",
                    "value_range": [] as [Any], "is_patch_data": true,
                    "channel_def": Dictionary(uniqueKeysWithValues: meta.inputChannels.enumerated().map { ("\($0.offset)", $0.element) }),
                ]],
                "outputs": ["pred": [
                    "type": "image", "format": "segmentation", "num_channels": meta.classNames.count, "spatial_shape": patch,
                    "dtype": "float32", "value_range": [] as [Any], "is_patch_data": true, "channel_def": meta.classNames,
                ]],
            ],
        ]
    }
}

extension RunExport {
    /// Writes a MONAI bundle folder (see `MONAIBundleWriter`) for a 3D run.
    public func writeMONAIBundle(to folder: URL) throws {
        guard predictor.description.config.unet.rank == 3 else {
            throw SegmentationError.unsupportedExport("monai-bundle: only 3D runs are supported (this run's network is 2D); export it with --format torchscript")
        }
        let meta = try metadata(layout: .voxelIndex)
        let models = folder.appendingPathComponent("models"), configs = folder.appendingPathComponent("configs")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: configs, withIntermediateDirectories: true)
        try writeTorchScript(to: models.appendingPathComponent("model.ts"), layout: .voxelIndex)
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(JSONSerialization.data(withJSONObject: MONAIBundleWriter.metadata(self, meta), options: options),
                             to: configs.appendingPathComponent("metadata.json"))
        try AtomicFile.write(JSONSerialization.data(withJSONObject: MONAIBundleWriter.inference(self), options: options),
                             to: configs.appendingPathComponent("inference.json"))
        try LabelTables.write(predictor.description.classNames, to: folder)
    }
}
