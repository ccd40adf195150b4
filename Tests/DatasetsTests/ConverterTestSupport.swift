import Foundation
import XCTest
@testable import Datasets
import Volumes

/// Helpers shared by the converter tests: tiny volumes, source folders, assertions.
enum ConverterFixtures {
    /// A rotation about z by `deg` degrees, then about x by `tilt` degrees, times diag(zooms), plus an offset.
    static func affine(deg: Double, tilt: Double = 0, zooms: [Double], offset: [Double]) -> Affine {
        let a = deg * .pi / 180, b = tilt * .pi / 180
        let rz = [[cos(a), -sin(a), 0], [sin(a), cos(a), 0], [0, 0, 1.0]]
        let rx = [[1, 0, 0], [0, cos(b), -sin(b)], [0, sin(b), cos(b)]]
        var m = [Double](repeating: 0, count: 16)
        for i in 0..<3 {
            for j in 0..<3 {
                var s = 0.0
                for k in 0..<3 { s += rz[i][k] * rx[k][j] }
                m[i * 4 + j] = s * zooms[j]
            }
            m[i * 4 + 3] = offset[i]
        }
        m[15] = 1
        return Affine(rowMajor: m)
    }

    static func volume(_ shape: [Int], affine: Affine, _ f: (Int, Int, Int) -> Float) -> Volume {
        var v = [Float](repeating: 0, count: shape.reduce(1, *))
        for k in 0..<shape[2] { for j in 0..<shape[1] { for i in 0..<shape[0] {
            v[i + shape[0] * (j + shape[1] * k)] = f(i, j, k)
        } } }
        return Volume(shape: shape, voxels: v, spacing: affine.spacing, affine: affine)
    }

    /// A label map cycling through `values` in file order (each occurs when there are enough voxels).
    static func labels(_ shape: [Int], affine: Affine, values: [Float]) -> Volume {
        volume(shape, affine: affine) { i, j, k in values[(i + shape[0] * (j + shape[1] * k)) % values.count] }
    }

    static func write(_ v: Volume, _ url: URL, datatype: NIfTIDataType = .float32) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try NIfTI.write(v, to: url, datatype: datatype)
    }

    /// A macOS resource fork: AppleDouble magic and junk, not a NIfTI file.
    static func writeResourceFork(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data([0x00, 0x05, 0x16, 0x07, 0x00, 0x02, 0x00, 0x00] + Array(repeating: 0x20, count: 120)).write(to: url)
    }

    static func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func files(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }
}

func assertAffinesEqual(_ a: Affine, _ b: Affine, accuracy: Double = 1e-4, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    for r in 0..<4 { for c in 0..<4 {
        XCTAssertEqual(a[r, c], b[r, c], accuracy: accuracy, "\(message) affine[\(r), \(c)]", file: file, line: line)
    } }
}

/// Asserts that `body` throws a ConversionError or ConversionFailure whose text holds every string.
func assertConversionFails<T>(_ contains: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected the conversion to fail (\(contains))", file: file, line: line)
    } catch let e as ConversionError {
        for s in contains { XCTAssertTrue(e.description.contains(s), "\"\(s)\" not in: \(e.description)", file: file, line: line) }
    } catch let e as ConversionFailure {
        for s in contains { XCTAssertTrue(e.description.contains(s), "\"\(s)\" not in: \(e.description)", file: file, line: line) }
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}

/// Every validator finding that is an error (warnings allowed).
func validationErrors(_ root: URL) -> [DatasetProblem] {
    DatasetValidator.validate(root: root, threads: 1).filter { $0.severity == .error }
}

/// A minimal DICOM Part 10 writer for tests: explicit VR little endian, one slice per file.
struct DICOMWriter {
    var bytes: [UInt8] = []

    mutating func u16(_ v: Int) { bytes += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    mutating func u32(_ v: Int) { bytes += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8((v >> 24) & 0xFF)] }

    /// One explicit-VR element; strings are padded to an even length (UI with NUL, others with space).
    mutating func element(_ group: Int, _ element: Int, _ vr: String, _ value: [UInt8]) {
        var v = value
        if v.count % 2 == 1 { v.append(vr == "UI" || vr == "OB" ? 0 : 0x20) }
        u16(group); u16(element)
        bytes += Array(vr.utf8)
        if ["OB", "OW", "SQ", "UN", "UT", "OF"].contains(vr) {
            u16(0); u32(v.count)
        } else {
            u16(v.count)
        }
        bytes += v
    }

