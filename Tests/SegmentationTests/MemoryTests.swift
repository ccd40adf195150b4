import XCTest
@testable import Segmentation
@testable import Torch

/// CSC and CAC must stay cheap at realistic sizes (the public CMC code's channel loss needs
/// 128 GiB at 128^3). Measured through Concord's CPU allocator, which counts every byte libtorch
/// allocates for tensors: the peak during forward and backward minus what was alive before.
final class MemoryTests: XCTestCase {
    func extraPeak(_ body: () throws -> Void) rethrows -> Int {
        Runtime.installCachingAllocator()
        let before = Runtime.memory.live
        Runtime.resetPeakMemory()
        try body()
        return Runtime.memory.peak - before
    }

    func testCSCAtA128CubedPatchWith256BottleneckChannels() throws {
        Runtime.installCachingAllocator()
        // A 5-stage U-Net turns a 128^3 patch into an 8^3 bottleneck with 256 channels; batch 2,
        // two modalities.
        let a = try Tensor.randn([2, 256, 8, 8, 8]).requiresGrad(true)
        let b = try Tensor.randn([2, 256, 8, 8, 8]).requiresGrad(true)
        let extra = try extraPeak { try ChannelSemanticConsistencyLoss()(a, b).backward() }
        XCTAssertGreaterThan(extra, 0, "the allocator counted nothing: the measurement is broken")
        XCTAssertLessThan(extra, 100 << 20, "CSC used \(extra >> 20) MB beyond its inputs")
        XCTAssertNotNil(try a.grad)
        print("CSC at a 128^3 patch (2 x 256 x 8^3 bottlenecks): peak \(extra >> 10) KB beyond the inputs")
    }

    func testCACAtA128CubedPatch() throws {
        Runtime.installCachingAllocator()
        // Per-modality logits of one unlabelled 128^3 sample, 4 classes (32 MB each).
        let a = try Tensor.randn([1, 4, 128, 128, 128]).requiresGrad(true)
        let b = try Tensor.randn([1, 4, 128, 128, 128]).requiresGrad(true)
        let extra = try extraPeak { try ContrastiveAnatomicalConsistencyLoss()(a, b).backward() }
        XCTAssertGreaterThan(extra, 0, "the allocator counted nothing: the measurement is broken")
        // The gradients of the two inputs (64 MB) are part of any backward pass; the loss itself
        // must add little beyond them.
        let gradients = 2 * a.count * 4
        XCTAssertLessThan(extra - gradients, 100 << 20, "CAC used \((extra - gradients) >> 20) MB beyond its inputs and their gradients")
        print("CAC at 128^3: peak \(extra >> 20) MB beyond the inputs, of which \(gradients >> 20) MB are the input gradients")
    }
}
