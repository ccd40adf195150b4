import Foundation
import XCTest
@testable import Volumes

final class NIfTIWriteTests: XCTestCase {
    private func sample(_ affine: Affine, shape: [Int] = [9, 7, 5]) -> Volume {
        patternVolume(shape, affine: affine) { i, j, k in Float(i) * 1.25 - Float(j * j) * 0.5 + Float(k) * 100 + 0.125 }
    }

    func testRoundTripWithoutReference() throws {
        let dir = try makeTempDir(self)
        let affines = [
            obliqueAffine(deg: 30, zooms: [0.9, 1.1, 2.5], offset: [-100.5, 20.25, 7]),
            obliqueAffine(deg: -75, zooms: [1, 1, 3], offset: [1, 2, 3], flipK: true),  // qfac -1
            Affine.scaling([2, 2, 2], origin: [-3, 4, 5]),
        ]
        for (n, affine) in affines.enumerated() {
            for ext in [".nii", ".nii.gz"] {
                let url = dir.appendingPathComponent("v\(n)\(ext)")
                let vol = sample(affine)
                try NIfTI.write(vol, to: url)
                let back = try NIfTI.read(url)
                XCTAssertEqual(back.volume.shape, vol.shape)
                XCTAssertEqual(back.volume.voxels, vol.voxels)
                XCTAssertEqual(back.header.datatype, .float32)
                XCTAssertEqual(back.header.sformCode, 1)
                XCTAssertEqual(back.header.qformCode, 1)
                XCTAssertEqual(back.header.qfac, n == 1 ? -1 : 1)
                assertAffine(back.volume.affine, affine, accuracy: 1e-4, url.lastPathComponent)
                // the qform alone gives the same geometry (no shear here)
                assertAffine(back.header.qformAffine, affine, accuracy: 1e-4, "qform \(url.lastPathComponent)")
                for i in 0..<3 { XCTAssertEqual(back.volume.spacing[i], affine.spacing[i], accuracy: 1e-5) }
                let magic = try FileHandle(forReadingFrom: url).readData(ofLength: 2)
                XCTAssertEqual(Array(magic) == [0x1f, 0x8b], ext == ".nii.gz")
            }
        }
    }

    func testRoundTripWithReferenceKeepsGeometryExactly() throws {
        let dir = try makeTempDir(self)
        for name in ["sform_oblique.nii", "qform_qfac_neg.nii", "pixdim_only.nii", "nifti2_int32.nii", "float32_be.nii"] {
            let input = try NIfTI.read(Fixtures.url(name))
            let ref = input.header
            var mask = input.volume
            mask.voxels = mask.voxels.indices.map { Float($0 % 3) }
            for ext in [".nii", ".nii.gz"] {
                let url = dir.appendingPathComponent("mask_\(name)\(ext)")
                try NIfTI.write(mask, to: url, datatype: .uint8, reference: ref)
                let back = try NIfTI.read(url)
                let h = back.header
                XCTAssertEqual(h.version, 1)
                XCTAssertEqual(h.byteOrder, .little)
                XCTAssertEqual(h.datatype, .uint8)
                XCTAssertEqual(h.qformCode, ref.qformCode, name)
                XCTAssertEqual(h.sformCode, ref.sformCode, name)
                func f(_ x: Double) -> Float { Float(x) }  // fields are float32 in NIfTI-1
                XCTAssertEqual([h.quaternB, h.quaternC, h.quaternD].map(f), [ref.quaternB, ref.quaternC, ref.quaternD].map(f), name)
                XCTAssertEqual([h.qoffsetX, h.qoffsetY, h.qoffsetZ].map(f), [ref.qoffsetX, ref.qoffsetY, ref.qoffsetZ].map(f), name)
                XCTAssertEqual((h.srowX + h.srowY + h.srowZ).map(f), (ref.srowX + ref.srowY + ref.srowZ).map(f), name)
                XCTAssertEqual(h.pixdim.map(f), ref.pixdim.map(f), name)
                XCTAssertEqual(h.xyztUnits, ref.xyztUnits, name)
                XCTAssertEqual(h.descrip, ref.descrip, name)
                XCTAssertEqual(h.scaling?.slope, 1)
                XCTAssertEqual(h.scaling?.inter, 0)
                let tolerance = ref.version == 2 ? 1e-5 : 1e-9
                assertAffine(back.volume.affine, input.volume.affine, accuracy: tolerance, name)
                XCTAssertEqual(back.volume.voxels, mask.voxels)
            }
        }
    }

