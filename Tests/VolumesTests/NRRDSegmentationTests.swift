import Foundation
import XCTest
@testable import Volumes

/// `.seg.nrrd` for 3D Slicer: the header carries the grid and the segments, the gzip payload the
/// labels in NIfTI voxel order.
final class NRRDSegmentationTests: XCTestCase {
    func testHeaderGeometrySegmentsAndPayloadRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-\(UUID().uuidString).seg.nrrd")
        defer { try? FileManager.default.removeItem(at: url) }
        // An oblique, anisotropic grid: the affine's columns are the space directions.
        let affine = Affine(rowMajor: [0, -1.5, 0, 10.25, 2, 0, 0, -3, 0, 0, 2.5, 7, 0, 0, 0, 1])
        let shape = [3, 4, 2]
        let labels = (0..<24).map { Float($0 % 3) }
        let volume = Volume(shape: shape, voxels: labels, spacing: [2, 1.5, 2.5], affine: affine)
        try NRRDSegmentation.write(volume, segments: [NRRDSegment(label: 1, name: "left ventricle", color: (1, 0.5, 0)),
                                                      NRRDSegment(label: 2, name: "myocardium", color: (0, 0, 1))], to: url)
        let data = try Data(contentsOf: url)
        let separator = Data("\n\n".utf8)
        let end = try XCTUnwrap(data.range(of: separator))
        let header = String(decoding: data[..<end.lowerBound], as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(header.first, "NRRD0004")
        for line in ["type: unsigned char", "dimension: 3", "space: right-anterior-superior", "sizes: 3 4 2",
                     "space directions: (0,2,0) (-1.5,0,0) (0,0,2.5)", "space origin: (10.25,-3,7)", "encoding: gzip",
                     "kinds: domain domain domain", "Segment0_Name:=left ventricle", "Segment0_LabelValue:=1", "Segment0_ID:=Segment_1",
                     "Segment0_Color:=1 0.5 0", "Segment0_Extent:=0 2 0 3 0 1", "Segment1_Name:=myocardium", "Segment1_LabelValue:=2",
                     "Segment1_Layer:=0", "Segmentation_MasterRepresentation:=Binary labelmap"] {
            XCTAssertTrue(header.contains(line), "missing '\(line)' in\n\(header.joined(separator: "\n"))")
        }
        // The payload: one gzip stream of the 24 labels in voxel order.
        let payload = FileManager.default.temporaryDirectory.appendingPathComponent("concord-\(UUID().uuidString).gz")
        defer { try? FileManager.default.removeItem(at: payload) }
        try data[end.upperBound...].write(to: payload)
        let source = try XCTUnwrap(NIfTIWholeGzip.inflate(payload, expectedSize: 24))
        var bytes = [UInt8](repeating: 9, count: 24)
        XCTAssertEqual(try bytes.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: 24) }, 24)
        XCTAssertEqual(bytes, labels.map { UInt8($0) })
    }

    func testNonLabelVoxelsAreRefused() {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-\(UUID().uuidString).seg.nrrd")
        let volume = Volume(shape: [2, 1, 1], voxels: [0, 1.5], spacing: [1, 1, 1])
        XCTAssertThrowsError(try NRRDSegmentation.write(volume, segments: [], to: url)) { error in
            XCTAssertTrue("\(error)".contains("voxel 1 is 1.5"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }
}
