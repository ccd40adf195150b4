import CTorch
import XCTest
@testable import Torch

/// The C ABI's own checks: NULL handles, dtype codes, byte counts and sampling-mode codes are
/// errors with a message, never a crash or a silent default.
final class ShimBoundaryTests: XCTestCase {
    private func message(_ err: ct_error?) -> String? {
        guard let err else { return nil }
        defer { ct_error_free(err) }
        return String(cString: err)
    }

    func testGettersReportANullHandle() {
        var n: Int32 = 0, code: Int32 = 0, type: Int32 = 0, index: Int32 = 0
        var count: Int64 = 0
        var dims = [Int64](repeating: 0, count: 4)
        XCTAssertEqual(message(ct_ndim(nil, &n)), "null tensor handle")
        XCTAssertEqual(message(ct_shape(nil, &dims, 4)), "null tensor handle")
        XCTAssertEqual(message(ct_dtype(nil, &code)), "null tensor handle")
        XCTAssertEqual(message(ct_device(nil, &type, &index)), "null tensor handle")
        XCTAssertEqual(message(ct_numel(nil, &count)), "null tensor handle")
        XCTAssertEqual(message(ct_requires_grad(nil, &n)), "null tensor handle")
    }

    func testShapeChecksTheBufferSize() throws {
        let t = try Tensor.zeros([2, 3, 4])
        var dims = [Int64](repeating: 0, count: 2)
        let text = message(ct_shape(t.handle, &dims, 2))
        XCTAssertTrue(text?.contains("3 dims") == true, text ?? "no error")
    }

    func testUnknownDTypeCodeIsAnError() throws {
        var out: ct_tensor?
        let shape: [Int64] = [2]
        // 9 is libtorch's complex64, which Concord does not support; 99 is no dtype at all.
        for code: Int32 in [9, 99, -1] {
            let text = message(ct_full(shape, 1, 0, code, 0, 0, &out))
            XCTAssertTrue(text?.contains("unknown dtype code \(code)") == true, text ?? "no error for \(code)")
            XCTAssertNil(out)
        }
        XCTAssertNil(DType(rawValue: 9))
    }

    func testFromDataChecksTheByteCount() throws {
        let values: [Float] = [1, 2, 3]
        let shape: [Int64] = [2, 2]
        var out: ct_tensor?
        let text = values.withUnsafeBytes { message(ct_from_data($0.baseAddress, $0.count, Int32(CT_FLOAT32), shape, 2, &out)) }
        XCTAssertTrue(text?.contains("needs 16 bytes, got 12") == true, text ?? "no error")
        XCTAssertNil(out)
        // The Swift API checks before calling.
        XCTAssertThrowsError(try values.withUnsafeBytes { try Tensor.fromBytes($0, dtype: .float32, shape: [2, 2]) })
        let ok = try values.withUnsafeBytes { try Tensor.fromBytes($0, dtype: .float32, shape: [3]) }
        XCTAssertEqual(try ok.toArray(Float.self), values)
    }

    func testUnknownDeviceCodeIsAnError() {
        var out: ct_tensor?
        let shape: [Int64] = [1]
        let text = message(ct_full(shape, 1, 0, Int32(CT_FLOAT32), 7, 0, &out))
        XCTAssertTrue(text?.contains("unknown device type code 7") == true, text ?? "no error")
    }

    /// One code per sampling mode for both functions: nearest and linear mean the same in both.
    func testInterpolateAndGridSampleShareTheModeCodes() throws {
        let x = try Tensor([0, 10] as [Float], shape: [1, 1, 1, 1, 2])
        // Position 0.4 voxels between the two values (align_corners: -1 and 1 are the centres).
        let grid = try Tensor([-0.2, 0, 0] as [Float], shape: [1, 1, 1, 1, 3])
        func sample(_ mode: Int32) throws -> Float {
            var out: ct_tensor?
            if let text = message(ct_grid_sample(x.handle, grid.handle, mode, 0, 1, &out)) { throw TorchError(text) }
            return try Tensor.adopt(out!).toArray(Float.self)[0]
        }
        func resize(_ mode: Int32) throws -> [Float] {
            var out: ct_tensor?
            let size: [Int64] = [1, 1, 4]
            if let text = message(ct_interpolate(x.handle, 3, size, mode, 0, &out)) { throw TorchError(text) }
            return try Tensor.adopt(out!).toArray(Float.self)
        }
        XCTAssertEqual(try sample(Int32(CT_SAMPLE_NEAREST)), 0)
        XCTAssertEqual(try sample(Int32(CT_SAMPLE_LINEAR)), 4, accuracy: 1e-5)
        XCTAssertEqual(try resize(Int32(CT_SAMPLE_NEAREST)), [0, 0, 10, 10])
        assertClose(try resize(Int32(CT_SAMPLE_LINEAR)), [0, 2.5, 7.5, 10])
        // The Swift enum maps onto the same codes.
        XCTAssertEqual(F.InterpolationMode.nearest.rawValue, Int32(CT_SAMPLE_NEAREST))
        XCTAssertEqual(F.InterpolationMode.linear.rawValue, Int32(CT_SAMPLE_LINEAR))
        XCTAssertEqual(try F.gridSample(x, grid: grid, mode: .nearest, alignCorners: true).item(), 0)
        XCTAssertThrowsError(try sample(2)) { XCTAssertTrue("\($0)".contains("unknown mode 2"), "\($0)") }
        XCTAssertThrowsError(try resize(5)) { XCTAssertTrue("\($0)".contains("unknown mode 5"), "\($0)") }
    }

    func testGradientErrorsAreThrownAndMissingGradientIsNil() throws {
        let w = try Tensor([1, 2] as [Float]).requiresGrad(true)
        XCTAssertNil(try w.grad)
        try (w * w).sum().backward()
        XCTAssertEqual(try XCTUnwrap(w.grad).toArray(Float.self), [2, 4])
        var out: ct_tensor?
        XCTAssertEqual(message(ct_grad(nil, &out)), "null tensor handle")
    }
}
