import Essentials
import Foundation
import XCTest
@testable import Volumes

/// Hostile and broken files: each is a NIfTIError naming the file and the problem; nothing crashes
/// and nothing large is allocated.
final class NIfTICorruptTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTempDir(self)
    }

    /// Bytes of a fixture (little-endian NIfTI-1 unless said otherwise).
    private func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Fixtures.url(name)))
    }

    private func file(_ name: String, _ b: [UInt8]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(b).write(to: url)
        return url
    }

    /// Gzip-compresses `b` into `name` (with Concord's own writer stream).
    private func gzFile(_ name: String, _ b: [UInt8]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try NIfTI.atomicWrite(to: url, gzip: true, level: 6) { sink in
            try b.withUnsafeBytes { try sink.write($0.baseAddress!, count: $0.count) }
        }
        return url
    }

    private func put<T: FixedWidthInteger>(_ b: inout [UInt8], _ offset: Int, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { for (k, x) in $0.enumerated() { b[offset + k] = x } }
    }

    private func putF(_ b: inout [UInt8], _ offset: Int, _ v: Float) { put(&b, offset, v.bitPattern) }

    /// Checks both read and (where the header is at fault) readHeader.
    private func expectError(_ url: URL, _ words: [String], headerToo: Bool = true,
                             file: StaticString = #filePath, line: UInt = #line) {
        assertNIfTIError(url, words, file: file, line: line) { try NIfTI.read(url) }
        if headerToo { assertNIfTIError(url, words, file: file, line: line) { try NIfTI.readHeader(url) } }
    }

    func testMissingEmptyAndShortFiles() throws {
        expectError(dir.appendingPathComponent("nope.nii"), ["cannot open"])
        expectError(try file("empty.nii", []), ["header", "shorter"])
        expectError(try file("tiny.nii", Array(try bytes("int16_scaled.nii").prefix(100))), ["header", "shorter"])
        expectError(try gzFile("tiny.nii.gz", Array(try bytes("int16_scaled.nii").prefix(200))), ["header", "shorter"])
    }

    func testTruncatedNii() throws {
        let b = try bytes("int16_scaled.nii")
        let url = try file("cut.nii", Array(b.prefix(b.count - 10)))
        expectError(url, ["data", "truncated", "420 bytes"], headerToo: false)
        XCTAssertNoThrow(try NIfTI.readHeader(url))
        // cut right after the header, before vox_offset
        expectError(try file("cut2.nii", Array(b.prefix(350))), ["truncated", "vox_offset"], headerToo: false)
    }

    func testTruncatedAndCorruptGzip() throws {
        let gz = try bytes("fourd_int16.nii.gz")
        // cut in the middle of the deflate stream
        let cut = try file("cut.nii.gz", Array(gz.prefix(gz.count / 2)))
        expectError(cut, ["truncated"], headerToo: false)
        // garbage in the deflate stream: zlib reports corruption (or the CRC check fails)
        var bad = gz
        for k in 60..<90 { bad[k] ^= 0xA5 }
        let corrupt = try file("corrupt.nii.gz", bad)
        assertNIfTIError(corrupt, []) { try NIfTI.read(corrupt) }
        do { _ = try NIfTI.read(corrupt) } catch let e as NIfTIError {
            XCTAssertTrue(["gzip", "truncated", "dim", "datatype"].contains { e.description.contains($0) }, e.description)
        }
        // a bad CRC in the trailer (data intact) is caught by the final check
        var crc = gz
        crc[crc.count - 6] ^= 0xFF
        expectError(try file("crc.nii.gz", crc), ["gzip"], headerToo: false)
        // a missing trailer only is tolerated (nibabel reads such files too)
        let noTrailer = try file("notrailer.nii.gz", Array(gz.prefix(gz.count - 8)))
        XCTAssertEqual(try NIfTI.read(noTrailer).frameCount, 3)
    }

    func testConcatenatedGzipMembersAndTrailingBytes() throws {
        let b = try bytes("int16_scaled.nii")
        let one = try gzFile("a.gz", Array(b.prefix(500)))
        let two = try gzFile("b.gz", Array(b.suffix(from: 500)))
        let joined = Array(try Data(contentsOf: one)) + Array(try Data(contentsOf: two))
        let want = try NIfTI.read(Fixtures.url("int16_scaled.nii")).volume.voxels
        XCTAssertEqual(try NIfTI.read(try file("multi.nii.gz", joined)).volume.voxels, want)
        let single = Array(try Data(contentsOf: try gzFile("c.gz", b)))
        XCTAssertEqual(try NIfTI.read(try file("padded.nii.gz", single + [0, 0, 0, 0])).volume.voxels, want)
        // a second member that is cut short
        let cut = Array(try Data(contentsOf: one)) + Array(try Data(contentsOf: two)).prefix(20)
        expectError(try file("multicut.nii.gz", cut), ["truncated"], headerToo: false)
    }

    /// The libdeflate fast path reads well-formed single-member files and yields exactly what the
    /// zlib stream yields; a trailer whose size (ISIZE) disagrees with the header is never trusted
    /// for an allocation: the fast path declines and zlib's length check reports the file.
    func testWholeFileInflateMatchesStreamingAndDistrustsTheTrailer() throws {
        let b = try bytes("int16_scaled.nii")
        let url = try gzFile("whole.nii.gz", b)
        let fast = try XCTUnwrap(NIfTIWholeGzip.inflate(url, expectedSize: b.count))
        var inflated = [UInt8](repeating: 0, count: b.count)
        XCTAssertEqual(try fast.read(into: &inflated, count: b.count + 10), b.count)
        XCTAssertEqual(inflated, b)
        XCTAssertEqual(try NIfTI.read(url).volume.voxels, try NIfTI.read(Fixtures.url("int16_scaled.nii")).volume.voxels)
        // The header implies a size the trailer contradicts: declined (both ways).
        XCTAssertNil(NIfTIWholeGzip.inflate(url, expectedSize: b.count + 4096))
        XCTAssertNil(NIfTIWholeGzip.inflate(url, expectedSize: b.count - 2 * NIfTIWholeGzip.maxSurplus))
        var lying = Array(try Data(contentsOf: url))
        put(&lying, lying.count - 4, UInt32(0xFFFF_FF00))       // ISIZE claims ~4 GiB
        let liar = try file("liar.nii.gz", lying)
        XCTAssertNil(NIfTIWholeGzip.inflate(liar, expectedSize: b.count))
        expectError(liar, ["gzip"], headerToo: false)
    }

    func testWrongSizeofHdrAndMagic() throws {
        var b = try bytes("int16_scaled.nii")
        put(&b, 0, Int32(349))
        expectError(try file("sizeof.nii", b), ["sizeof_hdr", "349"])
        b = try bytes("int16_scaled.nii")
        b[344] = UInt8(ascii: "x")
        expectError(try file("magic.nii", b), ["magic", "xpected"])
        // NIfTI-2 with its end-of-line bytes mangled (text-mode transfer)
        b = try bytes("nifti2_int32.nii")
        b[8] = 10
        expectError(try file("eol.nii", b), ["magic", "end-of-line"])
        // an Analyze-style header (no magic)
        b = try bytes("int16_scaled.nii")
        for k in 344..<348 { b[k] = 0 }
        expectError(try file("analyze.nii", b), ["magic"])
    }

    func testBadDims() throws {
        for (k, v, words) in [(0, Int16(0), ["dim[0] = 0"]), (0, 8, ["dim[0] = 8"]), (2, 0, ["dim[2] = 0"]), (3, -5, ["dim[3] = -5"])] {
            var b = try bytes("int16_scaled.nii")
            put(&b, 40 + 2 * k, v)
            expectError(try file("dim\(k)_\(v).nii", b), ["dim"] + words)
        }
    }

    func testDatatypeBitpixVoxOffset() throws {
        var b = try bytes("int16_scaled.nii")
        put(&b, 70, Int16(32))  // complex64: not supported
        expectError(try file("complex.nii", b), ["datatype", "32"])
        b = try bytes("int16_scaled.nii")
        put(&b, 70, Int16(1234))
        expectError(try file("unknown.nii", b), ["datatype", "1234"])
        b = try bytes("int16_scaled.nii")
        put(&b, 72, Int16(32))
        expectError(try file("bitpix.nii", b), ["bitpix", "int16"])
        b = try bytes("int16_scaled.nii")
        putF(&b, 108, 100)
        expectError(try file("offset.nii", b), ["vox_offset", "100"])
        b = try bytes("int16_scaled.nii")
        putF(&b, 108, .nan)
        expectError(try file("offsetnan.nii", b), ["vox_offset"])
    }

    func testDimsLargerThanTheData() throws {
        var b = try bytes("int16_scaled.nii")
        put(&b, 42, Int16(64)); put(&b, 44, Int16(64)); put(&b, 46, Int16(64))
        expectError(try file("big.nii", b), ["truncated", "524288 bytes"], headerToo: false)
        expectError(try gzFile("big.nii.gz", b), ["truncated"], headerToo: false)
        // below the 4 GiB cap but far more than a small gzip file can inflate to: refused before allocating
        b = try bytes("int16_scaled.nii")
        put(&b, 42, Int16(1000)); put(&b, 44, Int16(1000)); put(&b, 46, Int16(500))
        expectError(try gzFile("bomb.nii.gz", b), ["truncated", "at most"], headerToo: false)
        // 4D header over 3D data
        b = try bytes("int16_scaled.nii")
        put(&b, 40, Int16(4)); put(&b, 48, Int16(5))
        expectError(try gzFile("fake4d.nii.gz", b), ["truncated"], headerToo: false)
    }

    func testAbsurdDimsAreRefusedBeforeAllocating() throws {
        // NIfTI-1: 32767^3 int16 voxels -> far above the 4 GiB cap
        var b = try bytes("int16_scaled.nii")
        for k in 1...3 { put(&b, 40 + 2 * k, Int16(32767)) }
        expectError(try file("huge.nii", b), ["dim", "cap"], headerToo: false)
        expectError(try gzFile("huge.nii.gz", b), ["dim", "cap"], headerToo: false)
        // NIfTI-2: 2^31 per axis -> the voxel count overflows
        b = try bytes("nifti2_int32.nii")
        for k in 1...3 { put(&b, 16 + 8 * k, Int64(1) << 31) }
        expectError(try file("overflow.nii", b), ["dim", "overflows"], headerToo: false)
        // NIfTI-2: 2^31 x 1 x 1 (8 GiB of Float) -> above the cap
        b = try bytes("nifti2_int32.nii")
        put(&b, 24, Int64(1) << 31); put(&b, 32, Int64(1)); put(&b, 40, Int64(1))
        expectError(try file("long.nii", b), ["dim", "cap"], headerToo: false)
        // a configurable cap
        let url = Fixtures.url("int16_scaled.nii")
        assertNIfTIError(url, ["cap"]) { try NIfTI.read(url, maxDecodedBytes: 800) }
        XCTAssertNoThrow(try NIfTI.read(url, maxDecodedBytes: 7 * 6 * 5 * 4))
    }

    func testBadGeometryAndScaling() throws {
        // qform in use with b²+c²+d² > 1
        var b = try bytes("qform_qfac_neg.nii")
        putF(&b, 256, 0.9); putF(&b, 260, 0.9); putF(&b, 264, 0)
        expectError(try file("quat.nii", b), ["quatern", "unit quaternion"])
        // valid slope, infinite intercept (nibabel refuses too)
        b = try bytes("int16_scaled.nii")
        putF(&b, 116, .infinity)
        expectError(try file("inter.nii", b), ["scl_inter"])
        // NaN slope: data read unscaled
        b = try bytes("int16_scaled.nii")
        putF(&b, 112, .nan)
        let unscaled = try NIfTI.read(try file("nanslope.nii", b))
        XCTAssertNil(unscaled.header.scaling)
        let scaled = try NIfTI.read(Fixtures.url("int16_scaled.nii"))
        XCTAssertEqual(scaled.volume.voxels[5], unscaled.volume.voxels[5] * 0.5 - 10)
        // sform in use with a NaN entry
        b = try bytes("int16_scaled.nii")
        putF(&b, 284, .nan)
        expectError(try file("srow.nii", b), ["srow"])
    }

    /// Seeded random byte mutations of headers and gzip streams: every read succeeds or throws a
    /// NIfTIError; none crashes.
    func testRandomMutationsNeverCrash() throws {
        var rng = SeededGenerator(seed: 0xC0C0, stream: [])
        let sources = ["int16_scaled.nii", "nifti2_int32.nii", "qform_qfac_neg.nii", "fourd_int16.nii.gz", "nifti2_be_int16.nii.gz"]
        var failures = 0, successes = 0
        for round in 0..<400 {
            let name = sources[round % sources.count]
            var b = try bytes(name)
            let gz = name.hasSuffix(".gz")
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                // headers: mutate within the header; gzip: anywhere
                let limit = gz ? b.count : (name.contains("nifti2") ? 540 : 348)
                let k = Int(rng.next() % UInt64(limit))
                b[k] = UInt8(truncatingIfNeeded: rng.next())
            }
            let url = try file("fuzz\(round)\(gz ? ".nii.gz" : ".nii")", b)
            do { _ = try NIfTI.read(url); successes += 1 } catch is NIfTIError { failures += 1 }
            try FileManager.default.removeItem(at: url)
        }
        XCTAssertEqual(failures + successes, 400)
        XCTAssertGreaterThan(failures, 0)
    }

    func testPairWithoutImage() throws {
        let url = dir.appendingPathComponent("lonely.hdr")
        try FileManager.default.copyItem(at: Fixtures.url("pair.hdr"), to: url)
        assertNIfTIError(url, ["magic", "missing"]) { try NIfTI.read(url) }
        XCTAssertNoThrow(try NIfTI.readHeader(url))
    }
}
