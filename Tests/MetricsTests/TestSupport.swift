import Foundation
import XCTest
@testable import Metrics

/// A deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds a mask of shape (nx, ny, nz), x fastest, from a predicate on (i, j, k).
func makeMask(_ nx: Int, _ ny: Int, _ nz: Int, _ inside: (Int, Int, Int) -> Bool) -> [Bool] {
    var mask = [Bool](repeating: false, count: nx * ny * nz)
    for k in 0..<nz { for j in 0..<ny { for i in 0..<nx where inside(i, j, k) { mask[i + nx * (j + ny * k)] = true } } }
    return mask
}

func assertClose(_ a: Double?, _ b: Double?, accuracy: Double, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    switch (a, b) {
    case (nil, nil): return
    case let (x?, y?): XCTAssertEqual(x, y, accuracy: accuracy, message, file: file, line: line)
    default: XCTFail("\(String(describing: a)) != \(String(describing: b)) \(message)", file: file, line: line)
    }
}

func assertClose(_ a: BinaryMetrics, _ b: BinaryMetrics, accuracy: Double, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    assertClose(a.dice, b.dice, accuracy: accuracy, "dice \(message)", file: file, line: line)
    assertClose(a.jaccard, b.jaccard, accuracy: accuracy, "jaccard \(message)", file: file, line: line)
    assertClose(a.hd95, b.hd95, accuracy: accuracy, "hd95 \(message)", file: file, line: line)
    assertClose(a.hd, b.hd, accuracy: accuracy, "hd \(message)", file: file, line: line)
    assertClose(a.asd, b.asd, accuracy: accuracy, "asd \(message)", file: file, line: line)
    assertClose(a.assd, b.assd, accuracy: accuracy, "assd \(message)", file: file, line: line)
    XCTAssertEqual(a.predictionEmpty, b.predictionEmpty, "predictionEmpty \(message)", file: file, line: line)
    XCTAssertEqual(a.referenceEmpty, b.referenceEmpty, "referenceEmpty \(message)", file: file, line: line)
}
