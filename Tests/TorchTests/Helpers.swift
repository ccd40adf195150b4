import XCTest
@testable import Torch

func assertClose(_ a: [Float], _ b: [Float], tol: Float = 1e-5, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(message)", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= tol * max(1, abs(y))) {
        XCTFail("element \(i): \(x) vs \(y) \(message)", file: file, line: line)
        return
    }
}

func values(_ t: Tensor) throws -> [Float] { try t.toArray(Float.self) }
