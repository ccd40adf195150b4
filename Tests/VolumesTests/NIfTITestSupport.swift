import Foundation
import XCTest
@testable import Volumes

/// What scripts/fixtures/make_nifti_fixtures.py recorded from nibabel for one fixture.
struct ExpectedFixture: Decodable {
    struct Sample: Decodable { var ijk: [Int]; var t: Int; var value: Double?; var nonfinite: String? }
    var file: String
    var shape: [Int]
    var frames: Int
    var datatype: String
    var version: Int
    var byte_order: String
    var qform_code: Int
    var sform_code: Int
    var affine: [[Double]]
    var zooms: [Double]
    var pixdim: [Double]
    var scl_slope: Double?
    var scl_inter: Double?
    var samples: [Sample]
    var sum: Double
    var min: Double
    var max: Double
    var mean: Double
    var non_finite: Int
    var frame_sums: [Double]
}

struct ExpectedFile: Decodable {
    var nibabel: String
    var fixtures: [ExpectedFixture]
}

enum Fixtures {
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func expected() throws -> ExpectedFile {
        let data = try Data(contentsOf: url("expected.json"))
        return try JSONDecoder().decode(ExpectedFile.self, from: data)
    }

    static func expected(_ name: String) throws -> ExpectedFixture {
        let all = try expected().fixtures
        guard let e = all.first(where: { $0.file == name }) else { throw XCTSkip("no fixture \(name)") }
        return e
    }
}

/// A fresh temporary directory, removed at the end of the test.
func makeTempDir(_ testCase: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("concord-nifti-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

func assertAffine(_ a: Affine, _ rows: [[Double]], accuracy: Double = 1e-5, _ message: String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    for r in 0..<4 {
        for c in 0..<4 {
            XCTAssertEqual(a[r, c], rows[r][c], accuracy: accuracy, "\(message) affine[\(r), \(c)]", file: file, line: line)
        }
    }
}

func assertAffine(_ a: Affine, _ b: Affine, accuracy: Double = 1e-5, _ message: String = "",
                  file: StaticString = #filePath, line: UInt = #line) {
    assertAffine(a, b.matrixRows, accuracy: accuracy, message, file: file, line: line)
}

/// Asserts that `body` throws a NIfTIError whose description names the file and contains every
/// one of `contains` (case-insensitive).
func assertNIfTIError<T>(_ url: URL, _ contains: [String], file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected a NIfTIError for \(url.lastPathComponent)", file: file, line: line)
    } catch let e as NIfTIError {
        let d = e.description
        XCTAssertTrue(d.contains(url.lastPathComponent), "description does not name the file: \(d)", file: file, line: line)
        for s in contains {
            XCTAssertTrue(d.lowercased().contains(s.lowercased()), "description lacks \"\(s)\": \(d)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a NIfTIError, got \(error)", file: file, line: line)
    }
}

/// Builds a test volume with a deterministic pattern.
func patternVolume(_ shape: [Int], affine: Affine? = nil, _ f: (Int, Int, Int) -> Float) -> Volume {
    var v = [Float](repeating: 0, count: shape.reduce(1, *))
    for k in 0..<shape[2] { for j in 0..<shape[1] { for i in 0..<shape[0] {
        v[i + shape[0] * (j + shape[1] * k)] = f(i, j, k)
    } } }
    let aff = affine ?? Affine.scaling([1, 1, 1])
    return Volume(shape: shape, voxels: v, spacing: aff.spacing, affine: aff)
}

/// A rotation about z by `deg` degrees times diag(zooms), with an offset.
func obliqueAffine(deg: Double, zooms: [Double], offset: [Double], flipK: Bool = false) -> Affine {
    let t = deg * .pi / 180
    let c = cos(t), s = sin(t)
    let r = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    var m = [Double](repeating: 0, count: 16)
    for i in 0..<3 {
        for j in 0..<3 { m[i * 4 + j] = r[i][j] * zooms[j] * (flipK && j == 2 ? -1 : 1) }
        m[i * 4 + 3] = offset[i]
    }
    m[15] = 1
    return Affine(rowMajor: m)
}
