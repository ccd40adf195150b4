import Foundation
import XCTest
@testable import Datasets
import Volumes

/// `concord convert dicom`: the minimal DICOM reader, the geometry check, and a synthetic oblique
/// CT series through the real dcm2niix.
final class DICOMConverterTests: XCTestCase {
    typealias F = ConverterFixtures

    // An oblique (non-axial) orientation: rows along (0.6, 0.8, 0), columns along -z; slices along
    // the normal (-0.8, 0.6, 0), 2.5 mm apart. PixelSpacing: 0.8 mm between rows, 0.7 between columns.
    static let orientation = [0.6, 0.8, 0, 0, 0, -1.0]
    static let normal = [-0.8, 0.6, 0.0]
    static let pixelSpacing = [0.8, 0.7]
    static let rows = 6, columns = 5, slices = 4, sliceGap = 2.5

    static func stored(_ i: Int, _ j: Int, _ k: Int, series: Int) -> Int16 { Int16(100 * k + 10 * j + i + series) }

    /// LPS position of voxel (column i, row j, slice k).
    static func lps(_ i: Int, _ j: Int, _ k: Int, origin: [Double]) -> [Double] {
        (0..<3).map { a in
            origin[a] + Double(i) * pixelSpacing[1] * orientation[a] + Double(j) * pixelSpacing[0] * orientation[3 + a]
                + Double(k) * sliceGap * normal[a]
        }
    }