    func testReferenceShapeMismatchIsRefused() throws {
        let dir = try makeTempDir(self)
        let ref = try NIfTI.readHeader(Fixtures.url("int16_scaled.nii"))
        let url = dir.appendingPathComponent("wrong.nii")
        assertNIfTIError(url, ["dim", "reference"]) {
            try NIfTI.write(sample(.identity, shape: [3, 3, 3]), to: url, reference: ref)
        }
    }

    func testEveryDatatypeRoundTrips() throws {
        let dir = try makeTempDir(self)
        for type in NIfTIDataType.allCases {
            let range = type.integerRange ?? (-1e6...1e6)
            let lo = Float(max(range.lowerBound, -1e6)), hi = Float(min(range.upperBound, 1e6))
            let vol = patternVolume([5, 4, 3]) { i, j, k in
                let t = Float(i + 5 * (j + 4 * k)) / 59
                let v = lo + (hi - lo) * t
                return type.isInteger ? v.rounded() : v * 1.000123
            }
            for ext in [".nii", ".nii.gz"] {
                let url = dir.appendingPathComponent("\(type.name)\(ext)")
                try NIfTI.write(vol, to: url, datatype: type)
                let back = try NIfTI.read(url)
                XCTAssertEqual(back.header.datatype, type)
                XCTAssertEqual(back.volume.voxels, vol.voxels, type.name)
            }
        }
    }

