import XCTest
import Torch
@testable import Segmentation

/// Sliding-window stitching: window placement, padding and cropping, checked with a pointwise
/// predictor (the stitched result of a pointwise function must equal the function applied to the
/// whole volume, whatever the windows and weights, so any misplaced window shows).
final class SlidingWindowTests: XCTestCase {
    /// Two "classes" from one input channel: (sigmoid(x), 1 - sigmoid(x)), per voxel.
    func pointwise(_ inputs: [Tensor?]) throws -> [Tensor?] {
        let p = try F.sigmoid(inputs[0]!)
        return [try Tensor.cat([p, 1 - p], dim: 1)]
    }

    func check(shape: [Int], patch: [Int], overlap: Double) throws {
        let images = try Tensor.randn([1] + shape)
        let window = SlidingWindowInference(patch: patch, overlap: overlap, windowBatch: 3)
        let (out, placement) = try window.runWithPlacement(images: images, present: [true], predict: pointwise)
        XCTAssertEqual(placement, .host, "a CPU run keeps its accumulators in host memory")
        let expected = try pointwise([images.unsqueeze(dim: 0)])[0]!.squeeze(dim: 0)
        XCTAssertEqual(out[0]!.shape, [2] + shape)
        let error = try (out[0]! - expected).abs().max().item()
        XCTAssertLessThan(error, 1e-5, "shape \(shape) patch \(patch) overlap \(overlap)")
    }

    func testPointwisePredictorIsReproducedExactly() throws {
        try check(shape: [13, 10, 9], patch: [8, 8, 8], overlap: 0.5)     // several windows, uneven steps
        try check(shape: [16, 16, 16], patch: [8, 8, 8], overlap: 0.25)
        try check(shape: [5, 12, 7], patch: [8, 8, 8], overlap: 0.5)      // padded along two axes
    }

    /// An image smaller than the patch sits in the middle of the zero canvas (the smaller half of
    /// the padding first, as MONAI's sliding window pads): a predictor that answers each voxel's
    /// position inside its window shows where the image was placed.
    func testSmallImagesArePaddedSymmetrically() throws {
        let images = try Tensor.randn([1, 5, 12, 7])
        let patch = [8, 8, 10]
        let window = SlidingWindowInference(patch: patch, overlap: 0.5, windowBatch: 1)
        let out = try window.run(images: images, present: [true]) { inputs in
            let w = inputs[0]!                                        // (B, 1, 8, 8, 10)
            let ramp = try Tensor.arange(0, 10, dtype: .float32).reshape([1, 1, 1, 1, 10]).expand(w.shape).contiguous()
            return [ramp]
        }[0]!                                                          // (1, 5, 12, 7)
        // W: 7 of 10, padding 1 before and 2 after -> voxel j was at window position j + 1.
        let row = try out.narrow(dim: 1, start: 2, length: 1).narrow(dim: 2, start: 0, length: 1).reshape([7]).toArray(Float.self)
        for (j, v) in row.enumerated() { XCTAssertEqual(v, Float(j + 1), accuracy: 1e-5, "W position \(j)") }
    }

    func testStartsCoverTheAxisWithTheRequestedStep() {
        XCTAssertEqual(SlidingWindowInference.starts(size: 8, patch: 8, overlap: 0.5), [0])
        XCTAssertEqual(SlidingWindowInference.starts(size: 5, patch: 8, overlap: 0.5), [0])
        XCTAssertEqual(SlidingWindowInference.starts(size: 16, patch: 8, overlap: 0.5), [0, 4, 8])
        let s = SlidingWindowInference.starts(size: 13, patch: 8, overlap: 0.5)
        XCTAssertEqual(s.first, 0); XCTAssertEqual(s.last, 5)
        XCTAssertTrue(zip(s, s.dropFirst()).allSatisfy { $1 - $0 <= 4 })
    }
}
