import XCTest
@testable import Torch

final class TensorOpsTests: XCTestCase {
    func testCreationRoundTripAndMetadata() throws {
        let t = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.dtype, .float32)
        XCTAssertEqual(t.device, .cpu)
        XCTAssertEqual(try values(t), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try t.toArray(Int64.self), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try Tensor([7, 8] as [UInt8]).toArray(UInt8.self), [7, 8])
        XCTAssertEqual(try Tensor.zeros([2, 2]).toArray(Float.self), [0, 0, 0, 0])
        XCTAssertEqual(try Tensor.full([3], value: 2.5, dtype: .float64).toArray(Double.self), [2.5, 2.5, 2.5])
        XCTAssertEqual(try Tensor.arange(0, 5).toArray(Float.self), [0, 1, 2, 3, 4])
        XCTAssertThrowsError(try Tensor([1, 2, 3] as [Float], shape: [2, 2]))
    }

    func testArithmeticBroadcasting() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let row = try Tensor([10, 20, 30] as [Float], shape: [3])
        XCTAssertEqual(try values(a + row), [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(try values(a - row), [-9, -18, -27, -6, -15, -24])
        XCTAssertEqual(try values(a * row), [10, 40, 90, 40, 100, 180])
        assertClose(try values(row / a), [10, 10, 10, 2.5, 4, 5])
        XCTAssertEqual(try values(a * 2 + 1), [3, 5, 7, 9, 11, 13])
        XCTAssertEqual(try values(1 - a), [0, -1, -2, -3, -4, -5])
        assertClose(try values(6 / a), [6, 3, 2, 1.5, 1.2, 1])
        XCTAssertEqual(try values(-a), [-1, -2, -3, -4, -5, -6])
        XCTAssertEqual(try values(a.pow(2)), [1, 4, 9, 16, 25, 36])
        assertClose(try values(a.exp().log()), [1, 2, 3, 4, 5, 6])
        assertClose(try values(a.sqrt()), [1, 1.4142135, 1.7320508, 2, 2.236068, 2.4494898])
        XCTAssertEqual(try values(a.clamp(min: 2, max: 5)), [2, 2, 3, 4, 5, 5])
        XCTAssertEqual(try values(a.gt(3).to(.float32)), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(try values(where_(a.gt(3), a, -a)), [-1, -2, -3, 4, 5, 6])
        let nan = try Tensor([1, .nan, .infinity] as [Float])
        XCTAssertEqual(try nan.isFinite().toArray(UInt8.self), [1, 0, 0])
    }

    func testReductions() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        XCTAssertEqual(try a.sum().item(), 21)
        XCTAssertEqual(try a.mean().item(), 3.5)
        XCTAssertEqual(try a.max().item(), 6)
        XCTAssertEqual(try a.min().item(), 1)
        XCTAssertEqual(try values(a.sum(dims: [0])), [5, 7, 9])
        XCTAssertEqual(try a.sum(dims: [1], keepDims: true).shape, [2, 1])
        XCTAssertEqual(try values(a.mean(dims: [1])), [2, 5])
        XCTAssertEqual(try values(a.max(dims: [1])), [3, 6])
        XCTAssertEqual(try a.argmax(dim: 1).toArray(Int64.self), [2, 2])
        // logsumexp([1,2,3]) = 3 + log(1 + e^-1 + e^-2)
        assertClose(try values(a.logSumExp(dims: [1])), [Float(3 + Foundation.log(1 + Foundation.exp(-1.0) + Foundation.exp(-2.0))),
                                                          Float(6 + Foundation.log(1 + Foundation.exp(-1.0) + Foundation.exp(-2.0)))])
        // unbiased variance of [1,2,3] is 1
        assertClose(try values(a.variance(dims: [1])), [1, 1])
        assertClose(try values(a.norm(dims: [1])), [Float(14.0.squareRoot()), Float(77.0.squareRoot())])
    }

    func testShapeOps() throws {
        let a = try Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        XCTAssertEqual(try a.reshape([6, -1]).shape, [6, 4])
        let p = try a.permute([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        XCTAssertEqual(try values(p.contiguous()).prefix(6), [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(try values(a.narrow(dim: 2, start: 1, length: 2)).prefix(4), [1, 2, 5, 6])
        XCTAssertEqual(try values(a.slice(dim: 0, 1..<2)).first, 12)
        XCTAssertEqual(try Tensor.cat([a, a], dim: 1).shape, [2, 6, 4])
        XCTAssertEqual(try Tensor.stack([a, a], dim: 0).shape, [2, 2, 3, 4])
        XCTAssertEqual(try a.unsqueeze(dim: 0).shape, [1, 2, 3, 4])
        XCTAssertEqual(try a.unsqueeze(dim: 0).squeeze(dim: 0).shape, [2, 3, 4])
        XCTAssertEqual(try values(a.transposed(1, 2).contiguous()).prefix(3), [0, 4, 8])
        let v = try Tensor([1, 2, 3] as [Float])
        XCTAssertEqual(try values(v.flip([0])), [3, 2, 1])
        XCTAssertEqual(try values(v.roll(shifts: [1], dims: [0])), [3, 1, 2])
        XCTAssertEqual(try values(v.repeated([2])), [1, 2, 3, 1, 2, 3])
        XCTAssertEqual(try v.unsqueeze(dim: 0).expand([2, 3]).shape, [2, 3])
        XCTAssertEqual(try values(v.indexSelect(dim: 0, index: Tensor([2, 0] as [Int64]))), [3, 1])
        XCTAssertEqual(try a.flatten(from: 1).shape, [2, 12])
    }

    func testMatmul() throws {
        let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        let b = try Tensor([5, 6, 7, 8] as [Float], shape: [2, 2])
        XCTAssertEqual(try values(a.matmul(b)), [19, 22, 43, 50])
        let batched = try Tensor.stack([a, b], dim: 0)
        XCTAssertEqual(try values(batched.bmm(batched)), [7, 10, 15, 22, 67, 78, 91, 106])
    }

    func testActivationsSoftmaxOneHotDropout() throws {
        let x = try Tensor([-2, 0, 3] as [Float])
        XCTAssertEqual(try values(F.relu(x)), [0, 0, 3])
        assertClose(try values(F.leakyRelu(x, slope: 0.1)), [-0.2, 0, 3])
        assertClose(try values(F.sigmoid(x)), [Float(1 / (1 + Foundation.exp(2.0))), 0.5, Float(1 / (1 + Foundation.exp(-3.0)))])
        // gelu(x) = x * Phi(x); gelu(3) = 3 * 0.998650
        assertClose(try values(F.gelu(x)), [-0.04550026, 0, 2.9959502], tol: 1e-5)
        let logits = try Tensor([1, 2, 3] as [Float], shape: [1, 3])
        let e = [1.0, 2.0, 3.0].map { Foundation.exp($0) }, z = e.reduce(0, +)
        assertClose(try values(F.softmax(logits, dim: 1)), e.map { Float($0 / z) })
        assertClose(try values(F.logSoftmax(logits, dim: 1)), e.map { Float(Foundation.log($0 / z)) })
        let hot = try F.oneHot(Tensor([0, 2, 1] as [Int64]), numClasses: 3)
        XCTAssertEqual(try hot.toArray(Int64.self), [1, 0, 0, 0, 0, 1, 0, 1, 0])
        // Dropout in training zeroes or scales by 1/(1-p); in eval it is the identity.
        try Runtime.manualSeed(1)
        let ones = try Tensor.ones([1000])
        let dropped = try values(F.dropout(ones, p: 0.5, training: true))
        XCTAssertTrue(dropped.allSatisfy { $0 == 0 || $0 == 2 })
        XCTAssertEqual(Double(dropped.filter { $0 == 0 }.count), 500, accuracy: 60)
        XCTAssertEqual(try values(F.dropout(ones, p: 0.5, training: false)), Array(repeating: 1, count: 1000))
    }

    func testSeedDeterminism() throws {
        try Runtime.manualSeed(42)
        let a = try values(Tensor.randn([8]))
        try Runtime.manualSeed(42)
        let b = try values(Tensor.randn([8]))
        XCTAssertEqual(a, b)
        let state = try Runtime.rngState()
        let c = try values(Tensor.rand([4]))
        try Runtime.setRNGState(state)
        XCTAssertEqual(try values(Tensor.rand([4])), c)
    }

    func testThreadsSetting() throws {
        let before = Runtime.threads
        Runtime.threads = 1
        XCTAssertEqual(Runtime.threads, 1)
        Runtime.threads = before
        XCTAssertEqual(Runtime.threads, before)
    }
}
