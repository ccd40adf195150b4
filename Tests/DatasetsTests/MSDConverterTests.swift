import Foundation
import XCTest
@testable import Datasets
import Volumes

/// `concord convert msd-brain` on a tiny folder laid out as Task01_BrainTumour.
final class MSDConverterTests: XCTestCase {
    typealias F = ConverterFixtures

    static let datasetJSON = """
    {"name": "BRATS", "description": "Gliomas segmentation tumour and oedema in on brain images",
     "tensorImageSize": "4D",
     "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
     "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
     "numTraining": 2, "numTest": 1,
     "training": [{"image": "./imagesTr/BRATS_001.nii.gz", "label": "./labelsTr/BRATS_001.nii.gz"},
                  {"image": "./imagesTr/BRATS_002.nii.gz", "label": "./labelsTr/BRATS_002.nii.gz"}],
     "test": ["./imagesTs/BRATS_485.nii.gz"]}
    """

    struct Source {
        var root: URL
        var frames: [String: [Volume]]
        var labels: [String: Volume]
        var affine: Affine
    }

    /// imagesTr/BRATS_001, BRATS_002 (4D float32, 4 frames) + labelsTr (uint8 3D), imagesTs/BRATS_485,
    /// and the macOS resource forks the MSD tarballs carry (._BRATS_001.nii.gz ...).
    static func makeSource(_ dir: URL) throws -> Source {
        let root = dir.appendingPathComponent("Task01_BrainTumour")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data(Self.datasetJSON.utf8).write(to: root.appendingPathComponent("dataset.json"))
        // MSD's BraTS images are LPS-flipped: x and y axes negative.
        let affine = Affine(rowMajor: [-1, 0, 0, 0, 0, -1, 0, 239, 0, 0, 1, 0, 0, 0, 0, 1])
        var frames: [String: [Volume]] = [:], labels: [String: Volume] = [:]
        for (n, (name, folder)) in [("BRATS_001", "imagesTr"), ("BRATS_002", "imagesTr"), ("BRATS_485", "imagesTs")].enumerated() {
            let f = (0..<4).map { t in
                F.volume([6, 5, 4], affine: affine) { i, j, k in Float(t * 100 + i * 10 + j + n) + Float(k) * 0.25 }
            }
            let url = root.appendingPathComponent("\(folder)/\(name).nii.gz")
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try NIfTI.write(frames: f, to: url, datatype: .float32)
            frames[name] = f
            try F.writeResourceFork(root.appendingPathComponent("\(folder)/._\(name).nii.gz"))
            if folder == "imagesTr" {
                let l = F.labels([6, 5, 4], affine: affine, values: [0, 1, 2, 3, 0, 0])
                try F.write(l, root.appendingPathComponent("labelsTr/\(name).nii.gz"), datatype: .uint8)
                try F.writeResourceFork(root.appendingPathComponent("labelsTr/._\(name).nii.gz"))
                labels[name] = l
            }
        }
        return Source(root: root, frames: frames, labels: labels, affine: affine)
    }

