import Foundation
import XCTest
@testable import Datasets
import Volumes

/// `concord convert amos` on a tiny folder laid out as AMOS22.
final class AMOSConverterTests: XCTestCase {
    typealias F = ConverterFixtures

    struct Source {
        var root: URL
        /// case -> (image, label or nil)
        var cases: [String: (image: Volume, label: Volume?)]
    }

    /// imagesTr: CT amos_0001, MR amos_0507; imagesVa: CT amos_0008, MR amos_0540; imagesTs: CT
    /// amos_0400, MR amos_0600. CT labels use 0 ... 15, MR labels 0 ... 13.
    func makeSource(_ dir: URL) throws -> Source {
        let root = dir.appendingPathComponent("amos22")
        var cases: [String: (image: Volume, label: Volume?)] = [:]
        let specs: [(String, String, String?, Bool)] = [
            ("amos_0001", "imagesTr", "labelsTr", true), ("amos_0507", "imagesTr", "labelsTr", false),
            ("amos_0008", "imagesVa", "labelsVa", true), ("amos_0540", "imagesVa", "labelsVa", false),
            ("amos_0400", "imagesTs", nil, true), ("amos_0600", "imagesTs", nil, false),
        ]
        for (n, (name, imageFolder, labelFolder, ct)) in specs.enumerated() {
            let shape = ct ? [6, 5, 4] : [5, 6, 3]
            let affine = F.affine(deg: Double(10 * n), tilt: ct ? 0 : 15, zooms: ct ? [0.8, 0.8, 2.5] : [1.2, 1.2, 3], offset: [-50 + Double(n), 20, 7.5])
            let image = F.volume(shape, affine: affine) { i, j, k in ct ? Float(-1000 + 37 * i + 11 * j - 5 * k + n) : Float(i * j + k * 3 + n) * 0.5 }
            try F.write(image, root.appendingPathComponent("\(imageFolder)/\(name).nii.gz"), datatype: ct ? .int16 : .float32)
            var label: Volume? = nil
            if let lf = labelFolder {
                let values: [Float] = ct ? (0...15).map(Float.init) : (0...13).map(Float.init)
                let l = F.labels(shape, affine: affine, values: values)
                try F.write(l, root.appendingPathComponent("\(lf)/\(name).nii.gz"), datatype: .uint8)
                label = l
            }
            cases[name] = (image, label)
        }
        let amosJSON = """
        {"name": "AMOS", "labels": {"0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder",
         "5": "esophagus", "6": "liver", "7": "stomach", "8": "arota", "9": "postcava", "10": "pancreas",
         "11": "right adrenal gland", "12": "left adrenal gland", "13": "duodenum", "14": "bladder", "15": "prostate/uterus"},
         "numTraining": 2, "numValidation": 2, "numTest": 2}
        """
        try Data(amosJSON.utf8).write(to: root.appendingPathComponent("dataset.json"))
        return Source(root: root, cases: cases)
    }

    func testConvertsToAnUnpairedCTMRDataset() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let out = dir.url.appendingPathComponent("out")
        var reported: [Int] = []
        let summary = try DatasetConverter.convert(.amos, source: src.root, output: out) { reported.append($0.done) }
        XCTAssertEqual(reported, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(summary.labeled, ["amos_0001", "amos_0008", "amos_0507", "amos_0540"])
        XCTAssertEqual(summary.unlabeled, ["amos_0400", "amos_0600"])
        XCTAssertTrue(summary.notes.contains { $0.contains("13 organs") }, "\(summary.notes)")

        // dataset.json
        let json = try F.json(out.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "CT", "1": "MR"])
        XCTAssertEqual(json["pairing"] as? String, "unpaired")
        XCTAssertEqual(json["numTraining"] as? Int, 4)
        XCTAssertEqual(json["numUnlabeled"] as? Int, 2)
        XCTAssertEqual(json["file_ending"] as? String, ".nii.gz")
        XCTAssertEqual(json["channels_present"] as? [String: [Int]], [
            "amos_0001": [0], "amos_0008": [0], "amos_0400": [0], "amos_0507": [1], "amos_0540": [1], "amos_0600": [1],
        ])
        let labels = try XCTUnwrap(json["labels"] as? [String: Int])
        XCTAssertEqual(labels.count, 16)
        XCTAssertEqual(labels["background"], 0)
        XCTAssertEqual(labels["spleen"], 1)
        XCTAssertEqual(labels["postcava"], 9)
        XCTAssertEqual(labels["prostate/uterus"], 15)

