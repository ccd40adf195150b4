import Foundation
import XCTest
@testable import Segmentation
import Torch
import Volumes

/// `concord export` on run folders: the exported file carries the run's metadata, the MONAI bundle
/// has its layout, label tables are written, bad input gets a clear error.
final class ExportRunTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("concord-export-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Runtime.manualSeed(5)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    let classNames = [0: "background", 1: "left ventricle", 2: "myocardium"]

    /// A run folder (run.json + checkpoints/best.safetensors) of a small CMC model; `weights: false`
    /// leaves the checkpoint out.
    func makeRun(weights: Bool = true) throws -> (URL, SegmentationMethod) {
        let run = folder.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        var config = TrainingConfig()
        config.method = "cmc"
        config.patch = [16, 16, 16]
        config.unet = UNetConfig(widths: [4, 8, 16])
        let plan = PreprocessingPlan(targetSpacing: [1.5, 1.5, 3], normalization: [.zscore(nonZeroOnly: true), .ct(clipLow: -100, clipHigh: 300, mean: 40, std: 80)],
                                     channelNames: ["MR", "CT"])
        let description = RunDescription(concordVersion: "test", dataset: "phantom", modalityNames: ["MR", "CT"], classNames: classNames,
                                         paired: true, fileEnding: ".nii.gz", plan: plan, config: config)
        try description.write(to: run)
        let method = try MethodRegistry.make(config: config, modalityNames: ["MR", "CT"], numClasses: 3)
        if weights { try Checkpoint(model: method.model.stateDict()).write(to: run.appendingPathComponent("checkpoints/best.safetensors")) }
        return (run, method)
    }

    func testTorchScriptExportOfARunCarriesItsWeightsAndMetadata() throws {
        let (run, method) = try makeRun()
        let export = try RunExport(run: run, head: "only(CT)")
        let url = folder.appendingPathComponent("model.pt")
        try export.writeTorchScript(to: url)
        let meta = try JSONDecoder().decode(ExportMetadata.self, from: ScriptModule.extraFile(ModelExport.metadataFile, in: url))
        XCTAssertEqual(meta.head, "only(CT)")
        XCTAssertEqual(meta.inputChannels, ["CT"])
        XCTAssertEqual(meta.inputChannelIndices, [1])
        XCTAssertEqual(meta.classNames["1"], "left ventricle")
        XCTAssertEqual(meta.patch, [16, 16, 16])
        XCTAssertEqual(meta.preprocessing.targetSpacing, [1.5, 1.5, 3])
        XCTAssertEqual(meta.preprocessing.normalization[1], .ct(clipLow: -100, clipHigh: 300, mean: 40, std: 80))
        XCTAssertEqual(meta.availableHeads, ["only(MR)", "only(CT)", "MR", "CT", "mean"])
        // The weights are the checkpoint's: the exported CT-only path equals the saved model's.
        let x = try Tensor.randn([1, 1, 16, 16, 16])
        method.model.eval()
        let cmc = try XCTUnwrap(method as? CMCMethod)
        let expected = try withNoGrad { try cmc.network([nil, x]).logits[1]! }
        let exported = try ScriptModule.load(url).forward([x])
        XCTAssertLessThanOrEqual(Float(try (exported - expected).abs().max().item()), ExportTests.tolerance)
    }

    func testMONAIBundleLayout() throws {
        let (run, _) = try makeRun()
        let bundle = folder.appendingPathComponent("bundle")
        try RunExport(run: run).writeMONAIBundle(to: bundle)
        for path in ["configs/metadata.json", "configs/inference.json", "models/model.ts", LabelTables.slicerFile, LabelTables.itkSnapFile] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: bundle.appendingPathComponent(path).path), path)
        }
        let metadata = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: bundle.appendingPathComponent("configs/metadata.json"))) as? [String: Any])
        let format = try XCTUnwrap(metadata["network_data_format"] as? [String: Any])
        let inputs = try XCTUnwrap((format["inputs"] as? [String: Any])?["image"] as? [String: Any])
        XCTAssertEqual(inputs["channel_def"] as? [String: String], ["0": "MR", "1": "CT"])
        let outputs = try XCTUnwrap((format["outputs"] as? [String: Any])?["pred"] as? [String: Any])
        XCTAssertEqual(outputs["channel_def"] as? [String: String], ["0": "background", "1": "left ventricle", "2": "myocardium"])
        let inference = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: bundle.appendingPathComponent("configs/inference.json"))) as? [String: Any])
        let inferer = try XCTUnwrap(inference["inferer"] as? [String: Any])
        XCTAssertEqual(inferer["roi_size"] as? [Int], [16, 16, 16])
        XCTAssertEqual(inferer["overlap"] as? Double, 0.5)
        let transforms = try XCTUnwrap((inference["preprocessing"] as? [String: Any])?["transforms"] as? [[String: Any]])
        let spacing = try XCTUnwrap(transforms.first { $0["_target_"] as? String == "Spacingd" })
        XCTAssertEqual(spacing["pixdim"] as? [Double], [1.5, 1.5, 3])
        // CT normalisation: clip to [-100, 300], then (x - 40) / 80.
        let ct = try XCTUnwrap(transforms.first { $0["_target_"] as? String == "ScaleIntensityRanged" })
        XCTAssertEqual(ct["b_min"] as? Double, -1.75)
        XCTAssertEqual(ct["b_max"] as? Double, 3.25)
    }

    func testLabelTablesListEveryClassWithNameAndColour() throws {
        try LabelTables.write(classNames, to: folder)
        let slicer = try String(contentsOf: folder.appendingPathComponent(LabelTables.slicerFile), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(slicer, ["0 background 0 0 0 0", "1 left_ventricle 230 159 0 255", "2 myocardium 86 180 233 255"])
        let snap = try String(contentsOf: folder.appendingPathComponent(LabelTables.itkSnapFile), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(snap.count, 3)
        let fields = snap[1].split(separator: " ", omittingEmptySubsequences: true)
        XCTAssertEqual(fields.prefix(7).map(String.init), ["1", "230", "159", "0", "1.00", "1", "1"])
        XCTAssertTrue(snap[1].hasSuffix("\"left ventricle\""))
    }

    func testRunWithoutWeightsIsAClearError() throws {
        let (run, _) = try makeRun(weights: false)
        XCTAssertThrowsError(try RunExport(run: run)) { error in
            guard case let SegmentationError.invalidRun(path, problem) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, run.path)
            XCTAssertTrue(problem.contains("no weights") && problem.contains("best.safetensors"), problem)
        }
    }

    func testFolderThatIsNoRunIsAClearError() throws {
        XCTAssertThrowsError(try RunExport(run: folder)) { error in
            guard case let SegmentationError.invalidRun(path, problem) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, self.folder.path)
            XCTAssertEqual(problem, "not a Concord run (no run.json)")
        }
    }

    func testUnknownHeadOfARunIsAClearError() throws {
        let (run, _) = try makeRun()
        XCTAssertThrowsError(try RunExport(run: run, head: "PET")) { error in
            XCTAssertTrue("\(error)".contains("head 'PET' does not exist"), "\(error)")
        }
    }

    func testUnknownFormatIsAClearError() throws {
        XCTAssertThrowsError(try ExportFormat.parse("onnx")) { error in
            XCTAssertTrue("\(error)".contains("unknown export format 'onnx'"), "\(error)")
            XCTAssertTrue("\(error)".contains("torchscript, monai-bundle"), "\(error)")
        }
        XCTAssertEqual(try ExportFormat.parse("monai-bundle"), .monaiBundle)
    }
}
