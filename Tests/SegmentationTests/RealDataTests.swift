import Foundation
import Metrics
import XCTest
@testable import Segmentation
import Volumes

/// Real scans (issue 8): the unpaired CT/MR dataset that `scripts/fetch-real-data` builds from
/// TotalSegmentator 2.18.0's example scans. Their masks were produced by the TotalSegmentator
/// model, not drawn by hand.
///
/// Runs only when CONCORD_REAL_DATA names that dataset (`make test-real` sets it, and builds the
/// release binary it uses through CONCORD_BINARY: training in a debug build would be slow).
/// CONCORD_REAL_OUT, when set, keeps the run, predictions and evaluations there.
///
/// What it shows: `concord check` accepts the dataset; CMC in unpaired mode (one CT and one MR of
/// different patients per batch element, the unlabelled CT slab as unlabelled data) trains a short
/// budget; each training scan, given alone, is predicted through its own modality's branch, in
/// its own geometry, and overlaps its reference. The bar is deliberately low and honest: after
/// 400 iterations on two labelled scans (12 organs), the liver, the largest organ, reaches Dice
/// >= 0.5 on the scans the model was trained on, in both modalities (measured: 0.71 CT, 0.93 MR;
/// most small organs are still at 0 after this budget, see BENCHMARKS.md). It checks that real
/// data flows through correctly; it is not a measure of accuracy or generalisation.
final class RealDataTests: XCTestCase {
    static let iterations = 400
    static let liver = "5"
    static let bar = 0.5

    func testUnpairedCMCOnRealCTAndMR() throws {
        guard let dataPath = ProcessInfo.processInfo.environment["CONCORD_REAL_DATA"] else {
            throw XCTSkip("set CONCORD_REAL_DATA (make test-real runs scripts/fetch-real-data and sets it)")
        }
        let data = URL(fileURLWithPath: dataPath)
        let env = ProcessInfo.processInfo.environment
        let keep = env["CONCORD_REAL_OUT"].map { URL(fileURLWithPath: $0) }
        let root = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("concord-real-\(UUID().uuidString)")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: root) } }

        /// Runs the CLI; a non-zero exit fails the test with the command and its output.
        func run(_ arguments: [String]) throws -> String {
            let (status, output) = try runProcess(concordBinary, arguments)
            if status != 0 {
                struct CommandFailed: Error, CustomStringConvertible { var description: String }
                throw CommandFailed(description: "concord \(arguments.joined(separator: " ")) exited with \(status):\n\(output)")
            }
            return output
        }

        let check = try run(["check", data.path])
        XCTAssertTrue(check.contains("0 error(s)"), check)

        let config = root.appendingPathComponent("real.yaml")
        try """
        patch: [16, 64, 64]
        unet: {widths: [8, 16, 32, 64]}
        labeledBatch: 2
        unlabeledBatch: 2
        learningRate: 0.003
        validationInterval: 100
        checkpointInterval: 100
        logInterval: 50
        """.write(to: config, atomically: true, encoding: .utf8)
        let runFolder = root.appendingPathComponent("run")
        let started = Date()
        _ = try run(["train", "--dataset", data.path, "--method", "cmc", "--labeled", "1.0", "--iterations", String(Self.iterations),
                     "--seed", "0", "--config", config.path, "--out", runFolder.path])
        let trainSeconds = Date().timeIntervalSince(started)

        var summary: [String: Any] = ["iterations": Self.iterations, "train_s": trainSeconds]
        for (name, channel) in [("ct", 0), ("mr", 1)] {
            let input = data.appendingPathComponent("imagesTr/\(name)_000\(channel).nii.gz")
            let predictions = root.appendingPathComponent("pred-\(name)")
            _ = try run(["predict", "--run", runFolder.path, "--checkpoint", "last", "--input", input.path, "--out", predictions.path])
            // The prediction keeps the input's geometry exactly.
            let image = try NIfTI.read(input), mask = try NIfTI.read(predictions.appendingPathComponent("\(name).nii.gz"))
            XCTAssertEqual(mask.volume.shape, image.volume.shape, name)
            XCTAssertEqual(mask.volume.affine, image.volume.affine, name)
            XCTAssertEqual(mask.header.qformCode, image.header.qformCode, name)
            XCTAssertEqual(mask.header.sformCode, image.header.sformCode, name)

            let references = root.appendingPathComponent("gt-\(name)")
            try FileManager.default.createDirectory(at: references, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: data.appendingPathComponent("labelsTr/\(name).nii.gz"),
                                             to: references.appendingPathComponent("\(name).nii.gz"))
            let json = root.appendingPathComponent("evaluation-\(name).json")
            _ = try run(["evaluate", "--pred", predictions.path, "--gt", references.path,
                         "--labels", (1...12).map(String.init).joined(separator: ","), "--json", json.path])
            let report = try EvaluationReport.decode(from: Data(contentsOf: json))
            let dice = try report.cases[0].classes.mapValues { try XCTUnwrap($0.dice) }
            let liver = dice[Self.liver] ?? 0
            let mean = dice.values.reduce(0, +) / Double(max(dice.count, 1))
            print("real data, \(name.uppercased()): Dice per class \(dice.keys.sorted { Int($0)! < Int($1)! }.map { "\($0): \(String(format: "%.3f", dice[$0]!))" }.joined(separator: ", ")); mean \(String(format: "%.3f", mean))")
            XCTAssertGreaterThanOrEqual(liver, Self.bar, "\(name): liver Dice \(liver) < \(Self.bar)")
            summary[name] = ["dice": dice, "mean_dice": mean]
        }
        let out = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
        try out.write(to: root.appendingPathComponent("summary.json"))
        print(String(data: out, encoding: .utf8)!)
    }

    /// A real scanner DICOM series (TotalSegmentator's example CT: 20 JPEG 2000 compressed slices,
    /// anonymised with a blank SeriesInstanceUID) through `concord convert dicom` (dcm2niix plus
    /// Concord's own geometry check): the volume lands on the grid of the segmentation
    /// TotalSegmentator's authors produced from the same series (example_seg_dicom.nii.gz).
    func testRealDICOMSeriesConvertsOntoTheReferenceGrid() throws {
        guard let references = ProcessInfo.processInfo.environment["CONCORD_REAL_REFERENCE"] else {
            throw XCTSkip("set CONCORD_REAL_REFERENCE (make test-real sets it to the extracted TotalSegmentator test files)")
        }
        let refs = URL(fileURLWithPath: references)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-dicom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.copyItem(at: refs.appendingPathComponent("example_ct_dicom"), to: root.appendingPathComponent("src/ct"))
        let (status, output) = try runProcess(concordBinary, ["convert", "dicom", root.appendingPathComponent("src").path,
                                                              "--out", root.appendingPathComponent("out").path])
        XCTAssertEqual(status, 0, output)
        let image = try NIfTI.read(root.appendingPathComponent("out/imagesUnlabeled/ct_0000.nii.gz"))
        let reference = try NIfTI.readHeader(refs.appendingPathComponent("example_seg_dicom.nii.gz"))
        XCTAssertEqual(image.volume.shape, reference.spatialShape)
        for (a, b) in zip(image.volume.affine.m, reference.affine.m) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        // CT numbers in Hounsfield units: air near -1000, and soft tissue present.
        let voxels = image.volume.voxels
        XCTAssertLessThan(voxels.min()!, -900)
        XCTAssertGreaterThan(voxels.filter { $0 > 0 && $0 < 100 }.count, voxels.count / 20)
    }
}
