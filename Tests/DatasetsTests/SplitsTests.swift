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

    /// Unpaired datasets: the labelled ratio applies within each modality. 10 CT + 20 MR cases at
    /// 10 %: CT -> test round(0.2*10)=2, val 1, train 7, labelled round(0.7)=1; MR -> test 4, val 2,
    /// train 14, labelled round(1.4)=1. With MR at 50 %: MR labelled round(7.0)=7.
    func testStratifiedSplitsLabelEachModality() throws {
        let ct = (0..<10).map { "ct_\($0)" }, mr = (0..<20).map { "mr_\($0)" }
        var strata: [String: String] = [:]
        for c in ct { strata[c] = "CT" }
        for c in mr { strata[c] = "MR" }
        let s = try Splits.make(labeledCases: ct + mr, unlabeledCases: extra, seed: 4, labeledRatio: 0.1, strata: strata)
        func count(_ list: [String], _ prefix: String) -> Int { list.filter { $0.hasPrefix(prefix) }.count }
        XCTAssertEqual([count(s.test, "ct_"), count(s.val, "ct_"), count(s.train, "ct_"), count(s.labeled, "ct_")], [2, 1, 7, 1])
        XCTAssertEqual([count(s.test, "mr_"), count(s.val, "mr_"), count(s.train, "mr_"), count(s.labeled, "mr_")], [4, 2, 14, 1])
        XCTAssertEqual(s.unlabeled.count, 6 + 13 + 20)
        XCTAssertEqual(s.labeledRatios, ["CT": 0.1, "MR": 0.1])
        XCTAssertEqual(s.problems(), [])
        let more = try Splits.make(labeledCases: ct + mr, seed: 4, labeledRatio: 0.1, strata: strata, labeledRatios: ["MR": 0.5])
        XCTAssertEqual(count(more.labeled, "mr_"), 7)
        XCTAssertEqual(more.test, s.test)                       // evaluation cases do not depend on ratios
        XCTAssertTrue(Set(s.labeled).isSubset(of: more.labeled))
        XCTAssertEqual(more.labeledRatios, ["CT": 0.1, "MR": 0.5])
        // Reproducible, and a ratio for a group with no case is an error naming it.
        XCTAssertEqual(try Splits.make(labeledCases: (mr + ct).reversed(), unlabeledCases: extra, seed: 4, labeledRatio: 0.1, strata: strata), s)
        XCTAssertThrowsError(try Splits.make(labeledCases: ct + mr, seed: 4, labeledRatio: 0.1, strata: strata, labeledRatios: ["PET": 0.2])) {
            XCTAssertTrue("\($0)".contains("'PET'"), "\($0)")
        }
        // Without strata the splits are the unstratified ones.
        XCTAssertEqual(try Splits.make(labeledCases: names, seed: 1, labeledRatio: 0.1, strata: [:]),
                       try Splits.make(labeledCases: names, seed: 1, labeledRatio: 0.1))
    }
}
