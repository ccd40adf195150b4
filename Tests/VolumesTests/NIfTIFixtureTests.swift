import Foundation
import XCTest
@testable import Volumes

/// Every fixture nibabel wrote (scripts/fixtures/make_nifti_fixtures.py) reads back with nibabel's
/// shape, datatype, affine, scaling and values.
final class NIfTIFixtureTests: XCTestCase {
    func testAllFixturesMatchNibabel() throws {
        let expected = try Fixtures.expected()
        XCTAssertGreaterThanOrEqual(expected.fixtures.count, 16)
        for e in expected.fixtures {
            try check(e)
        }
    }

    private func check(_ e: ExpectedFixture) throws {
        let url = Fixtures.url(e.file)
        let img = try NIfTI.read(url)
        let h = img.header
        let name = e.file
        XCTAssertEqual(h.shape, e.shape, name)
        XCTAssertEqual(img.frameCount, e.frames, name)
        XCTAssertEqual(h.datatype.name, e.datatype, name)
        XCTAssertEqual(h.version, e.version, name)
        XCTAssertEqual(h.byteOrder.rawValue, e.byte_order, name)
        XCTAssertEqual(h.qformCode, e.qform_code, name)
        XCTAssertEqual(h.sformCode, e.sform_code, name)
        for i in 0..<8 { XCTAssertEqual(h.pixdim[i], e.pixdim[i], accuracy: 1e-6, "\(name) pixdim[\(i)]") }
        XCTAssertEqual(h.scaling?.slope ?? 1, e.scl_slope ?? 1, accuracy: 1e-9, name)
        XCTAssertEqual(h.scaling?.inter ?? 0, e.scl_inter ?? 0, accuracy: 1e-9, name)
        assertAffine(img.volume.affine, e.affine, accuracy: 1e-5, name)
        assertAffine(h.affine, e.affine, accuracy: 1e-5, name)
        for i in 0..<3 { XCTAssertEqual(img.volume.spacing[i], e.zooms[i], accuracy: 1e-6, "\(name) spacing") }
        XCTAssertEqual(img.volume.shape, Array(e.shape.prefix(3)), name)

        // values
        for s in e.samples {
            let v = img.frame(s.t)[s.ijk[0], s.ijk[1], s.ijk[2]]
            if let want = s.value {
                XCTAssertEqual(Double(v), want, accuracy: 1e-6 * max(1, abs(want)), "\(name) voxel \(s.ijk) t=\(s.t)")
            } else {
                switch s.nonfinite {
                case "nan": XCTAssertTrue(v.isNaN, "\(name) voxel \(s.ijk) should be NaN")
                case "inf": XCTAssertEqual(v, .infinity, "\(name) voxel \(s.ijk)")
                default: XCTAssertEqual(v, -.infinity, "\(name) voxel \(s.ijk)")
                }
            }
        }
        var sum = 0.0, lo = Double.infinity, hi = -Double.infinity, nonFinite = 0, finite = 0
        for t in 0..<img.frameCount {
            var frameSum = 0.0
            for v in img.frame(t).voxels {
                guard v.isFinite else { nonFinite += 1; continue }
                frameSum += Double(v); finite += 1
                lo = min(lo, Double(v)); hi = max(hi, Double(v))
            }
            sum += frameSum
            XCTAssertEqual(frameSum, e.frame_sums[t], accuracy: 1e-5 * max(1, abs(e.frame_sums[t])) + 1e-3, "\(name) frame \(t) sum")
        }
        XCTAssertEqual(nonFinite, e.non_finite, name)
        XCTAssertEqual(sum, e.sum, accuracy: 1e-6 * max(1, abs(e.sum)) + 1e-3, "\(name) sum")
        XCTAssertEqual(lo, e.min, accuracy: 1e-6 * max(1, abs(e.min)), "\(name) min")
        XCTAssertEqual(hi, e.max, accuracy: 1e-6 * max(1, abs(e.max)), "\(name) max")
        XCTAssertEqual(img.hasNonFinite, e.non_finite > 0, name)
        XCTAssertEqual(finite + nonFinite, e.shape.reduce(1, *), name)
    }

    /// Both codes 0: nibabel's fallback is diag(-px, py, pz) with the volume centre at the origin.
    func testPixdimOnlyIsNibabelBaseAffine() throws {
        let img = try NIfTI.read(Fixtures.url("pixdim_only.nii"))
        XCTAssertEqual(img.header.affineSource, .pixdim)
        // shape (5, 4, 6), pixdim (2, 3, 4)
        assertAffine(img.volume.affine, [[-2, 0, 0, 4], [0, 3, 0, -4.5], [0, 0, 4, -10], [0, 0, 0, 1]])
    }

    func testQformOnlyWithNegativeQfac() throws {
        let img = try NIfTI.read(Fixtures.url("qform_qfac_neg.nii"))
        XCTAssertEqual(img.header.affineSource, .qform)
        XCTAssertEqual(img.header.qfac, -1)
        let m = img.volume.affine
        let det = m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0])
        XCTAssertLessThan(det, 0)
    }

    /// nibabel's load-time fixes: qfac 0 -> 1, negative pixdim -> abs, zero pixdim -> 1, sform code 7 -> 0.
    func testHeaderFixupsMatchNibabel() throws {
        let h = try NIfTI.readHeader(Fixtures.url("pixdim_fixups.nii"))
        XCTAssertEqual(Array(h.pixdim[0...3]), [1, 1, 2, 1])
        XCTAssertEqual(h.sformCode, 0)
        XCTAssertEqual(h.affineSource, .qform)
    }

    func testFourDFramesAreContiguousSlices() throws {
        let img = try NIfTI.read(Fixtures.url("fourd_int16.nii.gz"))
        XCTAssertEqual(img.frameCount, 3)
        XCTAssertEqual(img.volume.shape, [4, 5, 6])
        XCTAssertEqual(img.frame(0).voxels, img.volume.voxels)
        XCTAssertNotEqual(img.frame(1).voxels, img.frame(2).voxels)
        var seen = 0
        img.forEachFrameBuffer { t, b in XCTAssertEqual(b.count, 120); seen += 1; XCTAssertEqual(Array(b), img.frame(t).voxels) }
        XCTAssertEqual(seen, 3)
    }

    func testPairFileReadByHeaderOrImageName() throws {
        let a = try NIfTI.read(Fixtures.url("pair.hdr"))
        let b = try NIfTI.read(Fixtures.url("pair.img"))
        XCTAssertFalse(a.header.isSingleFile)
        XCTAssertEqual(a.volume.voxels, b.volume.voxels)
    }

    func testReadHeaderOnlyMatchesRead() throws {
        for name in ["uint8_labels.nii.gz", "nifti2_be_int16.nii.gz", "float32_be.nii", "nifti2_int32.nii"] {
            let h = try NIfTI.readHeader(Fixtures.url(name))
            let img = try NIfTI.read(Fixtures.url(name))
            XCTAssertEqual(h, img.header, name)
        }
    }

    func testGzipDetectedByMagicNotExtension() throws {
        let dir = try makeTempDir(self)
        let renamed = dir.appendingPathComponent("labels_really_gz.nii")
        try FileManager.default.copyItem(at: Fixtures.url("uint8_labels.nii.gz"), to: renamed)
        let a = try NIfTI.read(renamed)
        let b = try NIfTI.read(Fixtures.url("uint8_labels.nii.gz"))
        XCTAssertEqual(a.volume.voxels, b.volume.voxels)
    }
}
