import Foundation
import XCTest
@testable import Datasets
import Volumes

final class PhantomDatasetTests: XCTestCase {
    func testWrittenPhantomDatasetIsValidAndMatchesTheGenerator() throws {
        let dir = try TempDir()
        let root = dir.url.appendingPathComponent("phantom")
        var config = TestConfigs.small(size: 16)
        config.misalignMM = 2
        var calls: [(Int, Int)] = []
        try Phantom.writeDataset(to: root, cases: 3, unlabeledCases: 2, seed: 5, config: config) { calls.append(($0, $1)) }
        XCTAssertEqual(calls.map(\.0), [1, 2, 3, 4, 5])
        XCTAssertTrue(calls.allSatisfy { $0.1 == 5 })

        let layout = try DatasetLayout.load(root: root)
        XCTAssertEqual(layout.labeled.map(\.name), ["phantom_000", "phantom_001", "phantom_002"])
        XCTAssertEqual(layout.unlabeled.map(\.name), ["phantom_003", "phantom_004"])
        XCTAssertEqual(layout.labeled[0].channels.map { $0?.lastPathComponent }, ["phantom_000_0000.nii.gz", "phantom_000_0001.nii.gz"])
        XCTAssertEqual(layout.labeled[0].label?.lastPathComponent, "phantom_000.nii.gz")
        XCTAssertNil(layout.unlabeled[0].label)
        XCTAssertEqual(try layout.description.orderedChannelNames(), ["bSSFP", "LGE"])
        XCTAssertEqual(try layout.description.orderedLabelNames(), ["background", "LV", "Myo", "RV"])
        XCTAssertEqual(layout.description.numUnlabeled, 2)
        XCTAssertEqual(DatasetValidator.validate(root: root), [])

        // Files hold exactly the generated case (float32 images, uint8 labels).
        let generated = Phantom.generateCase(index: 1, seed: 5, config: config)
        let label = try NIfTI.read(layout.labeled[1].label!)
        XCTAssertEqual(label.header.datatype, .uint8)
        XCTAssertEqual(label.volume.voxels, generated.label.voxels)
        XCTAssertEqual(try NIfTI.read(layout.labeled[1].channels[1]!).volume.voxels, generated.channels[1].voxels)
        let spacing = label.volume.spacing
        for a in 0..<3 { XCTAssertEqual(spacing[a], config.spacing[a], accuracy: 1e-5) }

        // phantom.json records the settings and the misalignment ground truth.
        let record = try JSONDecoder().decode(PhantomDatasetRecord.self, from: Data(contentsOf: root.appendingPathComponent("phantom.json")))
        XCTAssertEqual(record.seed, 5)
        XCTAssertEqual(record.config, config)
        XCTAssertEqual(record.cases.count, 5)
        XCTAssertEqual(record.cases[1].motions, generated.motions)
        XCTAssertNotNil(record.cases[1].motions[1])

        // An existing dataset is not overwritten silently.
        XCTAssertThrowsError(try Phantom.writeDataset(to: root, cases: 1, unlabeledCases: 0, seed: 5, config: config)) { e in
            XCTAssertTrue("\(e)".contains("overwrite"), "\(e)")
        }
        try Phantom.writeDataset(to: root, cases: 1, unlabeledCases: 0, seed: 5, config: config, overwrite: true)
        let again = try DatasetLayout.load(root: root)
        XCTAssertEqual(again.labeled.count, 1)
        XCTAssertEqual(again.unlabeled.count, 0)
        XCTAssertEqual(DatasetValidator.validate(root: root), [])

        // Splits from the layout.
        let splits = try Splits.make(layout: layout, seed: 1, labeledRatio: 0.5)
        XCTAssertEqual(splits.problems(layout: layout), [])
        XCTAssertTrue(Set(layout.unlabeled.map(\.name)).isSubset(of: splits.unlabeled))
    }
}

final class DatasetValidatorTests: XCTestCase {
    let shape = [8, 8, 4]
    let spacing = [1.0, 1.0, 2.0]

    func image(_ value: Float = 100, shape: [Int]? = nil, origin: [Double] = [0, 0, 0]) -> Volume {
        let s = shape ?? self.shape
        let n = s.reduce(1, *)
        return Volume(shape: s, voxels: (0..<n).map { value + Float($0 % 7) }, spacing: spacing, affine: .scaling(spacing, origin: origin))
    }

