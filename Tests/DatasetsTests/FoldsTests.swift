import Datasets
import XCTest

final class FoldsTests: XCTestCase {
    func testFoldsAreDisjointAndCovering() throws {
        let names = (0..<11).map { String(format: "case_%03d", $0) }
        let folds = try CrossValidationFolds.make(cases: names, count: 5)
        XCTAssertEqual(folds.count, 5)
        XCTAssertEqual(folds.folds.flatMap(\.val).sorted(), names)
        XCTAssertEqual(Set(folds.folds.flatMap(\.val)).count, 11)
        XCTAssertEqual(folds.folds.map(\.val.count).sorted(), [2, 2, 2, 2, 3])
        for f in folds.folds {
            XCTAssertTrue(Set(f.train).isDisjoint(with: f.val))
            XCTAssertEqual(Set(f.train).union(f.val), Set(names))
        }
        XCTAssertEqual(folds.problems(cases: names), [])
        XCTAssertEqual(try CrossValidationFolds.make(cases: names.reversed(), count: 5), folds, "independent of input order")
    }

    func testFoldsAreStratifiedByModality() throws {
        let ct = (0..<6).map { "ct_\($0)" }, mr = (0..<4).map { "mr_\($0)" }
        var strata: [String: String] = [:]
        for c in ct { strata[c] = "CT" }
        for c in mr { strata[c] = "MR" }
        let folds = try CrossValidationFolds.make(cases: ct + mr, count: 2, strata: strata)
        for f in folds.folds {
            XCTAssertEqual(f.val.filter { $0.hasPrefix("ct") }.count, 3)
            XCTAssertEqual(f.val.filter { $0.hasPrefix("mr") }.count, 2)
        }
    }

    func testBadFoldCountsAreErrors() {
        XCTAssertThrowsError(try CrossValidationFolds.make(cases: ["a", "b"], count: 5))
        XCTAssertThrowsError(try CrossValidationFolds.make(cases: ["a", "b"], count: 1))
    }
}
