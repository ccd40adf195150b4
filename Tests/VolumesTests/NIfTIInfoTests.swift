import Foundation
import XCTest
@testable import Volumes

final class NIfTIInfoTests: XCTestCase {
    func testInfoOfScaledInt16Fixture() throws {
        let e = try Fixtures.expected("int16_scaled.nii")
        let info = try NIfTI.read(Fixtures.url(e.file)).info()
        XCTAssertEqual(info.shape, [7, 6, 5])
        XCTAssertEqual(info.datatype, "int16")
        XCTAssertEqual(info.spacing, [1.5, 2.0, 2.5])
        XCTAssertEqual(info.affine.count, 4)
        for r in 0..<4 { for c in 0..<4 { XCTAssertEqual(info.affine[r][c], e.affine[r][c], accuracy: 1e-6) } }
        XCTAssertEqual(info.min, e.min)
        XCTAssertEqual(info.max, e.max)
        XCTAssertEqual(info.mean, e.mean, accuracy: 1e-9)
    }

    func testInfoJSONKeys() throws {
        let info = try NIfTI.read(Fixtures.url("fourd_int16.nii.gz")).info()
        XCTAssertEqual(info.shape, [4, 5, 6, 3])
        let data = try JSONEncoder().encode(info)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["shape", "spacing", "affine", "datatype", "min", "max", "mean"])
        XCTAssertEqual(try JSONDecoder().decode(VolumeInfo.self, from: data), info)
    }

    func testInfoSkipsNonFiniteAndHasNonFinite() throws {
        let e = try Fixtures.expected("float32_nonfinite.nii.gz")
        let img = try NIfTI.read(Fixtures.url(e.file))
        XCTAssertTrue(img.hasNonFinite)
        XCTAssertTrue(img.volume.hasNonFinite)
        let info = img.info()
        XCTAssertEqual(info.min, e.min, accuracy: 1e-6)
        XCTAssertEqual(info.max, e.max, accuracy: 1e-6)
        XCTAssertEqual(info.mean, e.mean, accuracy: 1e-6)
        XCTAssertFalse(try NIfTI.read(Fixtures.url("float64.nii")).hasNonFinite)
    }

    func testDatatypeNames() {
        XCTAssertEqual(NIfTIDataType.allCases.map(\.name), ["uint8", "int16", "int32", "float32", "float64", "int8", "uint16", "uint32"])
        XCTAssertEqual(NIfTIDataType.allCases.map(\.bytesPerVoxel), [1, 2, 4, 4, 8, 1, 2, 4])
        XCTAssertEqual(NIfTIDataType(name: "uint16"), .uint16)
        XCTAssertNil(NIfTIDataType(name: "complex64"))
    }
}
