import Datasets
import Foundation
import Metrics
import XCTest
@testable import Segmentation
import Reports
@testable import Torch
import Volumes

/// The whole pipeline on a tiny phantom (24 x 24 x 12 voxels, a few iterations): synth -> train ->
/// resume -> predict -> evaluate -> report, through the library and through the `concord` binary.
final class EndToEndTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    static func tinyConfig() -> TrainingConfig {
        var c = DemoPipeline.defaultConfig()
        c.patch = [16, 24, 24]
        c.unet = UNetConfig(widths: [4, 8, 16])
        c.labeledBatch = 1
        c.unlabeledBatch = 2
        c.validationInterval = 2
        c.checkpointInterval = 2
        c.logInterval = 1
        return c
    }

    func testDemoPipelineWritesEverythingInTheInputGeometry() throws {
        var demo = DemoPipeline(out: root)
        demo.cases = 10
        demo.unlabeledCases = 2
        demo.size = 24
        demo.iterations = 3
        demo.config = Self.tinyConfig()
        let result = try demo.runWithReport(log: { _ in })
        for file in ["evaluation.json", "evaluation.csv", "report.html", "run/run.json", "run/config.yaml", "run/log.jsonl",
                     "run/splits.json", "run/checkpoints/last.safetensors", "run/checkpoints/best.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent(file).path), file)
        }
        // The evaluation file has the documented layout and one entry per test case.
        let evaluation = try EvaluationReport.decode(from: Data(contentsOf: root.appendingPathComponent("evaluation.json")))
        XCTAssertEqual(evaluation.cases.count, result.report.cases.count)
        XCTAssertEqual(Set(evaluation.cases[0].classes.keys), ["1", "2", "3"])
        // Every predicted mask has exactly its input's grid and codes.
        let splits = try Splits.load(from: root.appendingPathComponent("run/splits.json"))
        XCTAssertFalse(splits.test.isEmpty)
        for name in splits.test {
            let input = try NIfTI.read(root.appendingPathComponent("dataset/imagesTr/\(name)_0000.nii.gz"))
            let mask = try NIfTI.read(root.appendingPathComponent("predictions/\(name).nii.gz"))
            XCTAssertEqual(mask.volume.shape, input.volume.shape, name)
            XCTAssertEqual(mask.volume.affine, input.volume.affine, name)
            XCTAssertEqual(mask.header.sformCode, input.header.sformCode, name)
            XCTAssertEqual(mask.header.qformCode, input.header.qformCode, name)
            XCTAssertEqual(mask.header.datatype, .uint8)
            XCTAssertTrue(mask.volume.voxels.allSatisfy { $0 >= 0 && $0 <= 3 && $0 == $0.rounded() })
        }
        let html = try String(contentsOf: root.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("data:image/png;base64,"))
        XCTAssertTrue(html.contains("<svg"))
    }

    // MARK: through the binary

    /// The `concord` executable built next to the test bundle.
    var concord: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("concord")
    }

    @discardableResult
    func runConcord(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: concord.path) else {
            XCTFail("the concord binary is not at \(concord.path): build it with `swift build` (swift test builds it)", file: file, line: line)
            return ""
        }
        var env = ProcessInfo.processInfo.environment
        env["CONCORD_THREADS"] = "2"
        let (terminationStatus, output) = try runProcess(concord, arguments, environment: env)
        XCTAssertEqual(terminationStatus, status, "concord \(arguments.joined(separator: " ")):\n\(output)", file: file, line: line)
        return output
    }

    func testCLITrainResumePredictEvaluateReport() throws {
        let data = root.appendingPathComponent("data").path, run = root.appendingPathComponent("run").path
        try runConcord(["synth", "--out", data, "--cases", "8", "--unlabeled", "2", "--size", "24", "--seed", "3"])
        try runConcord(["check", data])
        let yaml = root.appendingPathComponent("tiny.yaml")
        try """
        patch: [16, 24, 24]
        unet: {widths: [4, 8, 16]}
        labeledBatch: 1
        unlabeledBatch: 1
        validationInterval: 2
        checkpointInterval: 1
        logInterval: 1
        """.write(to: yaml, atomically: true, encoding: .utf8)
        try runConcord(["train", "--dataset", data, "--method", "cmc", "--labeled", "0.5", "--iterations", "2", "--config", yaml.path, "--out", run])
        // Refuses to overwrite an existing run; --resume continues it to more iterations.
        try runConcord(["train", "--dataset", data, "--iterations", "3", "--out", run], expect: 64)
        let resumed = try runConcord(["train", "--dataset", data, "--iterations", "3", "--resume", "--out", run])
        XCTAssertTrue(resumed.contains("resuming from iteration 2"), resumed)
        XCTAssertTrue(resumed.contains("plan: reusing"), resumed)
        let splits = try Splits.load(from: URL(fileURLWithPath: run).appendingPathComponent("splits.json"))
        let inputs = splits.test.flatMap { name in (0..<2).map { "\(data)/imagesTr/\(name)_000\($0).nii.gz" } }
        let predictions = root.appendingPathComponent("pred").path
        try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", predictions])
        // The same masks as 3D Slicer segmentations (named segments); an unknown format is refused.
        let slicer = root.appendingPathComponent("pred-nrrd").path
        try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", slicer, "--format", "seg.nrrd"])
        for name in splits.test {
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "\(slicer)/\(name).seg.nrrd")).prefix(2000), as: UTF8.self)
            XCTAssertTrue(text.hasPrefix("NRRD0004") && text.contains("Segment0_Name:=LV"), text)
        }
        let refused = try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", slicer, "--format", "dicom-seg"], expect: 64)
        XCTAssertTrue(refused.contains("--format dicom-seg: must be nifti, seg.nrrd"), refused)
        let references = root.appendingPathComponent("gt")
        try FileManager.default.createDirectory(at: references, withIntermediateDirectories: true)
        for name in splits.test {
            try FileManager.default.copyItem(atPath: "\(data)/labelsTr/\(name).nii.gz", toPath: references.appendingPathComponent("\(name).nii.gz").path)
        }
        let json = root.appendingPathComponent("eval.json").path
        try runConcord(["evaluate", "--pred", predictions, "--gt", references.path, "--json", json, "--csv", root.appendingPathComponent("eval.csv").path])
        XCTAssertEqual(try EvaluationReport.decode(from: Data(contentsOf: URL(fileURLWithPath: json))).cases.count, splits.test.count)
        try runConcord(["report", "--run", run, "--eval", json, "--pred", predictions, "--out", root.appendingPathComponent("r.html").path])
        // A CT-only style prediction: one modality through its own branch.
        try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", root.appendingPathComponent("pred0").path, "--modality", "bSSFP", "--head", "bSSFP"])

        // `evaluate --run` (one process, every level and head) equals predict + evaluate per level and head.
        let misaligned = root.appendingPathComponent("pred-misaligned").path
        try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", misaligned, "--head", "LGE",
                        "--misalign-mm", "3", "--misalign-deg", "2", "--seed", "5"])
        let misalignedJSON = root.appendingPathComponent("eval-misaligned.json").path
        try runConcord(["evaluate", "--pred", misaligned, "--gt", references.path, "--labels", "1,2,3", "--json", misalignedJSON])
        let alignedJSON = root.appendingPathComponent("eval-aligned.json").path
        try runConcord(["evaluate", "--pred", predictions, "--gt", references.path, "--labels", "1,2,3", "--json", alignedJSON])
        let runJSON = root.appendingPathComponent("eval-run.json")
        let printed = try runConcord(["evaluate", "--run", run, "--misalign-mm", "0", "3", "--misalign-deg", "0", "2", "--seed", "5",
                                      "--head", "all", "--labels", "1,2,3", "--json", runJSON.path])
        XCTAssertTrue(printed.contains("test split, head LGE, misalignment 3 mm / 2 deg"), printed)
        let results = try JSONDecoder().decode([RunEvaluationResult].self, from: Data(contentsOf: runJSON))
        XCTAssertEqual(results.count, 2 * 3)   // 2 levels x heads bSSFP, LGE, mean
        let aligned = try XCTUnwrap(results.first { $0.misalignment.isAligned && $0.head == "mean" })
        let moved = try XCTUnwrap(results.first { $0.misalignment.maxTranslationMM == 3 && $0.misalignment.maxRotationDegrees == 2 && $0.head == "LGE" })
        XCTAssertEqual(aligned.report, try EvaluationReport.decode(from: Data(contentsOf: URL(fileURLWithPath: alignedJSON))))
        XCTAssertEqual(moved.report, try EvaluationReport.decode(from: Data(contentsOf: URL(fileURLWithPath: misalignedJSON))))
        // Mixed modes and mismatched level lists are refused with a message.
        let mixed = try runConcord(["evaluate", "--run", run, "--pred", predictions], expect: 64)
        XCTAssertTrue(mixed.contains("one or the other"), mixed)
        let uneven = try runConcord(["evaluate", "--run", run, "--misalign-mm", "0", "2", "--misalign-deg", "1"], expect: 64)
        XCTAssertTrue(uneven.contains("--misalign-deg gives 1 value(s) for 2"), uneven)
    }

    func testCorruptDatasetGivesClearErrorAndNonZeroExit() throws {
        let data = root.appendingPathComponent("data")
        try runConcord(["synth", "--out", data.path, "--cases", "4", "--size", "16"])
        // Truncate one image and delete another case's second channel.
        let victim = data.appendingPathComponent("imagesTr/phantom_001_0000.nii.gz")
        let bytes = try Data(contentsOf: victim)
        try bytes.prefix(bytes.count / 3).write(to: victim)
        try FileManager.default.removeItem(at: data.appendingPathComponent("imagesTr/phantom_002_0001.nii.gz"))
        let check = try runConcord(["check", data.path], expect: 1)
        XCTAssertTrue(check.contains("phantom_001_0000.nii.gz"), check)
        XCTAssertTrue(check.contains("phantom_002"), check)
        let train = try runConcord(["train", "--dataset", data.path, "--out", root.appendingPathComponent("run").path, "--patch", "16"], expect: 1)
        XCTAssertTrue(train.contains("phantom_002"), train)
    }

    /// kill -9 at arbitrary moments of a run that checkpoints every iteration never leaves an
    /// unreadable checkpoint: writes go to a temporary file that is renamed into place.
    func testKilledRunLeavesALoadableCheckpoint() throws {
        let data = root.appendingPathComponent("data").path, run = root.appendingPathComponent("run")
        try runConcord(["synth", "--out", data, "--cases", "6", "--size", "24"])
        let yaml = root.appendingPathComponent("tiny.yaml")
        try "patch: [16, 24, 24]\nunet: {widths: [4, 8, 16]}\ncheckpointInterval: 1\nvalidationInterval: 1000\n".write(to: yaml, atomically: true, encoding: .utf8)
        let last = run.appendingPathComponent("checkpoints/last.safetensors")
        /// Waits (up to 2 min, however loaded the machine) until the run has written its first checkpoint.
        func waitForFirstCheckpoint(_ process: Process) {
            let deadline = Date().addingTimeInterval(120)
            while !FileManager.default.fileExists(atPath: last.path) && process.isRunning && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        var loaded = 0
        // Killed at different moments after the first checkpoint, i.e. while later checkpoints
        // (one per iteration here) are being written.
        for delay in [0.0, 0.07, 0.31] {
            try? FileManager.default.removeItem(at: run)
            let process = Process()
            process.executableURL = concord
            process.arguments = ["train", "--dataset", data, "--method", "supervised", "--iterations", "1000", "--config", yaml.path, "--out", run.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            waitForFirstCheckpoint(process)
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if FileManager.default.fileExists(atPath: last.path) {
                let ck = try Checkpoint.read(last)
                XCTAssertGreaterThan(ck.iteration, 0)
                XCTAssertFalse(ck.model.isEmpty)
                loaded += 1
            }
        }
        XCTAssertGreaterThan(loaded, 0, "no kill happened after the first checkpoint; the test proved nothing")
        // Ctrl-C (SIGINT) saves a checkpoint at the current iteration and exits with status 130.
        try? FileManager.default.removeItem(at: run)
        let interrupted = Process()
        interrupted.executableURL = concord
        interrupted.arguments = ["train", "--dataset", data, "--method", "supervised", "--iterations", "1000", "--config", yaml.path, "--out", run.path]
        let pipe = Pipe()
        interrupted.standardOutput = pipe
        interrupted.standardError = pipe
        try interrupted.run()
        waitForFirstCheckpoint(interrupted)
        kill(interrupted.processIdentifier, SIGINT)
        let text = String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
        interrupted.waitUntilExit()
        XCTAssertEqual(interrupted.terminationStatus, 130, text)
        XCTAssertTrue(text.contains("interrupted at iteration"), text)
        XCTAssertGreaterThan(try Checkpoint.read(run.appendingPathComponent("checkpoints/last.safetensors")).iteration, 0)
        // The interrupted run resumes.
        if FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/last.safetensors").path) {
            let ck = try Checkpoint.read(run.appendingPathComponent("checkpoints/last.safetensors"))
            try runConcord(["train", "--dataset", data, "--iterations", "\(ck.iteration + 1)", "--resume", "--out", run.path])
        }
    }

    /// Unpaired modalities (the AMOS setting): each case has one modality, dataset.json says
    /// "pairing": "unpaired" with channels_present; check passes, CMC trains (one case per modality
    /// per batch element) and predicts single-modality cases through their own branch.
    func testUnpairedDatasetTrainsAndPredicts() throws {
        let data = root.appendingPathComponent("data")
        try runConcord(["synth", "--out", data.path, "--cases", "8", "--unlabeled", "2", "--size", "24"])
        let fm = FileManager.default
        var present: [String: [Int]] = [:]
        for folder in ["imagesTr", "imagesUnlabeled"] {
            let names = try fm.contentsOfDirectory(atPath: data.appendingPathComponent(folder).path)
                .filter { $0.hasSuffix("_0000.nii.gz") }.map { String($0.dropLast(12)) }.sorted()
            for (i, name) in names.enumerated() {
                let drop = i % 2 == 0 ? 1 : 0
                try fm.removeItem(at: data.appendingPathComponent("\(folder)/\(name)_000\(drop).nii.gz"))
                present[name] = [1 - drop]
            }
        }
        let url = data.appendingPathComponent("dataset.json")
        var description = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        description["pairing"] = "unpaired"
        description["channels_present"] = present
        try JSONSerialization.data(withJSONObject: description).write(to: url)
        try runConcord(["check", data.path])
        let yaml = root.appendingPathComponent("tiny.yaml")
        try "patch: [16, 24, 24]\nunet: {widths: [4, 8, 16]}\nvalidationInterval: 2\n".write(to: yaml, atomically: true, encoding: .utf8)
        let run = root.appendingPathComponent("run").path
        try runConcord(["train", "--dataset", data.path, "--method", "cmc", "--labeled", "1.0", "--iterations", "2", "--config", yaml.path, "--out", run])
        let splits = try Splits.load(from: URL(fileURLWithPath: run).appendingPathComponent("splits.json"))
        let inputs = try splits.test.map { name -> String in
            let m = try XCTUnwrap(present[name]?.first)
            return data.appendingPathComponent("imagesTr/\(name)_000\(m).nii.gz").path
        }
        let predictions = root.appendingPathComponent("pred")
        try runConcord(["predict", "--run", run, "--input"] + inputs + ["--out", predictions.path])
        for (name, input) in zip(splits.test, inputs) {
            let mask = try NIfTI.read(predictions.appendingPathComponent("\(name).nii.gz")).volume
            XCTAssertEqual(mask.shape, try NIfTI.read(URL(fileURLWithPath: input)).volume.shape)
        }
        // `evaluate --run --head all`: each modality's head is scored on the cases that have it,
        // the mean head on all of them.
        let json = root.appendingPathComponent("eval.json")
        try runConcord(["evaluate", "--run", run, "--head", "all", "--json", json.path])
        let results = try JSONDecoder().decode([RunEvaluationResult].self, from: Data(contentsOf: json))
        XCTAssertEqual(results.map(\.head), ["bSSFP", "LGE", "mean"])
        for (m, head) in ["bSSFP", "LGE"].enumerated() {
            let expected = splits.test.filter { present[$0] == [m] }.sorted()
            XCTAssertEqual(results.first { $0.head == head }?.report.cases.map(\.caseName), expected, head)
        }
        XCTAssertEqual(results.first { $0.head == "mean" }?.report.cases.map(\.caseName), splits.test.sorted())
    }
}
