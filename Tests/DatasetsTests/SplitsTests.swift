import Foundation
import XCTest
@testable import Datasets

final class SplitsTests: XCTestCase {
    let names = (0..<50).map { String(format: "case_%03d", $0) }
    let extra = (0..<20).map { String(format: "unl_%03d", $0) }

    func testCountsAndDisjointness() throws {
        let s = try Splits.make(labeledCases: names, unlabeledCases: extra, seed: 1, labeledRatio: 0.1)
        XCTAssertEqual(s.test.count, 10)          // 0.2 * 50
        XCTAssertEqual(s.val.count, 5)            // 0.1 * 50
        XCTAssertEqual(s.train.count, 35)
        XCTAssertEqual(s.labeled.count, 4)        // round(0.1 * 35)
        XCTAssertEqual(s.unlabeled.count, 31 + 20)
        XCTAssertEqual(Set(s.train + s.val + s.test), Set(names))
        XCTAssertTrue(Set(s.train).isDisjoint(with: s.val))
        XCTAssertTrue(Set(s.train).isDisjoint(with: s.test))
        XCTAssertTrue(Set(s.val).isDisjoint(with: s.test))
        XCTAssertTrue(Set(s.labeled).isSubset(of: s.train))
        XCTAssertTrue(Set(s.labeled).isDisjoint(with: s.unlabeled))
        XCTAssertEqual(Set(s.labeled).union(s.unlabeled), Set(s.train).union(extra))
        XCTAssertEqual(s.problems(), [])
        XCTAssertEqual(s.train, s.train.sorted())
    }

    func testDeterministicPerSeedAndIndependentOfInputOrder() throws {
        let a = try Splits.make(labeledCases: names, unlabeledCases: extra, seed: 7, labeledRatio: 0.2)
        let b = try Splits.make(labeledCases: names.reversed(), unlabeledCases: extra.shuffled(), seed: 7, labeledRatio: 0.2)
        XCTAssertEqual(a, b)
        let c = try Splits.make(labeledCases: names, unlabeledCases: extra, seed: 8, labeledRatio: 0.2)
        XCTAssertNotEqual(a.test, c.test)
    }

    func testLargerRatiosLabelSupersetsAndKeepEvaluationFixed() throws {
        let small = try Splits.make(labeledCases: names, seed: 3, labeledRatio: 0.1)
        let large = try Splits.make(labeledCases: names, seed: 3, labeledRatio: 0.5)
        XCTAssertEqual(small.test, large.test)
        XCTAssertEqual(small.val, large.val)
        XCTAssertTrue(Set(small.labeled).isSubset(of: large.labeled))
        XCTAssertEqual(large.labeled.count, 18)   // round(0.5 * 35) = 17.5 -> 18
    }

    func testSmallDatasetsKeepAtLeastOneLabelledTrainingCase() throws {
        let one = try Splits.make(labeledCases: ["a"], seed: 1, labeledRatio: 0.1)
        XCTAssertEqual(one.train, ["a"]); XCTAssertEqual(one.labeled, ["a"]); XCTAssertEqual(one.val, []); XCTAssertEqual(one.test, [])
        let three = try Splits.make(labeledCases: ["a", "b", "c"], seed: 1, valFraction: 0.4, testFraction: 0.5, labeledRatio: 0.01)
        XCTAssertGreaterThanOrEqual(three.train.count, 1)
        XCTAssertEqual(three.labeled.count, 1)
        XCTAssertEqual(three.train.count + three.val.count + three.test.count, 3)
        XCTAssertThrowsError(try Splits.make(labeledCases: [], seed: 1, labeledRatio: 0.1))
        XCTAssertThrowsError(try Splits.make(labeledCases: names, seed: 1, labeledRatio: 0))
        XCTAssertThrowsError(try Splits.make(labeledCases: names, seed: 1, valFraction: 0.5, testFraction: 0.5, labeledRatio: 0.1))
        XCTAssertThrowsError(try Splits.make(labeledCases: ["a", "b"], unlabeledCases: ["b"], seed: 1, labeledRatio: 1))
    }

    func testSaveLoadRoundTripIsAtomicAndChecked() throws {
        let dir = try TempDir()
        let s = try Splits.make(labeledCases: names, unlabeledCases: extra, seed: UInt64.max - 12345, labeledRatio: 0.1)
        try s.save(to: dir.url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.url.path), ["splits.json"])
        let back = try Splits.load(from: dir.url)
        XCTAssertEqual(back, s)
        XCTAssertEqual(back.seed, UInt64.max - 12345)
        // Overwriting replaces the file in one step.
        let t = try Splits.make(labeledCases: names, seed: 2, labeledRatio: 0.3)
        try t.save(to: dir.url.appendingPathComponent("splits.json"))
        XCTAssertEqual(try Splits.load(from: dir.url), t)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.url.path), ["splits.json"])

        // A hand-edited file with an overlap is refused, naming the file and the case.
        var broken = s
        broken.val.append(broken.train[0])
        let enc = JSONEncoder()
        try enc.encode(broken).write(to: dir.url.appendingPathComponent("splits.json"))
        XCTAssertThrowsError(try Splits.load(from: dir.url)) { e in
            XCTAssertTrue("\(e)".contains("splits.json"))
            XCTAssertTrue("\(e)".contains(broken.train[0]))
        }
    }
}
