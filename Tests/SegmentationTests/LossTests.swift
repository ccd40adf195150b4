import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Logits whose softmax over dim 1 is exactly `p` (log-probabilities).
func logits(fromProbabilities p: [Float], shape: [Int]) throws -> Tensor {
    try Tensor(p.map { Foundation.log($0) }, shape: shape)
}

final class LossTests: XCTestCase {
    func testDiceLossByHand() throws {
        // B=1, K=2, two voxels: p(voxel0) = [0.8, 0.2], p(voxel1) = [0.4, 0.6]; labels [0, 1].
        let p = try Tensor([0.8, 0.4, 0.2, 0.6] as [Float], shape: [1, 2, 2])
        let y = try Tensor([0, 1] as [Int64], shape: [1, 2])
        let s = 1e-5
        let dice0 = (2 * 0.8 + s) / (1.2 + 1 + s)      // class 0: intersection 0.8, sum p 1.2, sum y 1
        let dice1 = (2 * 0.6 + s) / (0.8 + 1 + s)      // class 1: intersection 0.6, sum p 0.8, sum y 1
        XCTAssertEqual(try DiceLoss()(probabilities: p, target: y).item(), 1 - (dice0 + dice1) / 2, accuracy: 1e-6)
        XCTAssertEqual(try DiceLoss(includeBackground: false)(probabilities: p, target: y).item(), 1 - dice1, accuracy: 1e-6)
        // Soft targets equal to the one-hot labels give the same value.
        let soft = try Tensor([1, 0, 0, 1] as [Float], shape: [1, 2, 2])
        XCTAssertEqual(try DiceLoss()(probabilities: p, target: soft).item(), 1 - (dice0 + dice1) / 2, accuracy: 1e-6)
        // DiceCE = Dice + CE where CE = -(ln 0.8 + ln 0.6) / 2.
        let l = try logits(fromProbabilities: [0.8, 0.4, 0.2, 0.6], shape: [1, 2, 2])
        let ce = -(ln(0.8) + ln(0.6)) / 2
        XCTAssertEqual(try DiceCELoss()(logits: l, target: y).item(), 1 - (dice0 + dice1) / 2 + ce, accuracy: 1e-5)
    }

    /// Batch Dice: each class summed over both samples. Sample 0 has class 1 nowhere, so its
    /// per-sample class-1 Dice is smooth / (0.2 + smooth), about 0; over the batch class 1 counts.
    func testBatchDiceByHand() throws {
        // B=2, K=2, one voxel each: p = [0.8, 0.2] (label 0), [0.4, 0.6] (label 1).
        let p = try Tensor([0.8, 0.2, 0.4, 0.6] as [Float], shape: [2, 2, 1])
        let y = try Tensor([0, 1] as [Int64], shape: [2, 1])
        let s = 1e-5
        let dice0 = (2 * 0.8 + s) / (0.8 + 0.4 + 1 + s)     // class 0: intersection 0.8, sum p 1.2, sum y 1
        let dice1 = (2 * 0.6 + s) / (0.2 + 0.6 + 1 + s)     // class 1: intersection 0.6, sum p 0.8, sum y 1
        XCTAssertEqual(try DiceLoss(batch: true)(probabilities: p, target: y).item(), 1 - (dice0 + dice1) / 2, accuracy: 1e-6)
        XCTAssertEqual(try DiceLoss(includeBackground: false, batch: true)(probabilities: p, target: y).item(), 1 - dice1, accuracy: 1e-6)
        // Per sample instead: sample 0's class 1 is absent -> s / (0.2 + s).
        let perSample = [(2 * 0.8 + s) / (0.8 + 1 + s), s / (0.2 + s), s / (0.4 + s), (2 * 0.6 + s) / (0.6 + 1 + s)]
        XCTAssertEqual(try DiceLoss()(probabilities: p, target: y).item(), 1 - perSample.reduce(0, +) / 4, accuracy: 1e-6)
    }

