import XCTest
@testable import Torch

final class NNFunctionalTests: XCTestCase {
    func testConv3dKnownValues() throws {
        // A 3x3x3 all-ones kernel on an all-ones 4^3 volume with padding 1: each output counts the
        // in-bounds neighbours: 8 at corners, 27 inside.
        let x = try Tensor.ones([1, 1, 4, 4, 4])
        let w = try Tensor.ones([1, 1, 3, 3, 3])
        let y = try values(F.conv(x, weight: w, padding: [1]))
        XCTAssertEqual(y[0], 8)            // corner (0,0,0)
        XCTAssertEqual(y[1], 12)           // edge (0,0,1): 2*2*3
        XCTAssertEqual(y[1 * 16 + 1 * 4 + 1], 27)  // interior (1,1,1)
        // Bias and stride.
        let b = try Tensor([0.5] as [Float])
        let strided = try F.conv(x, weight: w, bias: b, stride: [2], padding: [1])
        XCTAssertEqual(strided.shape, [1, 1, 2, 2, 2])
        XCTAssertEqual(try values(strided)[0], 8.5)
    }

    func testConv2dAndTransposedConv() throws {
        // 2D: [[1,2],[3,4]] convolved (cross-correlation) with [[1,0],[0,1]] -> 1 + 4 = 5.
        let x = try Tensor([1, 2, 3, 4] as [Float], shape: [1, 1, 2, 2])
        let w = try Tensor([1, 0, 0, 1] as [Float], shape: [1, 1, 2, 2])
        XCTAssertEqual(try values(F.conv(x, weight: w)), [5])
        // Transposed conv with a 2x2 ones kernel, stride 2, scatters each input into a 2x2 block.
        let up = try F.convTranspose(x, weight: Tensor.ones([1, 1, 2, 2]), stride: [2])
        XCTAssertEqual(up.shape, [1, 1, 4, 4])
        XCTAssertEqual(try values(up), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        let up3 = try F.convTranspose(Tensor.ones([1, 2, 2, 2, 2]), weight: Tensor.ones([2, 3, 2, 2, 2]), stride: [2])
        XCTAssertEqual(up3.shape, [1, 3, 4, 4, 4])
        XCTAssertEqual(try up3.max().item(), 2)
    }

    func testConvShapeMismatchThrowsAndProcessContinues() throws {
        let x = try Tensor.ones([1, 2, 4, 4, 4])
        let w = try Tensor.ones([1, 3, 3, 3, 3])  // expects 3 input channels
        XCTAssertThrowsError(try F.conv(x, weight: w)) { error in
            let message = String(describing: error)
            XCTAssertTrue(error is TorchError)
            XCTAssertTrue(message.contains("expected input") || message.contains("channels"), message)
        }
        // The process and libtorch keep working afterwards.
        XCTAssertEqual(try F.conv(x, weight: Tensor.ones([1, 2, 1, 1, 1])).shape, [1, 1, 4, 4, 4])
        XCTAssertThrowsError(try Tensor.ones([2, 3]).matmul(Tensor.ones([2, 3])))
    }

    func testPooling() throws {
        let x = try Tensor((0..<64).map(Float.init), shape: [1, 1, 4, 4, 4])
        let maxed = try F.maxPool(x, kernel: [2])
        XCTAssertEqual(maxed.shape, [1, 1, 2, 2, 2])
        XCTAssertEqual(try values(maxed)[0], 21)  // max of the first 2^3 block: (1,1,1) = 16+4+1
        // average of block (0..1)^3: mean of {0,1,4,5,16,17,20,21} = 10.5
        XCTAssertEqual(try values(F.avgPool(x, kernel: [2]))[0], 10.5)
        XCTAssertEqual(try values(F.adaptiveAvgPool(x, outputSize: [1])), [31.5])
        XCTAssertEqual(try values(F.adaptiveMaxPool(x, outputSize: [1])), [63])
        XCTAssertEqual(try values(F.adaptiveAvgPool(x, outputSize: [2])), try values(F.avgPool(x, kernel: [2])))
        let x2 = try Tensor([1, 2, 3, 4] as [Float], shape: [1, 1, 2, 2])
        XCTAssertEqual(try values(F.maxPool(x2, kernel: [2])), [4])
    }

    func testInterpolate() throws {
        let x = try Tensor([0, 1] as [Float], shape: [1, 1, 1, 1, 2])
        // Trilinear, align_corners false, 2 -> 4 along W: [0, 0.25, 0.75, 1].
        assertClose(try values(F.interpolate(x, size: [1, 1, 4])), [0, 0.25, 0.75, 1])
        assertClose(try values(F.interpolate(x, size: [1, 1, 3], alignCorners: true)), [0, 0.5, 1])
        XCTAssertEqual(try values(F.interpolate(x, size: [1, 1, 4], mode: .nearest)), [0, 0, 1, 1])
    }

    func testGridSampleIdentityAndShift() throws {
        let x = try Tensor((0..<27).map(Float.init), shape: [1, 1, 3, 3, 3])
        let identity = try Tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0] as [Float], shape: [1, 3, 4])
        let grid = try F.affineGrid(theta: identity, size: [1, 1, 3, 3, 3], alignCorners: true)
        XCTAssertEqual(grid.shape, [1, 3, 3, 3, 3])
        assertClose(try values(F.gridSample(x, grid: grid, alignCorners: true)), try values(x))
        // A translation of +1 voxel in x (normalised: 2/(3-1) = 1) samples the next voxel along W.
        let shift = try Tensor([1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0] as [Float], shape: [1, 3, 4])
        let shifted = try values(F.gridSample(x, grid: F.affineGrid(theta: shift, size: [1, 1, 3, 3, 3], alignCorners: true),
                                              padding: .zeros, alignCorners: true))
        XCTAssertEqual(shifted[0], 1)   // (z0,y0,x0) <- x1
        XCTAssertEqual(shifted[1], 2)
        XCTAssertEqual(shifted[2], 0)   // outside -> zero padding
    }

    func testNormalisations() throws {
        let x = try Tensor([1, 2, 3, 4, 10, 20, 30, 40] as [Float], shape: [1, 2, 2, 2])  // N=1, C=2, 2x2
        // Instance/batch norm (N=1) both normalise each channel: [1,2,3,4] -> (x - 2.5)/sqrt(1.25 + eps)
        let expected: [Float] = [1, 2, 3, 4].map { Float(($0 - 2.5) / (1.25 + 1e-5).squareRoot()) }
        let inorm = try values(F.instanceNorm(x, weight: nil, bias: nil))
        assertClose(Array(inorm[0..<4]), expected, tol: 1e-4)
        assertClose(Array(inorm[4..<8]), expected, tol: 1e-4)
        let runningMean = try Tensor.zeros([2]), runningVar = try Tensor.ones([2])
        let bn = try values(F.batchNorm(x, weight: nil, bias: nil, runningMean: runningMean, runningVar: runningVar, training: true))
        assertClose(Array(bn[0..<4]), expected, tol: 1e-4)
        // Running stats: mean <- 0.9*0 + 0.1*2.5; var uses the unbiased variance 5/3.
        assertClose(try values(runningMean), [0.25, 2.5])
        assertClose(try values(runningVar), [Float(0.9 + 0.1 * 5.0 / 3.0), Float(0.9 + 0.1 * 500.0 / 3.0)], tol: 1e-4)
        // Group norm with one group normalises over all 8 values.
        let g = try values(F.groupNorm(x, groups: 1, weight: nil, bias: nil))
        let all: [Double] = [1, 2, 3, 4, 10, 20, 30, 40]
        let m = all.reduce(0, +) / 8, v = all.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 8
        assertClose(g, all.map { Float(($0 - m) / (v + 1e-5).squareRoot()) }, tol: 1e-4)
        let ln = try values(F.layerNorm(x, normalizedShape: [2, 2], weight: nil, bias: nil))
        assertClose(Array(ln[0..<4]), expected, tol: 1e-4)
    }

    func testLossesAgainstHandComputation() throws {
        // CE of logits [0, ln 3] (p = [1/4, 3/4]) for class 1 is -ln(3/4).
        let logits = try Tensor([0, Float(Foundation.log(3.0))] as [Float], shape: [1, 2])
        XCTAssertEqual(try F.crossEntropy(logits, target: Tensor([1] as [Int64])).item(), -Foundation.log(0.75), accuracy: 1e-6)
        // Soft targets [0.5, 0.5]: -(0.5 ln 1/4 + 0.5 ln 3/4).
        let soft = try Tensor([0.5, 0.5] as [Float], shape: [1, 2])
        XCTAssertEqual(try F.crossEntropy(logits, target: soft).item(), -(0.5 * Foundation.log(0.25) + 0.5 * Foundation.log(0.75)), accuracy: 1e-6)
        XCTAssertEqual(try F.mseLoss(Tensor([1, 2] as [Float]), Tensor([3, 2] as [Float])).item(), 2, accuracy: 1e-7)
        // BCE with logits at 0 against 1: ln 2.
        XCTAssertEqual(try F.binaryCrossEntropyWithLogits(Tensor([0] as [Float]), target: Tensor([1] as [Float])).item(),
                       Foundation.log(2.0), accuracy: 1e-7)
    }
}
