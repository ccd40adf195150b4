import Foundation
import XCTest
@testable import Metrics

/// Compares with values computed by medpy (scripts/fixtures/make_metric_fixtures.py).
final class MedpyFixtureTests: XCTestCase {
    struct Expected: Decodable {
        var dice, jaccard: Double
        var hd95, hd, asd, assd: Double?
    }
    struct BinaryCase: Decodable {
        var name: String
        var shape: [Int]
        var spacing: [Double]
        var prediction, reference: String
        var expected: Expected
    }
    struct LabelCase: Decodable {
        var name: String
        var shape: [Int]
        var spacing: [Double]
        var labels: [Int]
        var prediction, reference: String
        var expected: [String: Expected]
    }
    struct Fixtures: Decodable {
        var binary: [BinaryCase]
        var labels: [LabelCase]
    }

    func loadFixtures() throws -> Fixtures {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "metric_fixtures", withExtension: "json",
                                                  subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: url))
    }

    /// Little-endian bit order packed mask (np.packbits(..., bitorder="little")).
    func unpack(_ base64: String, count: Int) throws -> [Bool] {
        let bytes = [UInt8](try XCTUnwrap(Data(base64Encoded: base64)))
        XCTAssertEqual(bytes.count, (count + 7) / 8)
        return (0..<count).map { bytes[$0 >> 3] >> UInt8($0 & 7) & 1 == 1 }
    }

    func check(_ m: BinaryMetrics, _ e: Expected, _ name: String) {
        XCTAssertEqual(m.dice, e.dice, accuracy: 1e-6, "\(name) dice")
        XCTAssertEqual(m.jaccard, e.jaccard, accuracy: 1e-6, "\(name) jaccard")
        assertClose(m.hd95, e.hd95, accuracy: 1e-6, "\(name) hd95")
        assertClose(m.hd, e.hd, accuracy: 1e-6, "\(name) hd")
        assertClose(m.asd, e.asd, accuracy: 1e-6, "\(name) asd")
        assertClose(m.assd, e.assd, accuracy: 1e-6, "\(name) assd")
    }

    func testBinaryCasesMatchMedpy() throws {
        let fixtures = try loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.binary.count, 8)
        for c in fixtures.binary {
            let count = c.shape.reduce(1, *)
            let pred = try unpack(c.prediction, count: count), ref = try unpack(c.reference, count: count)
            let m = SegmentationMetrics.binary(prediction: pred, reference: ref, shape: c.shape, spacing: c.spacing)
            check(m, c.expected, c.name)
            // The byte-mask entry point agrees exactly.
            let m8 = SegmentationMetrics.binary(prediction: pred.map { $0 ? UInt8(1) : 0 },
                                                reference: ref.map { $0 ? UInt8(255) : 0 },
                                                shape: c.shape, spacing: c.spacing)
            XCTAssertEqual(m, m8, c.name)
        }
    }

    func testLabelMapMatchesMedpy() throws {
        for c in try loadFixtures().labels {
            let pred = [UInt8](try XCTUnwrap(Data(base64Encoded: c.prediction)))
            let ref = [UInt8](try XCTUnwrap(Data(base64Encoded: c.reference)))
            let m = SegmentationMetrics.perClass(prediction: pred, reference: ref, shape: c.shape,
                                                 spacing: c.spacing, labels: c.labels)
            XCTAssertEqual(Set(m.keys), Set(c.labels))
            for label in c.labels { check(m[label]!, try XCTUnwrap(c.expected[String(label)]), "\(c.name) label \(label)") }
        }
    }
}