    func testSoftDiceSimilarityAndInfoNCEByHand() throws {
        let a = try Tensor([1, 0] as [Float], shape: [1, 1, 2])
        let b = try Tensor([1, 1] as [Float], shape: [1, 1, 2])
        XCTAssertEqual(try softDiceSimilarity(a, b, eps: 0).item(), 2.0 / 3.0, accuracy: 1e-6)   // 2*1 / (1 + 2)
        // S = [[1, 0], [0.5, 1]], tau = 0.5 -> logits 2S.
        let s = try Tensor([1, 0, 0.5, 1] as [Float], shape: [1, 2, 2])
        let row0 = -ln(e(2) / (e(2) + e(0))), row1 = -ln(e(2) / (e(1) + e(2)))
        let col0 = -ln(e(2) / (e(2) + e(1))), col1 = -ln(e(2) / (e(0) + e(2)))
        XCTAssertEqual(try infoNCE(similarity: s, temperature: 0.5, symmetric: false).item(), (row0 + row1) / 2, accuracy: 1e-6)
        XCTAssertEqual(try infoNCE(similarity: s, temperature: 0.5).item(), ((row0 + row1) / 2 + (col0 + col1) / 2) / 2, accuracy: 1e-6)
    }

    func testChannelSemanticConsistencyByHand() throws {
        // grid 1: each channel's embedding is the sign of its mean. a = [+1, -1], b = [+1, +1].
        let a = try Tensor([Float](repeating: 2, count: 8) + [Float](repeating: -3, count: 8), shape: [1, 2, 2, 2, 2])
        let b = try Tensor([Float](repeating: 1, count: 16), shape: [1, 2, 2, 2, 2])
        let loss = try ChannelSemanticConsistencyLoss(temperature: 0.5, grid: 1)(a, b).item()
        // z = [a0, a1, b0, b1] = [1, -1, 1, 1]; logits 2 z_i z_j, diagonal excluded; positive of i is i+2 mod 4.
        let r0 = -ln(e(2) / (e(-2) + e(2) + e(2)))     // a0: a1 -2, b0 +2 (pos), b1 +2
        let r1 = -ln(e(-2) / (e(-2) + e(-2) + e(-2)))  // a1: a0 -2, b0 -2, b1 -2 (pos)
        let r2 = -ln(e(2) / (e(2) + e(-2) + e(2)))     // b0: a0 +2 (pos), a1 -2, b1 +2
        let r3 = -ln(e(-2) / (e(2) + e(-2) + e(2)))    // b1: a0 +2, a1 -2 (pos), b0 +2
        XCTAssertEqual(loss, (r0 + r1 + r2 + r3) / 4, accuracy: 1e-5)
    }

    func testChannelSemanticConsistencyInvariantToShiftsWithinPoolingCells() throws {
        try Runtime.manualSeed(5)
        let a = try Tensor.randn([2, 6, 8, 8, 8]), b = try Tensor.randn([2, 6, 8, 8, 8])
        let csc = ChannelSemanticConsistencyLoss(grid: 4)  // 2-voxel cells
        // Swap the two voxels of every cell along W: pooled embeddings are unchanged.
        let shuffled = try b.reshape([2, 6, 8, 8, 4, 2]).flip([5]).reshape([2, 6, 8, 8, 8])
        XCTAssertEqual(try csc(a, b).item(), try csc(a, shuffled).item(), accuracy: 1e-5)
        // A shift across cells does change it (the test can fail).
        XCTAssertNotEqual(try csc(a, b).item(), try csc(a, b.roll(shifts: [3], dims: [4])).item(), accuracy: 1e-4)
        // Symmetric in the modality pair.
        XCTAssertEqual(try csc(a, b).item(), try csc(b, a).item(), accuracy: 1e-5)
    }

    func testContrastiveAnatomicalConsistencyByHand() throws {
        // K = 3, two voxels, identical predictions in both modalities:
        // foreground maps f1 = [0.7, 0.1], f2 = [0.1, 0.7] -> s11 = s22 = 1, s12 = s21 = 2*0.14/1.0 = 0.28.
        let p: [Float] = [0.2, 0.2, 0.7, 0.1, 0.1, 0.7]
        let l = try logits(fromProbabilities: p, shape: [1, 3, 2])
        let loss = try ContrastiveAnatomicalConsistencyLoss(temperature: 0.5, pool: 1)(l, l).item()
        XCTAssertEqual(loss, -ln(e(2) / (e(2) + e(0.56))), accuracy: 1e-5)
        // Disagreeing modalities (classes swapped) give a larger loss.
        let swapped = try logits(fromProbabilities: [0.2, 0.2, 0.1, 0.7, 0.7, 0.1], shape: [1, 3, 2])
        XCTAssertGreaterThan(try ContrastiveAnatomicalConsistencyLoss(temperature: 0.5, pool: 1)(l, swapped).item(), loss + 0.5)
    }

