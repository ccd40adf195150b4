import Foundation
import XCTest
@testable import Datasets
import Volumes

/// `concord convert mscmrseg` on a tiny folder laid out as the MS-CMRSeg 2019 distribution.
final class MSCMRSegConverterTests: XCTestCase {
    typealias F = ConverterFixtures

    struct Source {
        var root: URL
        /// "patient1_C0" -> image; "patient1_C0_manual" -> mask (source values).
        var volumes: [String: Volume]
    }

    /// c0t2lge/: patients 1 and 2 with C0, LGE, T2; patient 3 with C0 and LGE only. Manual masks:
    /// c0gt/patient1_C0_manual, lgegt/patient1_LGE_manual, t2gt/patient2_T2_manual. The three
    /// sequences of a patient have different shapes and affines (not co-registered). Plus a
    /// macOS resource fork and an unrelated file.
    func makeSource(_ dir: URL) throws -> Source {
        let root = dir.appendingPathComponent("MS-CMRSeg2019")
        var volumes: [String: Volume] = [:]
        let shapes = ["C0": [8, 7, 3], "LGE": [9, 8, 4], "T2": [7, 7, 2]]
        for patient in 1...3 {
            for (s, seq) in ["C0", "LGE", "T2"].enumerated() {
                if patient == 3 && seq == "T2" { continue }
                let shape = shapes[seq]!
                let affine = F.affine(deg: Double(20 * s + patient), tilt: Double(5 * s), zooms: [1.25, 1.25, seq == "T2" ? 12 : 8 + Double(s)],
                                      offset: [-40 + Double(s), 30 - Double(patient), 10])
                let image = F.volume(shape, affine: affine) { i, j, k in Float(100 * s + 7 * i + 3 * j + k + patient) }
                try F.write(image, root.appendingPathComponent("c0t2lge/patient\(patient)_\(seq).nii.gz"), datatype: .int16)
                volumes["patient\(patient)_\(seq)"] = image
            }
        }
        for (patient, seq, folder) in [(1, "C0", "c0gt"), (1, "LGE", "lgegt"), (2, "T2", "t2gt")] {
            let image = try XCTUnwrap(volumes["patient\(patient)_\(seq)"])
            let mask = F.labels(image.shape, affine: image.affine, values: [0, 200, 500, 600, 0])
            try F.write(mask, root.appendingPathComponent("\(folder)/patient\(patient)_\(seq)_manual.nii.gz"), datatype: .int16)
            volumes["patient\(patient)_\(seq)_manual"] = mask
        }
        try F.writeResourceFork(root.appendingPathComponent("c0t2lge/._patient1_C0.nii.gz"))
        try Data("readme".utf8).write(to: root.appendingPathComponent("README.txt"))
        return Source(root: root, volumes: volumes)
    }

    func remapped(_ v: Volume) -> [Float] {
        v.voxels.map { [0: 0, 200: 1, 500: 2, 600: 3][Int($0)].map(Float.init) ?? -1 }
    }

    func testReferenceC0IsChannelZeroAndItsMaskTheLabel() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let out = dir.url.appendingPathComponent("out")
        let summary = try DatasetConverter.convert(.mscmrseg, source: src.root, output: out)
        XCTAssertEqual(summary.labeled, ["patient1"])
        XCTAssertEqual(summary.unlabeled, ["patient2", "patient3"])
        XCTAssertTrue(summary.notes.contains { $0.contains("1 macOS resource-fork file") }, "\(summary.notes)")

