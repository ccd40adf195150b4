import XCTest
@testable import Torch

final class AutogradTests: XCTestCase {
    /// f(x, w) = sum(softmax(conv3d(x, w), channel) * t) + mean(sigmoid(x)^2), in float64.
    func composite(_ x: Tensor, _ w: Tensor, _ t: Tensor) throws -> Tensor {
        let y = try F.softmax(F.conv(x, weight: w, padding: [1]), dim: 1)
        return try (y * t).sum() + F.sigmoid(x).square().mean()
    }

    func testGradientsMatchFiniteDifferences() throws {
        try Runtime.manualSeed(3)
        let xValues = try Tensor.randn([1, 2, 3, 3, 3], dtype: .float64).toArray(Double.self)
        let wValues = try Tensor.randn([3, 2, 3, 3, 3], dtype: .float64).toArray(Double.self)
        let t = try Tensor.rand([1, 3, 3, 3, 3], dtype: .float64)
        let x = try Tensor(xValues, shape: [1, 2, 3, 3, 3]).requiresGrad(true)
        let w = try Tensor(wValues, shape: [3, 2, 3, 3, 3]).requiresGrad(true)
        try composite(x, w, t).backward()
        let gx = try XCTUnwrap(x.grad).toArray(Double.self)
        let gw = try XCTUnwrap(w.grad).toArray(Double.self)

        let h = 1e-6
        func numeric(_ base: [Double], _ index: Int, isX: Bool) throws -> Double {
            var plus = base, minus = base
            plus[index] += h; minus[index] -= h
            return try withNoGrad {
                let fp = isX ? try composite(Tensor(plus, shape: x.shape), Tensor(wValues, shape: w.shape), t)
                             : try composite(Tensor(xValues, shape: x.shape), Tensor(plus, shape: w.shape), t)
                let fm = isX ? try composite(Tensor(minus, shape: x.shape), Tensor(wValues, shape: w.shape), t)
                             : try composite(Tensor(xValues, shape: x.shape), Tensor(minus, shape: w.shape), t)
                return (try fp.item() - fm.item()) / (2 * h)
            }
        }
        for i in stride(from: 0, to: xValues.count, by: 5) {
            XCTAssertEqual(gx[i], try numeric(xValues, i, isX: true), accuracy: 1e-6, "d/dx[\(i)]")
        }
        for i in stride(from: 0, to: wValues.count, by: 17) {
            XCTAssertEqual(gw[i], try numeric(wValues, i, isX: false), accuracy: 1e-6, "d/dw[\(i)]")
        }
    }

    func testNoGradScopeAndDetach() throws {
        let w = try Tensor([2] as [Float]).requiresGrad(true)
        let y = try withNoGrad { try w * 3 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(GradMode.isEnabled)
        let z = try w * 3
        XCTAssertTrue(z.requiresGrad)
        XCTAssertFalse(try z.detached().requiresGrad)
        // Gradients accumulate until cleared.
        try (w * 3).sum().backward()
        try (w * 3).sum().backward()
        XCTAssertEqual(try XCTUnwrap(w.grad).item(), 6)
        try w.zeroGrad()
        XCTAssertNil(try w.grad)
        XCTAssertThrowsError(try Tensor([1] as [Float]).sum().backward())  // nothing requires grad
    }
}