    func testAreaSimilarityContrastiveByHand() throws {
        // B = 2, K = 2: foreground maps a0 = [0.9, 0.1], a1 = [0.1, 0.9], same in both modalities.
        let p: [Float] = [0.1, 0.9, 0.9, 0.1,   0.9, 0.1, 0.1, 0.9]
        let l = try logits(fromProbabilities: p, shape: [2, 2, 2])
        let off = 2 * (0.09 + 0.09) / (0.82 + 0.82)
        XCTAssertEqual(try AreaSimilarityContrastiveLoss(temperature: 1)(l, l).item(), -ln(e(1) / (e(1) + e(off))), accuracy: 1e-5)
        XCTAssertThrowsError(try AreaSimilarityContrastiveLoss()(l.narrow(dim: 0, start: 0, length: 1), l.narrow(dim: 0, start: 0, length: 1)))
    }

    func testMSEConsistencyAndRampUp() throws {
        let a = try logits(fromProbabilities: [0.5, 0.5], shape: [1, 2, 1])
        let b = try logits(fromProbabilities: [0.9, 0.1], shape: [1, 2, 1])
        XCTAssertEqual(try SoftmaxMSELoss()(a, b).item(), (0.16 + 0.16) / 2, accuracy: 1e-6)
        XCTAssertEqual(RampUp.sigmoid(step: 0, length: 100), Foundation.exp(-5), accuracy: 1e-12)
        XCTAssertEqual(RampUp.sigmoid(step: 50, length: 100), Foundation.exp(-1.25), accuracy: 1e-12)
        XCTAssertEqual(RampUp.sigmoid(step: 200, length: 100), 1)
        XCTAssertEqual(RampUp.sigmoid(step: 5, start: 10, length: 100), 0)
    }

    /// Each contrastive loss falls when its inputs are optimised directly (a toy problem per loss).
    func testLossesDecreaseUnderOptimisation() throws {
        try Runtime.manualSeed(11)
        func descend(_ parameters: [Parameter], steps: Int = 30, _ loss: () throws -> Tensor) throws -> (Double, Double) {
            let opt = Adam(parameters, learningRate: 0.05)
            let first = try loss().item()
            for _ in 0..<steps { try opt.zeroGrad(); try loss().backward(); try opt.step() }
            return (first, try loss().item())
        }
        let fa = try Parameter(Tensor.randn([2, 8, 4, 4, 4])), fb = try Parameter(Tensor.randn([2, 8, 4, 4, 4]))
        let csc = ChannelSemanticConsistencyLoss(grid: 2)
        let (c0, c1) = try descend([fa, fb]) { try csc(fa.value, fb.value) }
        XCTAssertLessThan(c1, c0 * 0.5, "CSC \(c0) -> \(c1)")
        let la = try Parameter(Tensor.randn([2, 4, 8, 8, 8])), lb = try Parameter(Tensor.randn([2, 4, 8, 8, 8]))
        let cac = ContrastiveAnatomicalConsistencyLoss()
        let (a0, a1) = try descend([la, lb]) { try cac(la.value, lb.value) }
        XCTAssertLessThan(a1, a0 - 0.2, "CAC \(a0) -> \(a1)")
        let asc = AreaSimilarityContrastiveLoss()
        let xa = try Parameter(Tensor.randn([4, 2, 6, 6, 6])), xb = try Parameter(Tensor.randn([4, 2, 6, 6, 6]))
        let (s0, s1) = try descend([xa, xb]) { try asc(xa.value, xb.value) }
        XCTAssertLessThan(s1, s0 - 0.1, "ASC \(s0) -> \(s1)")
    }
}

private func e(_ x: Double) -> Double { Foundation.exp(x) }
private func ln(_ x: Double) -> Double { Foundation.log(x) }