        // Files: a CT case has only _0000, an MR case only _0001.
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesTr")),
                       ["amos_0001_0000.nii.gz", "amos_0008_0000.nii.gz", "amos_0507_0001.nii.gz", "amos_0540_0001.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("labelsTr")),
                       ["amos_0001.nii.gz", "amos_0008.nii.gz", "amos_0507.nii.gz", "amos_0540.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesUnlabeled")), ["amos_0400_0000.nii.gz", "amos_0600_0001.nii.gz"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("conversion.json").path))

        // Voxels, labels and geometry are the source's.
        for (name, c) in src.cases {
            let ct = (AMOSConverter.caseID(name) ?? 0) < 500
            let folder = c.label == nil ? "imagesUnlabeled" : "imagesTr"
            let image = try NIfTI.read(out.appendingPathComponent("\(folder)/\(name)_000\(ct ? 0 : 1).nii.gz"))
            XCTAssertEqual(image.volume.voxels, c.image.voxels, name)
            XCTAssertEqual(image.header.datatype, ct ? .int16 : .float32, name)
            assertAffinesEqual(image.volume.affine, c.image.affine, name)
            if let l = c.label {
                let label = try NIfTI.read(out.appendingPathComponent("labelsTr/\(name).nii.gz"))
                XCTAssertEqual(label.volume.voxels, l.voxels, name)
                XCTAssertEqual(label.header.datatype, .uint8)
                XCTAssertEqual(label.volume.affine, image.volume.affine, name)
            }
        }
        XCTAssertEqual(summary.problems.filter { $0.severity == .error }, [])
        XCTAssertEqual(validationErrors(out), [])
        let layout = try DatasetLayout.load(root: out)
        XCTAssertEqual(layout.labeled.first { $0.name == "amos_0507" }?.presentChannels, [1])
    }

    func testModalitySubsetAndValidationSwitch() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let out = dir.url.appendingPathComponent("mr")
        var options = ConversionOptions()
        options.modalities = ["mr"]
        options.includeValidation = false
        _ = try DatasetConverter.convert(.amos, source: src.root, output: out, options: options)
        let json = try F.json(out.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "MR"])
        XCTAssertEqual(json["pairing"] as? String, "paired")
        XCTAssertNil(json["channels_present"])
        XCTAssertEqual((json["labels"] as? [String: Int])?.count, 14, "MR-only datasets declare the 13 MR organs")
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesTr")), ["amos_0507_0000.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesUnlabeled")), ["amos_0600_0000.nii.gz"])
        XCTAssertEqual(validationErrors(out), [])

        // An MR label with a CT-only organ is refused when the dataset is MR-only.
        let bad = F.labels([5, 6, 3], affine: src.cases["amos_0507"]!.image.affine, values: [0, 14])
        try F.write(bad, src.root.appendingPathComponent("labelsTr/amos_0507.nii.gz"), datatype: .uint8)
        options.overwrite = true
        assertConversionFails(["labelsTr/amos_0507.nii.gz", "14", "13 organs"]) {
            try DatasetConverter.convert(.amos, source: src.root, output: out, options: options)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("dataset.json").path))
    }

    func testBadLabelValueAndShapeAreErrorsNamingTheFile() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let affine = src.cases["amos_0001"]!.image.affine
        try F.write(F.labels([6, 5, 4], affine: affine, values: [0, 3, 16]), src.root.appendingPathComponent("labelsTr/amos_0001.nii.gz"), datatype: .uint8)
        try F.write(F.labels([6, 5, 3], affine: affine, values: [0, 1]), src.root.appendingPathComponent("labelsVa/amos_0008.nii.gz"), datatype: .uint8)
        let out = dir.url.appendingPathComponent("out")
        do {
            _ = try DatasetConverter.convert(.amos, source: src.root, output: out)
            XCTFail("expected a failure")
        } catch let e as ConversionFailure {
            XCTAssertEqual(e.errors.count, 2, e.description)
            XCTAssertTrue(e.errors.contains { $0.file.hasSuffix("/amos22/labelsTr/amos_0001.nii.gz") && $0.problem.contains("16") }, e.description)
            XCTAssertTrue(e.errors.contains { $0.file.hasSuffix("/amos22/labelsVa/amos_0008.nii.gz") && $0.problem.contains("shape [6, 5, 3]") }, e.description)
        }
        // A case whose label is bad writes nothing (its image neither); good cases are written.
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("imagesTr/amos_0001_0000.nii.gz").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("imagesTr/amos_0008_0000.nii.gz").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("imagesTr/amos_0507_0001.nii.gz").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("dataset.json").path))
    }

    func testDestinationRulesAndSourceErrors() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let out = dir.url.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: out.appendingPathComponent("notes.txt"))
        assertConversionFails(["not empty", "--overwrite"]) { try DatasetConverter.convert(.amos, source: src.root, output: out) }
        var options = ConversionOptions()
        options.overwrite = true
        options.validate = false
        _ = try DatasetConverter.convert(.amos, source: src.root, output: out, options: options)
        _ = try DatasetConverter.convert(.amos, source: src.root, output: out, options: options)   // again, over itself
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("notes.txt").path), "other files are kept")
        XCTAssertEqual(validationErrors(out), [])

        assertConversionFails(["outside the source folder"]) {
            try DatasetConverter.convert(.amos, source: src.root, output: src.root.appendingPathComponent("converted"))
        }
        options.reference = "C0"
        assertConversionFails(["--reference"]) { try DatasetConverter.convert(.amos, source: src.root, output: dir.url.appendingPathComponent("x"), options: options) }
        options.reference = nil
        options.modalities = ["pet"]
        assertConversionFails(["pet"]) { try DatasetConverter.convert(.amos, source: src.root, output: dir.url.appendingPathComponent("x"), options: options) }

        // A label without its image, and a file name that is not AMOS's.
        try F.write(src.cases["amos_0001"]!.label!, src.root.appendingPathComponent("labelsTr/amos_0002.nii.gz"), datatype: .uint8)
        assertConversionFails(["labelsTr/amos_0002.nii.gz", "without an image"]) {
            try DatasetConverter.convert(.amos, source: src.root, output: dir.url.appendingPathComponent("y"))
        }
        try FileManager.default.removeItem(at: src.root.appendingPathComponent("labelsTr/amos_0002.nii.gz"))
        try F.write(src.cases["amos_0001"]!.image, src.root.appendingPathComponent("imagesTs/scan_7.nii.gz"))
        assertConversionFails(["imagesTs/scan_7.nii.gz", "amos_NNNN"]) {
            try DatasetConverter.convert(.amos, source: src.root, output: dir.url.appendingPathComponent("z"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("z").path), "nothing is created for a bad source")
    }
}
