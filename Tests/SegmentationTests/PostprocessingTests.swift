import Foundation
import XCTest
@testable import Segmentation

/// Largest-connected-component postprocessing on hand-made masks and the cross-validated decision
/// rule on hand-made Dice numbers.
final class PostprocessingTests: XCTestCase {
    let shape = [8, 6, 5]
    func index(_ x: Int, _ y: Int, _ z: Int) -> Int { (z * shape[1] + y) * shape[0] + x }

    /// A label map with the given voxels set to the given classes.
    func labels(_ voxels: [(Int, Int, Int, Int32)]) -> [Int32] {
        var out = [Int32](repeating: 0, count: shape.reduce(1, *))
        for (x, y, z, c) in voxels { out[index(x, y, z)] = c }
        return out
    }

    func testComponentsTouchingByAFaceAnEdgeOrACornerAreOne() {
        // A 2x2x2 cube, one voxel touching it by a corner, one by an edge, and one apart.
        var mask = [Bool](repeating: false, count: shape.reduce(1, *))
        for x in 0..<2 { for y in 0..<2 { for z in 0..<2 { mask[index(x, y, z)] = true } } }
        mask[index(2, 2, 2)] = true   // corner of (1, 1, 1)
        mask[index(2, 2, 0)] = true   // edge of (1, 1, 0)
        mask[index(6, 4, 4)] = true   // apart
        let (componentLabels, sizes) = ConnectedComponents.label(mask, shape: shape)
        XCTAssertEqual(sizes, [10, 1])
        XCTAssertEqual(componentLabels[index(2, 2, 2)], componentLabels[index(0, 0, 0)])
        XCTAssertEqual(componentLabels[index(2, 2, 0)], componentLabels[index(0, 0, 0)])
        XCTAssertEqual(componentLabels[index(6, 4, 4)], 1)
        XCTAssertEqual(componentLabels[index(5, 5, 0)], -1)
        let largest = ConnectedComponents.largest(mask, shape: shape)
        XCTAssertEqual(largest.filter { $0 }.count, 10)
        XCTAssertFalse(largest[index(6, 4, 4)])
        XCTAssertEqual(ConnectedComponents.largest([Bool](repeating: false, count: mask.count), shape: shape).filter { $0 }.count, 0)
    }

    func testPerClassAndWholeForegroundLargestComponent() {
        // Class 1: a blob of 3 voxels and a blob of 2. Class 2: a blob of 4 touching class 1's
        // small blob by a corner, and a single voxel apart from everything.
        let map = labels([(0, 0, 0, 1), (1, 0, 0, 1), (2, 0, 0, 1),     // class 1, large
                          (5, 3, 0, 1), (6, 3, 0, 1),                   // class 1, small
                          (7, 4, 1, 2), (7, 5, 1, 2), (7, 4, 2, 2), (7, 5, 2, 2),   // class 2, corner of (6, 3, 0)
                          (0, 5, 4, 2)])                                // class 2, alone
        // Per class 1 only: class 1's small blob goes, class 2 is untouched.
        let perClass1 = Postprocessing(classes: [1]).apply(map, shape: shape)
        XCTAssertEqual(perClass1[index(5, 3, 0)], 0)
        XCTAssertEqual(perClass1[index(6, 3, 0)], 0)
        XCTAssertEqual(perClass1[index(0, 0, 0)], 1)
        XCTAssertEqual(perClass1[index(0, 5, 4)], 2)
        XCTAssertEqual(perClass1.filter { $0 != 0 }.count, 3 + 5)
        // Per class 2 only: the lone class-2 voxel goes.
        let perClass2 = Postprocessing(classes: [2]).apply(map, shape: shape)
        XCTAssertEqual(perClass2[index(0, 5, 4)], 0)
        XCTAssertEqual(perClass2.filter { $0 != 0 }.count, 5 + 4)
        // Whole foreground: class 1's small blob and class 2's four voxels form one component of 6
        // (through the corner), larger than the 3-voxel blob, which goes with the lone voxel.
        let foreground = Postprocessing(wholeForeground: true).apply(map, shape: shape)
        XCTAssertEqual(foreground.filter { $0 != 0 }.count, 6)
        XCTAssertEqual(foreground[index(0, 0, 0)], 0)
        XCTAssertEqual(foreground[index(6, 3, 0)], 1)
        XCTAssertEqual(foreground[index(7, 5, 2)], 2)
        XCTAssertEqual(foreground[index(0, 5, 4)], 0)
        // Foreground, then class 1: only the 2-voxel class-1 blob is left of class 1, and it stays.
        let both = Postprocessing(wholeForeground: true, classes: [1, 2]).apply(map, shape: shape)
        XCTAssertEqual(both, foreground)
    }