        let json = try F.json(out.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "bSSFP", "1": "LGE", "2": "T2"])
        XCTAssertEqual(json["labels"] as? [String: Int], ["background": 0, "myocardium": 1, "LV": 2, "RV": 3])
        XCTAssertEqual(json["pairing"] as? String, "paired")
        XCTAssertEqual(json["numTraining"] as? Int, 1)
        XCTAssertEqual(json["numUnlabeled"] as? Int, 2)
        XCTAssertEqual(json["channels_present"] as? [String: [Int]], ["patient3": [0, 1]])
        XCTAssertTrue((json["description"] as? String)?.contains("200 LV myocardium -> 1 myocardium") == true)

        XCTAssertEqual(F.files(out.appendingPathComponent("imagesTr")),
                       ["patient1_0000.nii.gz", "patient1_0001.nii.gz", "patient1_0002.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("labelsTr")), ["patient1.nii.gz"])
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesUnlabeled")),
                       ["patient2_0000.nii.gz", "patient2_0001.nii.gz", "patient2_0002.nii.gz", "patient3_0000.nii.gz", "patient3_0001.nii.gz"])

        // Every channel keeps its own grid (not resampled) and values.
        for (file, key) in [("imagesTr/patient1_0000", "patient1_C0"), ("imagesTr/patient1_0001", "patient1_LGE"),
                            ("imagesTr/patient1_0002", "patient1_T2"), ("imagesUnlabeled/patient3_0001", "patient3_LGE")] {
            let written = try NIfTI.read(out.appendingPathComponent("\(file).nii.gz"))
            let source = try XCTUnwrap(src.volumes[key])
            XCTAssertEqual(written.volume.shape, source.shape, file)
            XCTAssertEqual(written.volume.voxels, source.voxels, file)
            assertAffinesEqual(written.volume.affine, source.affine, file)
        }
        // The label is the C0 mask, remapped voxel by voxel, on C0's grid.
        let label = try NIfTI.read(out.appendingPathComponent("labelsTr/patient1.nii.gz"))
        let mask = try XCTUnwrap(src.volumes["patient1_C0_manual"])
        XCTAssertEqual(label.volume.voxels, remapped(mask))
        XCTAssertEqual(Set(label.volume.voxels), [0, 1, 2, 3])
        XCTAssertEqual(label.header.datatype, .uint8)
        assertAffinesEqual(label.volume.affine, try XCTUnwrap(src.volumes["patient1_C0"]).affine)
        XCTAssertEqual(validationErrors(out), [])

        let record = try JSONDecoder().decode(ConversionRecord.self, from: Data(contentsOf: out.appendingPathComponent("conversion.json")))
        XCTAssertEqual(record.format, "mscmrseg")
        XCTAssertEqual(record.cases.first { $0.name == "patient1" }?.sources["label"], "c0gt/patient1_C0_manual.nii.gz")
    }

    func testOtherReferencesReorderTheChannels() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        var options = ConversionOptions()
        options.reference = "LGE"
        let lge = dir.url.appendingPathComponent("lge")
        let summary = try DatasetConverter.convert(.mscmrseg, source: src.root, output: lge, options: options)
        XCTAssertEqual(summary.labeled, ["patient1"])
        XCTAssertEqual(try F.json(lge.appendingPathComponent("dataset.json"))["channel_names"] as? [String: String],
                       ["0": "LGE", "1": "bSSFP", "2": "T2"])
        let written = try NIfTI.read(lge.appendingPathComponent("imagesTr/patient1_0000.nii.gz")).volume
        XCTAssertEqual(written.voxels, src.volumes["patient1_LGE"]!.voxels)
        let label = try NIfTI.read(lge.appendingPathComponent("labelsTr/patient1.nii.gz")).volume
        XCTAssertEqual(label.voxels, remapped(src.volumes["patient1_LGE_manual"]!))
        assertAffinesEqual(label.affine, written.affine)
        XCTAssertEqual(validationErrors(lge), [])

        options.reference = "t2"
        options.modalities = ["T2", "C0"]
        let t2 = dir.url.appendingPathComponent("t2")
        let s2 = try DatasetConverter.convert(.mscmrseg, source: src.root, output: t2, options: options)
        XCTAssertEqual(s2.labeled, ["patient2"])
        XCTAssertEqual(s2.unlabeled, ["patient1", "patient3"])
        let json = try F.json(t2.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "T2", "1": "bSSFP"])
        XCTAssertEqual(json["channels_present"] as? [String: [Int]], ["patient3": [1]])
        XCTAssertEqual(F.files(t2.appendingPathComponent("imagesUnlabeled")),
                       ["patient1_0000.nii.gz", "patient1_0001.nii.gz", "patient3_0001.nii.gz"])
        XCTAssertEqual(validationErrors(t2), [])

        options.modalities = ["LGE"]
        assertConversionFails(["leaves out the reference", "T2"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("x"), options: options)
        }
        options.modalities = nil
        options.reference = "FLAIR"
        assertConversionFails(["FLAIR"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("x"), options: options)
        }
    }

    func testUnknownLabelValueAndShapeMismatchAreErrors() throws {
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let c0 = src.volumes["patient1_C0"]!
        try F.write(F.labels(c0.shape, affine: c0.affine, values: [0, 200, 421]), src.root.appendingPathComponent("c0gt/patient1_C0_manual.nii.gz"), datatype: .int16)
        assertConversionFails(["c0gt/patient1_C0_manual.nii.gz", "421", "200 (myocardium)"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("a"))
        }
        // The LGE mask on the C0 grid's neighbour: wrong shape for LGE.
        var options = ConversionOptions()
        options.reference = "LGE"
        try F.write(F.labels(c0.shape, affine: c0.affine, values: [0, 500]), src.root.appendingPathComponent("lgegt/patient1_LGE_manual.nii.gz"), datatype: .int16)
        assertConversionFails(["lgegt/patient1_LGE_manual.nii.gz", "shape [8, 7, 3]", "[9, 8, 4]"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("b"), options: options)
        }
        // Same shape, shifted grid.
        let lge = src.volumes["patient1_LGE"]!
        var shifted = lge.affine
        shifted[0, 3] += 5
        try F.write(F.labels(lge.shape, affine: shifted, values: [0, 500]), src.root.appendingPathComponent("lgegt/patient1_LGE_manual.nii.gz"), datatype: .int16)
        assertConversionFails(["lgegt/patient1_LGE_manual.nii.gz", "affine differs"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("c"), options: options)
        }
        // A mask found twice.
        try F.write(src.volumes["patient1_C0_manual"]!, src.root.appendingPathComponent("extra/patient1_C0_manual.nii.gz"), datatype: .int16)
        assertConversionFails(["appears twice", "c0gt/patient1_C0_manual.nii.gz"]) {
            try DatasetConverter.convert(.mscmrseg, source: src.root, output: dir.url.appendingPathComponent("d"))
        }
    }

    func testFileNameParsing() {
        XCTAssertEqual(MSCMRSegConverter.parse("patient12_C0.nii.gz").map { "\($0.patient) \($0.sequence.rawValue) \($0.manual)" }, "12 C0 false")
        XCTAssertEqual(MSCMRSegConverter.parse("patient3_LGE_manual.nii.gz").map { "\($0.patient) \($0.sequence.rawValue) \($0.manual)" }, "3 LGE true")
        XCTAssertEqual(MSCMRSegConverter.parse("Patient5_t2.nii").map { "\($0.patient) \($0.sequence.rawValue) \($0.manual)" }, "5 T2 false")
        XCTAssertNil(MSCMRSegConverter.parse("patient1_C0_gd.nii.gz"))
        XCTAssertNil(MSCMRSegConverter.parse("patient_C0.nii.gz"))
        XCTAssertNil(MSCMRSegConverter.parse("patient1_FLAIR.nii.gz"))
        XCTAssertNil(MSCMRSegConverter.parse("patient1_C0.txt"))
    }
}