    mutating func string(_ group: Int, _ el: Int, _ vr: String, _ s: String) { element(group, el, vr, Array(s.utf8)) }
    mutating func us(_ group: Int, _ el: Int, _ v: Int) { element(group, el, "US", [UInt8(v & 0xFF), UInt8(v >> 8)]) }

    /// A sequence of undefined length holding one item of undefined length with one element
    /// (what the parser must skip).
    mutating func undefinedLengthSequence(_ group: Int, _ el: Int) {
        u16(group); u16(el); bytes += Array("SQ".utf8); u16(0); u32(0xFFFF_FFFF)
        u16(0xFFFE); u16(0xE000); u32(0xFFFF_FFFF)
        string(0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.2")
        u16(0xFFFE); u16(0xE00D); u32(0)
        u16(0xFFFE); u16(0xE0DD); u32(0)
    }

    static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"

    /// A CT slice: int16 pixels (row-major: `pixels[row * columns + column]`), rescale slope 1 and
    /// intercept `intercept`.
    static func ctSlice(seriesUID: String, seriesNumber: Int, instance: Int, modality: String = "CT",
                        position: [Double], orientation: [Double], pixelSpacing: [Double],
                        rows: Int, columns: Int, pixels: [Int16], intercept: Int = -1024) -> Data {
        func ds(_ xs: [Double]) -> String { xs.map { String(format: "%.6g", $0) }.joined(separator: "\\") }
        let sop = "1.2.826.0.1.3680043.9.7777.\(seriesNumber).\(instance)"
        var meta = DICOMWriter()
        meta.element(0x0002, 0x0001, "OB", [0, 1])
        meta.string(0x0002, 0x0002, "UI", ctImageStorage)
        meta.string(0x0002, 0x0003, "UI", sop)
        meta.string(0x0002, 0x0010, "UI", DICOMHeader.explicitLittleEndian)
        meta.string(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.9.7777.1")
        var w = DICOMWriter()
        w.bytes = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8)
        w.element(0x0002, 0x0000, "UL", [UInt8(meta.bytes.count & 0xFF), UInt8((meta.bytes.count >> 8) & 0xFF), 0, 0])
        w.bytes += meta.bytes
        w.string(0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL")
        w.string(0x0008, 0x0016, "UI", ctImageStorage)
        w.string(0x0008, 0x0018, "UI", sop)
        w.string(0x0008, 0x0020, "DA", "20240101")
        w.string(0x0008, 0x0060, "CS", modality)
        w.string(0x0008, 0x103E, "LO", "synthetic \(seriesNumber)")
        w.undefinedLengthSequence(0x0008, 0x1140)
        w.string(0x0010, 0x0010, "PN", "Test^Phantom")
        w.string(0x0010, 0x0020, "LO", "P\(seriesNumber)")
        w.string(0x0018, 0x0050, "DS", "2.5")
        w.string(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.9.7777.100")
        w.string(0x0020, 0x000E, "UI", seriesUID)
        w.string(0x0020, 0x0011, "IS", String(seriesNumber))
        w.string(0x0020, 0x0013, "IS", String(instance))
        w.string(0x0020, 0x0032, "DS", ds(position))
        w.string(0x0020, 0x0037, "DS", ds(orientation))
        w.us(0x0028, 0x0002, 1)
        w.string(0x0028, 0x0004, "CS", "MONOCHROME2")
        w.us(0x0028, 0x0010, rows)
        w.us(0x0028, 0x0011, columns)
        w.string(0x0028, 0x0030, "DS", ds(pixelSpacing))
        w.us(0x0028, 0x0100, 16)
        w.us(0x0028, 0x0101, 16)
        w.us(0x0028, 0x0102, 15)
        w.us(0x0028, 0x0103, 1)
        w.string(0x0028, 0x1052, "DS", String(intercept))
        w.string(0x0028, 0x1053, "DS", "1")
        var pixelBytes: [UInt8] = []
        for p in pixels { let u = UInt16(bitPattern: p); pixelBytes += [UInt8(u & 0xFF), UInt8(u >> 8)] }
        w.element(0x7FE0, 0x0010, "OW", pixelBytes)
        return Data(w.bytes)
    }
}