    func testIntegerWritesRoundToNearestEvenAndRefuseOverflow() throws {
        let dir = try makeTempDir(self)
        let url = dir.appendingPathComponent("r.nii.gz")
        let values: [Float] = [1.5, 2.5, -1.5, -0.4, 0.6, 32767, -32768, 7.49]
        let vol = Volume(shape: [8, 1, 1], voxels: values, spacing: [1, 1, 1])
        try NIfTI.write(vol, to: url, datatype: .int16)
        XCTAssertEqual(try NIfTI.read(url).volume.voxels, [2, 2, -2, 0, 1, 32767, -32768, 7])

        for (type, bad) in [(NIfTIDataType.uint8, Float(256)), (.uint8, -0.6), (.int16, 32767.6), (.int8, .nan),
                            (.uint32, 4_294_967_296), (.int32, .infinity)] {
            let out = dir.appendingPathComponent("bad_\(type.name).nii")
            var v = vol
            v.voxels = [1, 2, 3, bad, 5, 6, 7, 8]
            assertNIfTIError(out, ["voxel values", type.name, "(3, 0, 0)"]) {
                try NIfTI.write(v, to: out, datatype: type)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
        // nothing but the one good file is left (no temporary files)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["r.nii.gz"])
    }

    func testWriteIsAtomicOverwriteAndLeavesNoTemporaryFiles() throws {
        let dir = try makeTempDir(self)
        let url = dir.appendingPathComponent("out.nii.gz")
        try NIfTI.write(sample(.identity), to: url)
        var second = sample(.identity)
        second.voxels = second.voxels.map { -$0 }
        try NIfTI.write(second, to: url)
        XCTAssertEqual(try NIfTI.read(url).volume.voxels, second.voxels)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.nii.gz"])
        // missing folders are created (as for every atomic write in Concord)
        let nested = dir.appendingPathComponent("new/sub/x.nii")
        try NIfTI.write(sample(.identity), to: nested)
        XCTAssertEqual(try NIfTI.read(nested).volume.voxels, sample(.identity).voxels)
        // a folder that cannot be created (a file stands in its place) is an error naming the file
        try Data("x".utf8).write(to: dir.appendingPathComponent("blocker"))
        let blocked = dir.appendingPathComponent("blocker/y.nii")
        assertNIfTIError(blocked, ["folder"]) { try NIfTI.write(sample(.identity), to: blocked) }
    }

    func testWrittenHeaderMatchesNibabelConventions() throws {
        let affine = obliqueAffine(deg: 20, zooms: [0.5, 0.75, 3], offset: [10, -20, 30])
        let h = try NIfTI.header(for: sample(affine), datatype: .int16)
        XCTAssertEqual(h.dim, [3, 9, 7, 5, 1, 1, 1, 1])
        XCTAssertEqual(h.bitpix, 16)
        XCTAssertEqual(h.voxOffset, 352)
        XCTAssertEqual(h.pixdim[1], 0.5, accuracy: 1e-12)
        XCTAssertEqual(h.pixdim[3], 3, accuracy: 1e-12)
        // rotation of 20 degrees about z: quaternion (cos 10°, 0, 0, sin 10°)
        XCTAssertEqual(h.quaternB, 0, accuracy: 1e-12)
        XCTAssertEqual(h.quaternD, sin(10 * Double.pi / 180), accuracy: 1e-12)
        let bytes = h.encodedNIfTI1()
        XCTAssertEqual(bytes.count, 352)
        XCTAssertEqual(Array(bytes[344..<348]), Array("n+1\0".utf8))
    }

    /// Writes files for `scripts/fixtures/make_nifti_fixtures.py --verify DIR` (nibabel must read
    /// them with the same affine). Runs only when CONCORD_NIFTI_EXPORT_DIR is set.
    func testExportForNibabel() throws {
        guard let path = ProcessInfo.processInfo.environment["CONCORD_NIFTI_EXPORT_DIR"] else {
            throw XCTSkip("set CONCORD_NIFTI_EXPORT_DIR to export files for the nibabel check")
        }
        let dir = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var manifest: [[String: Any]] = []
        func record(_ file: String, _ vol: Volume, _ type: NIfTIDataType, affine: Affine, codes: (Int, Int), qform: Affine? = nil) throws {
            let back = try NIfTI.read(dir.appendingPathComponent(file))
            var entry: [String: Any] = [
                "file": file, "shape": vol.shape, "affine": affine.matrixRows, "datatype": type.name,
                "qform_code": codes.0, "sform_code": codes.1,
                "sum": back.volume.voxels.reduce(0.0) { $0 + Double($1) },
            ]
            if let q = qform { entry["qform_affine"] = q.matrixRows }
            manifest.append(entry)
        }
        let a1 = obliqueAffine(deg: 33, zooms: [0.8, 1.2, 2.0], offset: [-90, 15.5, 40])
        let a2 = obliqueAffine(deg: -60, zooms: [1, 1, 1.5], offset: [3, -4, 5], flipK: true)
        for (file, affine, type) in [("oblique_f32.nii.gz", a1, NIfTIDataType.float32), ("qfacneg_i16.nii", a2, .int16),
                                     ("plain_f64.nii", Affine.scaling([2, 3, 4], origin: [1, 2, 3]), .float64)] {
            let vol = sample(affine)
            try NIfTI.write(vol, to: dir.appendingPathComponent(file), datatype: type)
            try record(file, vol, type, affine: affine, codes: (1, 1), qform: affine)
        }
        for name in ["sform_oblique.nii", "qform_qfac_neg.nii", "pixdim_only.nii", "nifti2_int32.nii"] {
            let input = try NIfTI.read(Fixtures.url(name))
            var mask = input.volume
            mask.voxels = mask.voxels.indices.map { Float($0 % 4) }
            let file = "mask_" + name + ".gz"
            try NIfTI.write(mask, to: dir.appendingPathComponent(file), datatype: .uint8, reference: input.header)
            try record(file, mask, .uint8, affine: input.volume.affine, codes: (input.header.qformCode, input.header.sformCode))
        }
        let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try json.write(to: dir.appendingPathComponent("manifest.json"))
    }
}
