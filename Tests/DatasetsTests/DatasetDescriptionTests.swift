import Foundation
import XCTest
@testable import Datasets

final class DatasetDescriptionTests: XCTestCase {
    /// nnU-Net v2's own dataset.json for Dataset004_Hippocampus (extra keys included).
    let hippocampus = #"""
    {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
        "numTraining": 260,
        "file_ending": ".nii.gz",
        "name": "Hippocampus",
        "description": "Left and right hippocampus segmentation",
        "reference": "Vanderbilt University Medical Center",
        "licence": "CC-BY-SA 4.0",
        "release": "1.0 04/05/2018",
        "overwrite_image_reader_writer": "SimpleITKIO"
    }
    """#

    func testDecodesNnUNetKeys() throws {
        let d = try JSONDecoder().decode(DatasetDescription.self, from: Data(hippocampus.utf8))
        XCTAssertEqual(d.channelNames, ["0": "MRI"])
        XCTAssertEqual(try d.labelValues(), ["background": 0, "Anterior": 1, "Posterior": 2])
        XCTAssertEqual(try d.orderedLabelNames(), ["background", "Anterior", "Posterior"])
        XCTAssertEqual(d.numTraining, 260)
        XCTAssertEqual(d.fileEnding, ".nii.gz")
        XCTAssertEqual(d.pairing, .paired)             // default when absent
        XCTAssertNil(d.numUnlabeled)
        XCTAssertNil(d.channelsPresent)
        XCTAssertEqual(d.name, "Hippocampus")
        XCTAssertEqual(d.problems(), [])
    }

    func testRoundTripKeepsNnUNetKeyNamesAndConcordExtensions() throws {
        var d = DatasetDescription(channelNames: ["CT", "MR"], labels: [("background", 0), ("liver", 1), ("spleen", 2)],
                                   numTraining: 12, numUnlabeled: 30, pairing: .unpaired,
                                   channelsPresent: ["amos_0001": [0], "amos_0500": [1]], name: "AMOS-CT-MR", description: "test")
        d.regionsClassOrder = nil
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = try enc.encode(d)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["channel_names", "labels", "numTraining", "file_ending", "numUnlabeled", "pairing",
                                        "channels_present", "name", "description"])
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "CT", "1": "MR"])
        XCTAssertEqual(json["labels"] as? [String: Int], ["background": 0, "liver": 1, "spleen": 2])
        XCTAssertEqual(json["file_ending"] as? String, ".nii.gz")
        XCTAssertEqual(json["pairing"] as? String, "unpaired")
        XCTAssertEqual(json["channels_present"] as? [String: [Int]], ["amos_0001": [0], "amos_0500": [1]])
        let back = try JSONDecoder().decode(DatasetDescription.self, from: data)
        XCTAssertEqual(back, d)
        XCTAssertEqual(try back.orderedChannelNames(), ["CT", "MR"])
    }

    func testRegionLabelsDecodeButAreRefusedWithAClearError() throws {
        let brats = #"""
        {"channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"},
         "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
         "regions_class_order": [1, 2, 3], "numTraining": 1251, "file_ending": ".nii.gz"}
        """#
        let d = try JSONDecoder().decode(DatasetDescription.self, from: Data(brats.utf8))
        XCTAssertEqual(d.labels["whole tumor"], .region([1, 2, 3]))
        XCTAssertEqual(d.regionsClassOrder, [1, 2, 3])
        XCTAssertThrowsError(try d.labelValues()) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("region"), text)
            XCTAssertTrue(text.contains("only plain integer labels"), text)
        }
        XCTAssertFalse(d.problems().isEmpty)
        // Round trip keeps the regions.
        let back = try JSONDecoder().decode(DatasetDescription.self, from: JSONEncoder().encode(d))
        XCTAssertEqual(back, d)
    }

    func testV1ModalityKeyIsAccepted() throws {
        let v1 = #"{"modality": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "PZ": 1, "TZ": 2}, "numTraining": 32}"#
        let d = try JSONDecoder().decode(DatasetDescription.self, from: Data(v1.utf8))
        XCTAssertEqual(try d.orderedChannelNames(), ["T2", "ADC"])
        XCTAssertEqual(d.fileEnding, ".nii.gz")
    }

    func testProblemsAreReported() throws {
        let bad = #"""
        {"channel_names": {"0": "CT", "2": "MR"}, "labels": {"background": 0, "a": 1, "b": 1, "c": 5},
         "numTraining": 3, "file_ending": "nii.gz", "channels_present": {"x": [0, 4]}}
        """#
        let d = try JSONDecoder().decode(DatasetDescription.self, from: Data(bad.utf8))
        let problems = d.problems().joined(separator: "\n")
        XCTAssertTrue(problems.contains("channel_names must have the keys"), problems)
        XCTAssertTrue(problems.contains("consecutive") || problems.contains("share the value"), problems)
        XCTAssertTrue(problems.contains("file_ending"), problems)
        XCTAssertTrue(problems.contains("channels_present[\"x\"] lists channel 4"), problems)
    }

    func testLoadNamesTheFileOnBadJSON() throws {
        let dir = try TempDir()
        let url = dir.url.appendingPathComponent("dataset.json")
        try Data(#"{"channel_names": {"0": "CT"}, "numTraining": 1}"#.utf8).write(to: url)
        XCTAssertThrowsError(try DatasetDescription.load(from: dir.url)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("dataset.json"), text)
            XCTAssertTrue(text.contains("labels"), text)
        }
        let good = DatasetDescription(channelNames: ["bSSFP", "LGE"], labels: [("background", 0), ("LV", 1)], numTraining: 1)
        try good.save(to: dir.url)
        XCTAssertEqual(try DatasetDescription.load(from: dir.url), good)
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.url.path), ["dataset.json"])
    }
}

/// A temporary directory removed when the object goes away.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-datasets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}