    func testClassDice() {
        let truth = labels([(0, 0, 0, 1), (1, 0, 0, 1), (2, 0, 0, 2)])
        let prediction = labels([(0, 0, 0, 1), (3, 0, 0, 1), (2, 0, 0, 2)])
        XCTAssertEqual(classDice(prediction, truth, label: 1), 2.0 * 1 / 4)
        XCTAssertEqual(classDice(prediction, truth, label: 2), 1)
        XCTAssertEqual(classDice(prediction, truth, label: 3), 1)   // absent from both
    }

    /// The rule on made-up numbers: the foreground step is kept only when it raises the mean over
    /// classes; a class step only when it raises that class's Dice over the decision so far.
    func testDecisionRuleOnHandMadeDice() {
        func table(_ p: Postprocessing) -> [Int: Double] {
            switch (p.wholeForeground, p.classes) {
            case (false, []): return [1: 0.80, 2: 0.60]
            case (true, []): return [1: 0.85, 2: 0.58]      // mean 0.715 > 0.70: kept
            case (true, [1]): return [1: 0.85, 2: 0.58]     // class 1 unchanged (a tie): not kept
            case (true, [2]): return [1: 0.85, 2: 0.61]     // class 2 up: kept
            default: XCTFail("unexpected candidate \(p)"); return [:]
            }
        }
        let (chosen, trials) = PostprocessingDecision.choose(classes: [1, 2], meanDice: table)
        XCTAssertEqual(chosen, Postprocessing(wholeForeground: true, classes: [2]))
        XCTAssertEqual(trials.map(\.kept), [true, false, true])
        XCTAssertEqual(trials[2].before, ["1": 0.85, "2": 0.58])

        // The foreground step lowering the mean (one class up, the other down more) is refused,
        // and class steps are then tried on the unprocessed masks.
        func worse(_ p: Postprocessing) -> [Int: Double] {
            switch (p.wholeForeground, p.classes) {
            case (false, []): return [1: 0.80, 2: 0.60]
            case (true, []): return [1: 0.90, 2: 0.40]
            case (false, [1]): return [1: 0.79, 2: 0.60]
            case (false, [2]): return [1: 0.80, 2: 0.65]
            default: XCTFail("unexpected candidate \(p)"); return [:]
            }
        }
        let (second, secondTrials) = PostprocessingDecision.choose(classes: [1, 2], meanDice: worse)
        XCTAssertEqual(second, Postprocessing(classes: [2]))
        XCTAssertEqual(secondTrials.map(\.kept), [false, false, true])
    }

    /// `decide` on hand-made cases: a stray false-positive blob of class 1 in both cases makes the
    /// class-1 step (and the foreground step) worth keeping.
    func testDecideOnHandMadeCases() {
        let truth = labels([(0, 0, 0, 1), (1, 0, 0, 1), (1, 1, 0, 1), (5, 4, 3, 2)])
        let prediction = labels([(0, 0, 0, 1), (1, 0, 0, 1), (1, 1, 0, 1), (6, 5, 4, 1), (5, 4, 3, 2)])
        let cases = (0..<2).map { k in
            PostprocessingDecision.ValidationCase(run: "fold" + String(k), fold: k, name: "c" + String(k), shape: shape, prediction: prediction, truth: truth)
        }
        let decision = PostprocessingDecision.decide(cases: cases, classes: [1, 2])
        // Whole foreground: the class-2 voxel touches the stray blob by a corner and goes with it, so class 2 drops
        // from 1 to 0 while class 1 rises from 6/7 to 1: mean 0.929 -> 0.5, refused. Class 1 alone: kept.
        XCTAssertEqual(decision.postprocessing, Postprocessing(classes: [1]))
        XCTAssertEqual(decision.before["1"]!, 6.0 / 7, accuracy: 1e-12)
        XCTAssertEqual(decision.after["1"], 1)
        XCTAssertEqual(decision.after["2"], 1)
        XCTAssertEqual(decision.folds.map(\.fold), [0, 1])
        XCTAssertTrue(decision.table().contains("postprocessing: largest component of class 1"), decision.table())
    }

    func testPostprocessingFileWithUnknownClassIsAClearError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pp-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try JSONEncoder().encode(Postprocessing(classes: [4])).write(to: url)
        XCTAssertThrowsError(try Postprocessing.read(url, numClasses: 3)) { error in
            XCTAssertTrue("\(error)".contains("class 4 is not a foreground class"), "\(error)")
        }
        XCTAssertEqual(try Postprocessing.read(url, numClasses: 5), Postprocessing(classes: [4]))
    }
}