    func label(_ values: [Float: Int] = [1: 5, 2: 3], shape: [Int]? = nil) -> Volume {
        let s = shape ?? self.shape
        var v = [Float](repeating: 0, count: s.reduce(1, *))
        var i = 0
        for (value, count) in values.sorted(by: { $0.key < $1.key }) { for _ in 0..<count { v[i] = value; i += 1 } }
        return Volume(shape: s, voxels: v, spacing: spacing)
    }

    /// Writes a two-channel case.
    func writeCase(_ root: URL, _ name: String, channels: [Volume?], label: Volume?, folder: String = "imagesTr") throws {
        for f in [folder, "labelsTr"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(f), withIntermediateDirectories: true)
        }
        for (c, v) in channels.enumerated() {
            guard let v = v else { continue }
            try NIfTI.write(v, to: root.appendingPathComponent(DatasetLayout.channelPath(folder: folder, caseName: name, channel: c, fileEnding: ".nii.gz")))
        }
        if let l = label { try NIfTI.write(l, to: root.appendingPathComponent("labelsTr/\(name).nii.gz"), datatype: .float32) }
    }

    func testFindsEveryPlantedDefectNamingTheFile() throws {
        let dir = try TempDir()
        let root = dir.url
        try FileManager.default.createDirectory(at: root.appendingPathComponent("imagesTr"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("labelsTr"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("imagesUnlabeled"), withIntermediateDirectories: true)

        try writeCase(root, "good", channels: [image(), image(50)], label: label())
        try writeCase(root, "missing", channels: [image(), nil], label: label())
        try writeCase(root, "seven", channels: [image(), image()], label: label([1: 4, 7: 2]))
        var nan = image(); nan.voxels[5] = .nan
        try writeCase(root, "nan", channels: [nan, image()], label: label())
        try writeCase(root, "empty", channels: [image(), image()], label: label([:]))
        try writeCase(root, "labelshape", channels: [image(), image()], label: label(shape: [8, 8, 5]))
        try writeCase(root, "faraway", channels: [image(), image(shape: [6, 6, 4], origin: [500, 0, 0])], label: label())
        try writeCase(root, "resamplable", channels: [image(), image(shape: [6, 6, 3], origin: [1, 1, 0])], label: label())
        try writeCase(root, "garbage", channels: [image(), nil], label: label())
        try Data("this is not a NIfTI file at all, just some bytes ..........................".utf8)
            .write(to: root.appendingPathComponent("imagesTr/garbage_0001.nii.gz"))
        try writeCase(root, "fractional", channels: [image(), image()], label: label([1: 2, 1.5: 1]))
        // Files that break the layout.
        try NIfTI.write(label(), to: root.appendingPathComponent("labelsTr/orphan.nii.gz"))
        try NIfTI.write(image(), to: root.appendingPathComponent("imagesTr/wrongend_0000.nii"))
        try NIfTI.write(image(), to: root.appendingPathComponent("imagesTr/nochannel.nii.gz"))
        try writeCase(root, "nolabel", channels: [image(), image()], label: nil)
        try writeCase(root, "unl1", channels: [image(), nil], label: nil, folder: "imagesUnlabeled")

        let description = DatasetDescription(channelNames: ["bSSFP", "LGE"], labels: [("background", 0), ("LV", 1), ("Myo", 2)],
                                             numTraining: 10, numUnlabeled: 1)
        try description.save(to: root)

        let problems = DatasetValidator.validate(root: root, threads: 2)
        func has(_ kind: DatasetProblem.Kind, _ file: String, _ text: String? = nil, line: UInt = #line) {
            let hit = problems.contains { $0.kind == kind && $0.file == file && (text == nil || $0.message.contains(text!)) }
            XCTAssertTrue(hit, "expected \(kind) on \(file)\(text.map { " mentioning \"\($0)\"" } ?? ""); got:\n" + problems.map(\.description).joined(separator: "\n"), line: line)
        }
        has(.missingChannel, "imagesTr/missing_0001.nii.gz", "LGE")
        has(.missingChannel, "imagesUnlabeled/unl1_0001.nii.gz")
        has(.undeclaredLabel, "labelsTr/seven.nii.gz", "7 (2 voxels)")
        has(.undeclaredLabel, "labelsTr/fractional.nii.gz", "non-integer")
        has(.nonFinite, "imagesTr/nan_0000.nii.gz", "1 NaN")
        has(.emptyLabel, "labelsTr/empty.nii.gz")
        has(.labelShapeMismatch, "labelsTr/labelshape.nii.gz", "[8, 8, 5]")
        has(.geometryMismatch, "imagesTr/faraway_0001.nii.gz", "do not overlap")
        has(.unreadable, "imagesTr/garbage_0001.nii.gz", "cannot read")
        has(.labelWithoutImages, "labelsTr/orphan.nii.gz")
        has(.wrongEnding, "imagesTr/wrongend_0000.nii", ".nii.gz")
        has(.badFileName, "imagesTr/nochannel.nii.gz", "4-digit")
        has(.imagesWithoutLabel, "imagesTr/nolabel_0000.nii.gz", "imagesUnlabeled")
        // The good and the resamplable cases are clean.
        XCTAssertFalse(problems.contains { $0.file.contains("good") || $0.file.contains("resamplable") }, problems.map(\.description).joined(separator: "\n"))
        // Empty labels are a warning, the rest are errors.
        XCTAssertEqual(problems.first { $0.kind == .emptyLabel }?.severity, .warning)
        XCTAssertEqual(problems.first { $0.kind == .undeclaredLabel }?.severity, .error)
        // Loading the layout fails, listing the layout problems.
        XCTAssertThrowsError(try DatasetLayout.load(root: root)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("labelsTr/orphan.nii.gz"), text)
            XCTAssertTrue(text.contains("imagesTr/missing_0001.nii.gz"), text)
        }
    }

    func testChannelsPresentAndUnpairedDatasets() throws {
        let dir = try TempDir()
        let root = dir.url
        // Unpaired: a CT cohort and an MR cohort, each case with one channel.
        try writeCase(root, "ct_001", channels: [image(), nil], label: label())
        try writeCase(root, "mr_001", channels: [nil, image()], label: label())
        var d = DatasetDescription(channelNames: ["CT", "MR"], labels: [("background", 0), ("liver", 1), ("spleen", 2)], numTraining: 2, pairing: .unpaired)
        try d.save(to: root)
        XCTAssertEqual(DatasetValidator.validate(root: root), [])
        let layout = try DatasetLayout.load(root: root)
        XCTAssertEqual(layout.case(named: "ct_001")?.presentChannels, [0])
        XCTAssertEqual(layout.case(named: "mr_001")?.presentChannels, [1])

        // Paired with channels_present: the listed channels are required, the others optional.
        d.pairing = .paired
        d.channelsPresent = ["ct_001": [0], "mr_001": [0, 1]]
        try d.save(to: root)
        let problems = DatasetValidator.validate(root: root)
        XCTAssertEqual(problems.map(\.kind), [.missingChannel])
        XCTAssertEqual(problems.first?.file, "imagesTr/mr_001_0000.nii.gz")

        // Paired without channels_present: every channel of every case is required.
        d.channelsPresent = nil
        try d.save(to: root)
        XCTAssertEqual(Set(DatasetValidator.validate(root: root).map(\.file)), ["imagesTr/ct_001_0001.nii.gz", "imagesTr/mr_001_0000.nii.gz"])
    }

    func testCountMismatchAndMissingDescription() throws {
        let dir = try TempDir()
        let root = dir.url
        XCTAssertEqual(DatasetValidator.validate(root: root).map(\.file), ["dataset.json"])
        try writeCase(root, "a", channels: [image()], label: label())
        try DatasetDescription(channelNames: ["CT"], labels: [("background", 0), ("x", 1), ("y", 2)], numTraining: 4).save(to: root)
        let problems = DatasetValidator.validate(root: root)
        XCTAssertEqual(problems.map(\.kind), [.countMismatch])
        XCTAssertTrue(problems[0].message.contains("numTraining is 4"))
        XCTAssertFalse(DatasetValidator.validate(root: root.appendingPathComponent("nope")).isEmpty)
    }

    func testWorldBoxOverlap() {
        let a = Affine.scaling([1, 1, 1])
        XCTAssertTrue(DatasetValidator.worldBoxesOverlap([10, 10, 10], a, [5, 5, 5], .scaling([2, 2, 2], origin: [4, 4, 4])))
        XCTAssertFalse(DatasetValidator.worldBoxesOverlap([10, 10, 10], a, [5, 5, 5], .scaling([1, 1, 1], origin: [20, 0, 0])))
        // A flipped axis still overlaps.
        XCTAssertTrue(DatasetValidator.worldBoxesOverlap([10, 10, 10], a, [10, 10, 10], Affine(rowMajor: [-1, 0, 0, 9, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])))
        XCTAssertFalse(DatasetValidator.worldBoxesOverlap([10, 10, 10], a, [10, 10, 10], Affine(rowMajor: [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])))
    }
}