    func testSplitsFourDImagesIntoChannelFiles() throws {
        let dir = try TempDir()
        let src = try Self.makeSource(dir.url)
        XCTAssertEqual(try NIfTI.read(src.root.appendingPathComponent("imagesTr/BRATS_001.nii.gz")).frameCount, 4)
        let out = dir.url.appendingPathComponent("out")
        let summary = try DatasetConverter.convert(.msdBrain, source: src.root, output: out)
        XCTAssertEqual(summary.labeled, ["BRATS_001", "BRATS_002"])
        XCTAssertEqual(summary.unlabeled, ["BRATS_485"])
        XCTAssertTrue(summary.notes.contains("skipped 5 macOS resource-fork files (._*)"), "\(summary.notes)")

        let json = try F.json(out.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"])
        XCTAssertEqual(json["labels"] as? [String: Int], ["background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3])
        XCTAssertEqual(json["pairing"] as? String, "paired")
        XCTAssertEqual(json["numTraining"] as? Int, 2)
        XCTAssertEqual(json["numUnlabeled"] as? Int, 1)
        XCTAssertNil(json["channels_present"])
        XCTAssertEqual(json["name"] as? String, "BRATS")

        XCTAssertEqual(F.files(out.appendingPathComponent("imagesTr")),
                       (1...2).flatMap { c in (0..<4).map { "BRATS_00\(c)_000\($0).nii.gz" } })
        XCTAssertEqual(F.files(out.appendingPathComponent("labelsTr")), ["BRATS_001.nii.gz", "BRATS_002.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesUnlabeled")), (0..<4).map { "BRATS_485_000\($0).nii.gz" })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("imagesTr").path).filter { $0.hasPrefix("._") }, [])

        for (name, frames) in src.frames {
            let folder = src.labels[name] == nil ? "imagesUnlabeled" : "imagesTr"
            for t in 0..<4 {
                let image = try NIfTI.read(out.appendingPathComponent("\(folder)/\(name)_000\(t).nii.gz"))
                XCTAssertEqual(image.header.dim[0], 3, "\(name) \(t)")
                XCTAssertEqual(image.frameCount, 1)
                XCTAssertEqual(image.header.datatype, .float32)
                XCTAssertEqual(image.header.sformCode, 1)
                XCTAssertEqual(image.volume.voxels, frames[t].voxels, "\(name) channel \(t)")
                assertAffinesEqual(image.volume.affine, src.affine, "\(name) channel \(t)")
            }
            if let l = src.labels[name] {
                let label = try NIfTI.read(out.appendingPathComponent("labelsTr/\(name).nii.gz"))
                XCTAssertEqual(label.volume.voxels, l.voxels, name)
                XCTAssertEqual(label.header.datatype, .uint8)
                assertAffinesEqual(label.volume.affine, src.affine)
            }
        }
        XCTAssertEqual(summary.problems, [])
        XCTAssertEqual(validationErrors(out), [])
    }

    func testWrongFrameCountAndUndeclaredLabelAreErrors() throws {
        let dir = try TempDir()
        let src = try Self.makeSource(dir.url)
        let three = Array(src.frames["BRATS_002"]!.prefix(3))
        try NIfTI.write(frames: three, to: src.root.appendingPathComponent("imagesTr/BRATS_002.nii.gz"))
        try F.write(F.labels([6, 5, 4], affine: src.affine, values: [0, 4]), src.root.appendingPathComponent("labelsTr/BRATS_001.nii.gz"), datatype: .uint8)
        do {
            _ = try DatasetConverter.convert(.msdBrain, source: src.root, output: dir.url.appendingPathComponent("out"))
            XCTFail("expected a failure")
        } catch let e as ConversionFailure {
            XCTAssertEqual(e.errors.count, 2, e.description)
            XCTAssertTrue(e.errors.contains { $0.file.hasSuffix("/Task01_BrainTumour/imagesTr/BRATS_002.nii.gz") && $0.problem.contains("3 frame(s)") && $0.problem.contains("4 channel(s)") }, e.description)
            XCTAssertTrue(e.errors.contains { $0.file.hasSuffix("/Task01_BrainTumour/labelsTr/BRATS_001.nii.gz") && $0.problem.contains("label value 4.0") && $0.problem.contains("enhancing tumour") }, e.description)
        }
    }

    func testMissingOrBadDescriptionAndTestSwitch() throws {
        let dir = try TempDir()
        let src = try Self.makeSource(dir.url)
        var options = ConversionOptions()
        options.includeTest = false
        let out = dir.url.appendingPathComponent("noTs")
        let summary = try DatasetConverter.convert(.msdBrain, source: src.root, output: out, options: options)
        XCTAssertEqual(summary.unlabeled, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("imagesUnlabeled").path))
        XCTAssertEqual(validationErrors(out), [])

        options.includeValidation = false
        assertConversionFails(["--no-include-validation"]) {
            try DatasetConverter.convert(.msdBrain, source: src.root, output: dir.url.appendingPathComponent("x"), options: options)
        }
        try Data(#"{"modality": {"0": "FLAIR", "2": "T2w"}, "labels": {"0": "background", "1": "edema"}}"#.utf8)
            .write(to: src.root.appendingPathComponent("dataset.json"))
        assertConversionFails(["dataset.json", "modality"]) {
            try DatasetConverter.convert(.msdBrain, source: src.root, output: dir.url.appendingPathComponent("y"))
        }
        try FileManager.default.removeItem(at: src.root.appendingPathComponent("dataset.json"))
        assertConversionFails(["dataset.json", "cannot read"]) {
            try DatasetConverter.convert(.msdBrain, source: src.root, output: dir.url.appendingPathComponent("z"))
        }
    }
}