    /// Writes one series, one file per slice, in a shuffled order with unrelated file names.
    static func writeSeries(_ folder: URL, series: Int, origin: [Double]) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for k in [2, 0, 3, 1] {
            var pixels: [Int16] = []
            for j in 0..<rows { for i in 0..<columns { pixels.append(stored(i, j, k, series: series)) } }
            let data = DICOMWriter.ctSlice(seriesUID: "1.2.826.0.1.3680043.9.7777.2.\(series)", seriesNumber: series, instance: k + 1,
                                           position: lps(0, 0, k, origin: origin), orientation: orientation, pixelSpacing: pixelSpacing,
                                           rows: rows, columns: columns, pixels: pixels)
            try data.write(to: folder.appendingPathComponent("IM\(series)\(7 - k)"))
        }
    }

    static let originA = [-100.25, 50.5, 30.75], originB = [12.5, -8.25, -40.0]

    func dcm2niixOrSkip() throws {
        guard (try? DICOMConverter.locateDcm2niix(nil)) != nil else {
            throw XCTSkip("dcm2niix is not installed (scripts/bootstrap installs it: apt-get install dcm2niix)")
        }
    }

    func makeSource(_ dir: URL) throws -> URL {
        let root = dir.appendingPathComponent("dicom")
        try Self.writeSeries(root.appendingPathComponent("patientA"), series: 1, origin: Self.originA)
        try Self.writeSeries(root.appendingPathComponent("patient B/study/series"), series: 2, origin: Self.originB)
        try Data("not dicom".utf8).write(to: root.appendingPathComponent("patientA/notes.txt"))
        try F.writeResourceFork(root.appendingPathComponent("patientA/._IM17"))
        return root
    }

    /// Every DICOM voxel's world position (LPS -> RAS) lands on a NIfTI voxel holding its value.
    func assertVoxelsAtDICOMPositions(_ url: URL, series: Int, origin: [Double], file: StaticString = #filePath, line: UInt = #line) throws {
        let image = try NIfTI.read(url)
        let v = image.volume
        XCTAssertEqual(v.shape.sorted(), [Self.columns, Self.rows, Self.slices].sorted(), file: file, line: line)
        XCTAssertEqual(v.spacing.map { ($0 * 1000).rounded() / 1000 }.sorted(), [0.7, 0.8, 2.5], file: file, line: line)
        let inv = try XCTUnwrap(v.affine.inverse())
        for k in 0..<Self.slices { for j in 0..<Self.rows { for i in 0..<Self.columns {
            let p = Self.lps(i, j, k, origin: origin)
            let ijk = inv.apply([-p[0], -p[1], p[2]])
            let idx = ijk.map { Int($0.rounded()) }
            for a in 0..<3 { XCTAssertEqual(ijk[a], Double(idx[a]), accuracy: 1e-3, "voxel (\(i), \(j), \(k))", file: file, line: line) }
            guard zip(idx, v.shape).allSatisfy({ $0 >= 0 && $0 < $1 }) else { XCTFail("outside the grid", file: file, line: line); return }
            XCTAssertEqual(v[idx[0], idx[1], idx[2]], Float(Self.stored(i, j, k, series: series)) - 1024, "voxel (\(i), \(j), \(k))", file: file, line: line)
        } } }
    }

    func testConvertsSeriesThroughDcm2niixAndVerifiesTheGeometry() throws {
        try dcm2niixOrSkip()
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        let out = dir.url.appendingPathComponent("out")
        let summary = try DatasetConverter.convert(.dicom, source: src, output: out)
        XCTAssertEqual(summary.unlabeled, ["patientA", "patient_B"])
        XCTAssertEqual(summary.labeled, [])
        XCTAssertTrue(summary.notes.contains("skipped 1 file that are not DICOM") || summary.notes.contains { $0.contains("not DICOM") }, "\(summary.notes)")
        let json = try F.json(out.appendingPathComponent("dataset.json"))
        XCTAssertEqual(json["channel_names"] as? [String: String], ["0": "CT"])
        XCTAssertEqual(json["labels"] as? [String: Int], ["background": 0, "foreground": 1])
        XCTAssertEqual(json["numTraining"] as? Int, 0)
        XCTAssertEqual(json["numUnlabeled"] as? Int, 2)
        XCTAssertEqual(F.files(out.appendingPathComponent("imagesUnlabeled")), ["patientA_0000.nii.gz", "patient_B_0000.nii.gz"])
        try assertVoxelsAtDICOMPositions(out.appendingPathComponent("imagesUnlabeled/patientA_0000.nii.gz"), series: 1, origin: Self.originA)
        try assertVoxelsAtDICOMPositions(out.appendingPathComponent("imagesUnlabeled/patient_B_0000.nii.gz"), series: 2, origin: Self.originB)
        // The affine is the DICOM one up to dcm2niix's axis order: its columns are the DICOM axes (RAS).
        let affine = try NIfTI.read(out.appendingPathComponent("imagesUnlabeled/patientA_0000.nii.gz")).volume.affine
        let expectedColumns = [[-0.6 * 0.7, -0.8 * 0.7, 0], [0, 0, -0.8], [0.8 * 2.5, -0.6 * 2.5, 0]]
        for c in 0..<3 {
            let column = (0..<3).map { affine[$0, c] }
            XCTAssertTrue(expectedColumns.contains { e in
                zip(e, column).allSatisfy { abs($0 - $1) < 1e-4 } || zip(e, column).allSatisfy { abs($0 + $1) < 1e-4 }
            }, "column \(c) \(column)")
        }
        XCTAssertEqual(summary.problems, [])
        XCTAssertEqual(validationErrors(out), [])
    }

    func testSeveralSeriesInOneFolder() throws {
        try dcm2niixOrSkip()
        let dir = try TempDir()
        let src = try makeSource(dir.url)
        try Self.writeSeries(src.appendingPathComponent("patientA/second"), series: 3, origin: [0, 0, 0])
        assertConversionFails(["patientA", "2 image series", "--series channels", "series 3 \"synthetic 3\""]) {
            try DatasetConverter.convert(.dicom, source: src, output: dir.url.appendingPathComponent("a"))
        }
        var options = ConversionOptions()
        options.seriesMode = .channels
        assertConversionFails(["with --series channels every case needs the same series"]) {
            try DatasetConverter.convert(.dicom, source: src, output: dir.url.appendingPathComponent("b"), options: options)
        }
        options.seriesMode = .cases
        options.labelNames = ["liver", "tumour"]
        let out = dir.url.appendingPathComponent("c")
        let summary = try DatasetConverter.convert(.dicom, source: src, output: out, options: options)
        XCTAssertEqual(summary.unlabeled, ["patientA_s1", "patientA_s3", "patient_B"])
        XCTAssertEqual(try F.json(out.appendingPathComponent("dataset.json"))["labels"] as? [String: Int], ["background": 0, "liver": 1, "tumour": 2])
        try assertVoxelsAtDICOMPositions(out.appendingPathComponent("imagesUnlabeled/patientA_s3_0000.nii.gz"), series: 3, origin: [0, 0, 0])
        XCTAssertEqual(validationErrors(out), [])

        // Two series per case as channels.
        try Self.writeSeries(src.appendingPathComponent("patient B/other"), series: 4, origin: [1, 2, 3])
        options.seriesMode = .channels
        options.labelNames = nil
        options.channelNames = ["CT", "CT late"]
        let channels = dir.url.appendingPathComponent("d")
        _ = try DatasetConverter.convert(.dicom, source: src, output: channels, options: options)
        XCTAssertEqual(F.files(channels.appendingPathComponent("imagesUnlabeled")),
                       ["patientA_0000.nii.gz", "patientA_0001.nii.gz", "patient_B_0000.nii.gz", "patient_B_0001.nii.gz"])
        XCTAssertEqual(try F.json(channels.appendingPathComponent("dataset.json"))["channel_names"] as? [String: String], ["0": "CT", "1": "CT late"])
        try assertVoxelsAtDICOMPositions(channels.appendingPathComponent("imagesUnlabeled/patient_B_0001.nii.gz"), series: 4, origin: [1, 2, 3])
    }

    func testSeriesErrorsNameTheFiles() throws {
        try dcm2niixOrSkip()
        let dir = try TempDir()
        let src = dir.url.appendingPathComponent("dicom")
        // Two slices at one position: a multi-volume series.
        try Self.writeSeries(src.appendingPathComponent("p1"), series: 5, origin: Self.originA)
        let dup = DICOMWriter.ctSlice(seriesUID: "1.2.826.0.1.3680043.9.7777.2.5", seriesNumber: 5, instance: 9,
                                      position: Self.lps(0, 0, 1, origin: Self.originA), orientation: Self.orientation, pixelSpacing: Self.pixelSpacing,
                                      rows: Self.rows, columns: Self.columns, pixels: [Int16](repeating: 0, count: Self.rows * Self.columns))
        try dup.write(to: src.appendingPathComponent("p1/IMdup"))
        assertConversionFails(["distinct positions"]) { try DatasetConverter.convert(.dicom, source: src, output: dir.url.appendingPathComponent("a")) }
        try FileManager.default.removeItem(at: src.appendingPathComponent("p1/IMdup"))
        // A damaged file (truncated inside an element).
        let good = try Data(contentsOf: src.appendingPathComponent("p1/IM57"))
        try good.prefix(300).write(to: src.appendingPathComponent("p1/IM57"))
        assertConversionFails(["p1/IM57", "damaged DICOM"]) { try DatasetConverter.convert(.dicom, source: src, output: dir.url.appendingPathComponent("b")) }
        // A missing dcm2niix.
        var options = ConversionOptions()
        options.dcm2niix = "/nonexistent/dcm2niix"
        assertConversionFails(["/nonexistent/dcm2niix", "not an executable"]) {
            try DatasetConverter.convert(.dicom, source: src, output: dir.url.appendingPathComponent("c"), options: options)
        }
    }

    func testMissingDcm2niixSaysHowToInstallIt() throws {
        let empty = try TempDir()
        let saved = ProcessInfo.processInfo.environment["PATH"]
        setenv("PATH", empty.url.path, 1)
        defer { if let saved = saved { setenv("PATH", saved, 1) } else { unsetenv("PATH") } }
        assertConversionFails(["dcm2niix was not found", "scripts/bootstrap"]) { try DICOMConverter.locateDcm2niix(nil) }
    }

    // MARK: - reader and geometry check (no dcm2niix needed)

    func testHeaderReaderExplicitImplicitAndDamaged() throws {
        let data = DICOMWriter.ctSlice(seriesUID: "1.2.3.4", seriesNumber: 7, instance: 3, position: [1.5, -2, 3.25],
                                       orientation: Self.orientation, pixelSpacing: [0.5, 0.75], rows: 2, columns: 3,
                                       pixels: [1, 2, 3, 4, 5, 6])
        let h = try XCTUnwrap(try DICOMHeader.parse(data, file: "x"))
        XCTAssertEqual(h.transferSyntax, DICOMHeader.explicitLittleEndian)
        XCTAssertEqual(h.sopClassUID, DICOMWriter.ctImageStorage)
        XCTAssertEqual(h.modality, "CT")
        XCTAssertEqual(h.seriesInstanceUID, "1.2.3.4")
        XCTAssertEqual(h.seriesNumber, 7)
        XCTAssertEqual(h.instanceNumber, 3)
        XCTAssertEqual(h.seriesDescription, "synthetic 7")
        XCTAssertEqual(h.imagePosition, [1.5, -2, 3.25])
        XCTAssertEqual(h.imageOrientation, Self.orientation)
        XCTAssertEqual(h.pixelSpacing, [0.5, 0.75])
        XCTAssertEqual(h.rows, 2)
        XCTAssertEqual(h.columns, 3)
        XCTAssertTrue(h.hasGeometry)

        // A bare implicit VR little endian data set (no preamble), with an undefined-length sequence.
        var w = DICOMWriter()
        func implicit(_ g: Int, _ e: Int, _ value: [UInt8]) { w.u16(g); w.u16(e); w.u32(value.count); w.bytes += value }
        func text(_ s: String) -> [UInt8] { var b = Array(s.utf8); if b.count % 2 == 1 { b.append(0x20) }; return b }
        implicit(0x0008, 0x0016, text(DICOMWriter.ctImageStorage))
        implicit(0x0008, 0x0060, text("MR"))
        w.u16(0x0008); w.u16(0x1140); w.u32(0xFFFF_FFFF)          // sequence, undefined length
        w.u16(0xFFFE); w.u16(0xE000); w.u32(0xFFFF_FFFF)          // item, undefined length
        implicit(0x0008, 0x1155, text("1.2.3"))
        w.u16(0xFFFE); w.u16(0xE00D); w.u32(0)
        w.u16(0xFFFE); w.u16(0xE0DD); w.u32(0)
        implicit(0x0020, 0x000E, text("9.8.7"))
        implicit(0x0020, 0x0032, text("1\\2\\3"))
        implicit(0x0020, 0x0037, text("1\\0\\0\\0\\1\\0"))
        implicit(0x0028, 0x0010, [4, 0])
        implicit(0x0028, 0x0011, [5, 0])
        implicit(0x0028, 0x0030, text("2\\3"))
        let bare = try XCTUnwrap(try DICOMHeader.parse(Data(w.bytes), file: "bare"))
        XCTAssertEqual(bare.modality, "MR")
        XCTAssertEqual(bare.seriesInstanceUID, "9.8.7")
        XCTAssertEqual(bare.rows, 4)
        XCTAssertEqual(bare.columns, 5)
        XCTAssertEqual(bare.pixelSpacing, [2, 3])
        XCTAssertTrue(bare.hasGeometry)

        // Not DICOM at all; damaged DICOM.
        XCTAssertNil(try DICOMHeader.parse(Data("hello world, this is not a DICOM file at all".utf8), file: "t"))
        XCTAssertNil(try DICOMHeader.parse(Data(), file: "empty"))
        for cut in [140, 200, 400, 700] {
            XCTAssertThrowsError(try DICOMHeader.parse(data.prefix(cut), file: "cut\(cut)"), "cut at \(cut)") { e in
                XCTAssertTrue("\(e)".contains("cut\(cut)"), "\(e)")
            }
        }
        var bad = [UInt8](data)
        let at = try XCTUnwrap(Self.find(Array("0.5\\0.75".utf8), in: bad))
        bad[at] = UInt8(ascii: "x")
        XCTAssertThrowsError(try DICOMHeader.parse(Data(bad), file: "bad")) { e in XCTAssertTrue("\(e)".contains("(0028,0030)"), "\(e)") }
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }

    func testGeometryCheckAcceptsReorderedAxesAndRefusesShifts() {
        let grid = DICOMConverter.Grid(shape: [5, 6, 4], affine: F.affine(deg: 30, tilt: 20, zooms: [0.7, 0.8, 2.5], offset: [10, -20, 30]))
        XCTAssertTrue(DICOMConverter.verify(niftiShape: [5, 6, 4], niftiAffine: grid.affine, against: grid).ok)
        // Rows flipped (what dcm2niix does) and the first two axes swapped.
        var p = [Double](repeating: 0, count: 16)
        p[0 * 4 + 1] = 1; p[1 * 4 + 0] = -1; p[1 * 4 + 3] = 5; p[2 * 4 + 2] = 1; p[15] = 1
        let reordered = grid.affine * Affine(rowMajor: p)
        XCTAssertTrue(DICOMConverter.verify(niftiShape: [6, 5, 4], niftiAffine: reordered, against: grid).ok)
        XCTAssertFalse(DICOMConverter.verify(niftiShape: [5, 6, 4], niftiAffine: reordered, against: grid).ok, "shape not permuted with the axes")
        var shifted = reordered
        shifted[0, 3] += 0.01
        let r = DICOMConverter.verify(niftiShape: [6, 5, 4], niftiAffine: shifted, against: grid)
        XCTAssertFalse(r.ok)
        XCTAssertEqual(r.distance, 0.01, accuracy: 1e-6)
        var scaled = grid.affine
        for row in 0..<3 { scaled[row, 2] *= 1.01 }
        XCTAssertFalse(DICOMConverter.verify(niftiShape: [5, 6, 4], niftiAffine: scaled, against: grid).ok)
    }
}
