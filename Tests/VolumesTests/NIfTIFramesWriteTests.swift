import Foundation
import XCTest
@testable import Volumes

/// `NIfTI.write(frames:to:)`: 4D images (one 3D frame per channel or time point).
final class NIfTIFramesWriteTests: XCTestCase {
    func testFourDRoundTripKeepsFramesAndGeometry() throws {
        let dir = try makeTempDir(self)
        let affine = obliqueAffine(deg: 20, zooms: [1.5, 1.25, 3], offset: [-40, 12.5, 7])
        let frames = (0..<3).map { t in
            patternVolume([5, 4, 3], affine: affine) { i, j, k in Float(t * 1000 + i + 10 * j + 100 * k) }
        }
        for (ext, datatype) in [(".nii.gz", NIfTIDataType.float32), (".nii", .int16)] {
            let url = dir.appendingPathComponent("four_d\(ext)")
            try NIfTI.write(frames: frames, to: url, datatype: datatype)
            let back = try NIfTI.read(url)
            XCTAssertEqual(back.header.dim[0], 4)
            XCTAssertEqual(back.header.shape, [5, 4, 3, 3])
            XCTAssertEqual(back.header.datatype, datatype)
            XCTAssertEqual(back.frameCount, 3)
            XCTAssertEqual(back.header.pixdim[4], 1)
            for t in 0..<3 { XCTAssertEqual(back.frame(t).voxels, frames[t].voxels, "frame \(t) \(ext)") }
            assertAffine(back.volume.affine, affine, accuracy: 1e-4)
        }
        // One frame is a plain 3D image, byte for byte what write(_:to:) produces.
        let a = dir.appendingPathComponent("one.nii"), b = dir.appendingPathComponent("plain.nii")
        try NIfTI.write(frames: [frames[1]], to: a)
        try NIfTI.write(frames[1], to: b)
        XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b))
        XCTAssertEqual(try NIfTI.read(a).header.dim[0], 3)
    }

    func testFourDWithAFourDReferenceKeepsItsGeometry() throws {
        let dir = try makeTempDir(self)
        let affine = obliqueAffine(deg: -35, zooms: [0.8, 0.8, 2], offset: [1, 2, 3], flipK: true)
        let frames = (0..<2).map { t in patternVolume([4, 4, 2], affine: affine) { i, j, k in Float(t + i + j + k) } }
        let first = dir.appendingPathComponent("first.nii.gz")
        try NIfTI.write(frames: frames, to: first)
        let reference = try NIfTI.read(first).header
        var moved = frames
        for t in moved.indices { moved[t].affine = .identity }   // ignored: the reference decides
        let second = dir.appendingPathComponent("second.nii.gz")
        try NIfTI.write(frames: moved, to: second, datatype: .uint8, reference: reference)
        let back = try NIfTI.read(second)
        XCTAssertEqual(back.frameCount, 2)
        XCTAssertEqual(back.header.datatype, .uint8)
        assertAffine(back.volume.affine, affine, accuracy: 1e-4)
        XCTAssertEqual(back.frame(1).voxels, frames[1].voxels)
    }

    func testFourDRefusesMismatchedFramesAndOverflowAndNothingIsWritten() throws {
        let dir = try makeTempDir(self)
        let a = patternVolume([3, 3, 3]) { _, _, _ in 1 }
        let b = patternVolume([3, 3, 2]) { _, _, _ in 1 }
        let url = dir.appendingPathComponent("bad.nii.gz")
        assertNIfTIError(url, ["dim", "frame 1"]) { try NIfTI.write(frames: [a, b], to: url) }
        let big = patternVolume([3, 3, 3]) { i, _, _ in i == 2 ? 300 : 0 }
        assertNIfTIError(url, ["voxel values", "frame 1", "300"]) { try NIfTI.write(frames: [a, big], to: url, datatype: .uint8) }
        assertNIfTIError(url, ["no frame"]) { try NIfTI.write(frames: [], to: url) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
