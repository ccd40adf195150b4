import Foundation
import Torch

/// Sliding-window inference with Gaussian importance weighting (nnU-Net's scheme): windows of the
/// training patch size step over the volume with the given overlap, each window's softmax is
/// weighted by a Gaussian centred on the window (sigma = `sigmaScale` x patch size per axis) and
/// accumulated; the sum is divided by the accumulated weights. Volumes smaller than the patch are
/// zero-padded (centred) and cropped back. Memory is the K x volume accumulator plus one batch of windows.
/// Optional test-time augmentation averages the predictions of all axis-flip combinations.
///
/// On a GPU the volume, the accumulators and the stitching stay on the device (one copy in, one
/// copy of the result out). When the device runs out of memory for them, the run is repeated with
/// the volume and accumulators in host memory, where only the windows travel: slower, but it fits.
/// `runWithPlacement` says which was used.
public struct SlidingWindowInference: Sendable {
    public var patch: [Int]
    public var overlap: Double
    public var windowBatch: Int
    public var sigmaScale: Double
    public var flipTTA: Bool
    /// Where the network runs; the stitching runs there too when it fits.
    public var device: Device

    public init(patch: [Int], overlap: Double = 0.5, windowBatch: Int = 2, sigmaScale: Double = 0.125, flipTTA: Bool = false,
                device: Device = .cpu) {
        self.patch = patch; self.overlap = overlap; self.windowBatch = windowBatch; self.sigmaScale = sigmaScale
        self.flipTTA = flipTTA; self.device = device
    }

    /// Start offsets along one axis: evenly spaced from 0 to size - patch, step at most
    /// patch * (1 - overlap).
    public static func starts(size: Int, patch: Int, overlap: Double) -> [Int] {
        if size <= patch { return [0] }
        let step = Swift.max(1.0, Double(patch) * (1 - overlap))
        let count = Int(ceil(Double(size - patch) / step)) + 1
        if count == 1 { return [0] }
        let actual = Double(size - patch) / Double(count - 1)
        return (0..<count).map { Int((Double($0) * actual).rounded()) }
    }

    /// The importance map (patch...), maximum 1, no zeros. `sigmaScale` 0 gives constant weights
    /// (a plain average of overlapping windows, MONAI's mode="constant").
    public func gaussian() throws -> Tensor {
        if sigmaScale <= 0 { return try Tensor.ones(patch) }
        var map: Tensor? = nil
        for (d, n) in patch.enumerated() {
            let sigma = Swift.max(Double(n) * sigmaScale, 1e-3), centre = Double(n - 1) / 2
            let values = (0..<n).map { Float(Foundation.exp(-0.5 * pow((Double($0) - centre) / sigma, 2))) }
            var shape = Array(repeating: 1, count: patch.count)
            shape[d] = n
            let axis = try Tensor(values, shape: shape)
            map = try map.map { try $0 * axis } ?? axis
        }
        let m = try map! / map!.max()
        return try m.clamp(min: 1e-4)
    }

    /// Runs `predict` over windows of `images` (M, spatial...). `predict` receives per-modality
    /// windows (B, 1, patch...) (nil for absent modalities) and returns per-head probabilities
    /// (B, K, patch...) (nil heads stay nil). Returns per-head probabilities (K, spatial...).
    public func run(images: Tensor, present: [Bool], progress: ((Int, Int) -> Void)? = nil,
                    predict: ([Tensor?]) throws -> [Tensor?]) throws -> [Tensor?] {
        try runWithPlacement(images: images, present: present, progress: progress, predict: predict).probabilities
    }

    /// Where a run kept its volume and accumulators.
    public enum Placement: String, Sendable { case device, host }

    /// As `run`, also saying where the stitching ran (always `.host` on the CPU).
    public func runWithPlacement(images: Tensor, present: [Bool], progress: ((Int, Int) -> Void)? = nil,
                                 predict: ([Tensor?]) throws -> [Tensor?]) throws -> (probabilities: [Tensor?], placement: Placement) {
        guard device != .cpu else {
            return (try stitch(images: images, present: present, home: .cpu, progress: progress, predict: predict), .host)
        }
        do {
            return (try stitch(images: images, present: present, home: device, progress: progress, predict: predict), .device)
        } catch let error as TorchError where error.description.lowercased().contains("out of memory") {
            return (try stitch(images: images, present: present, home: .cpu, progress: progress, predict: predict), .host)
        }
    }

    /// The sliding window with the volume, weights and accumulators on `home`; windows run on
    /// `device`; the result is on the CPU.
    func stitch(images: Tensor, present: [Bool], home: Device, progress: ((Int, Int) -> Void)?,
                predict: ([Tensor?]) throws -> [Tensor?]) throws -> [Tensor?] {
        try withNoGrad {
            let shape = Array(images.shape.dropFirst())
            guard shape.count == patch.count else { throw TorchError("sliding window: image rank \(shape.count) vs patch \(patch.count)") }
            let padded = zip(shape, patch).map { Swift.max($0, $1) }
            // An image smaller than the patch sits in the middle of a zero canvas (the smaller
            // half of the padding first), as MONAI's and nnU-Net's sliding windows pad it, so an
            // exported MONAI bundle sees the same windows.
            let offsets = zip(padded, shape).map { ($0 - $1) / 2 }
            var x = try images.to(home)
            if padded != shape {
                let canvas = try Tensor.zeros([images.size(0)] + padded, dtype: images.dtype, device: home)
                var view = canvas
                for d in 0..<shape.count { view = try view.narrow(dim: 1 + d, start: offsets[d], length: shape[d]) }
                try view.copy_(images)
                x = canvas
            }
            let weight = try gaussian().to(home)
            let axes = (0..<padded.count).map { Self.starts(size: padded[$0], patch: patch[$0], overlap: overlap) }
            var origins: [[Int]] = [[]]
            for a in axes { origins = origins.flatMap { o in a.map { o + [$0] } } }
            var accumulators: [Tensor?] = []
            let weightSum = try Tensor.zeros(padded, device: home)
            var done = 0
            for batchStart in stride(from: 0, to: origins.count, by: Swift.max(windowBatch, 1)) {
                let batchOrigins = Array(origins[batchStart..<Swift.min(batchStart + windowBatch, origins.count)])
                let windows = try batchOrigins.map { o -> Tensor in
                    var w = x
                    for d in 0..<o.count { w = try w.narrow(dim: 1 + d, start: o[d], length: patch[d]) }
                    return w
                }
                let stacked = try Tensor.stack(windows, dim: 0).to(device)               // (B, M, patch)
                let heads = try predictWithTTA(stacked, present: present, predict: predict).map { try $0?.to(home) }
                if accumulators.isEmpty {
                    accumulators = try heads.map { h in try h.map { try Tensor.zeros([$0.size(1)] + padded, device: home) } }
                }
                for (b, o) in batchOrigins.enumerated() {
                    var wsView = weightSum
                    for d in 0..<o.count { wsView = try wsView.narrow(dim: d, start: o[d], length: patch[d]) }
                    try wsView.add_(weight)
                    for (h, head) in heads.enumerated() {
                        guard let head, let acc = accumulators[h] else { continue }
                        var view = acc
                        for d in 0..<o.count { view = try view.narrow(dim: 1 + d, start: o[d], length: patch[d]) }
                        try view.add_(head.narrow(dim: 0, start: b, length: 1).squeeze(dim: 0).to(.float32) * weight)
                    }
                }
                done += batchOrigins.count
                progress?(done, origins.count)
            }
            return try accumulators.map { acc in
                try acc.map { a in
                    var out = try a / weightSum
                    if padded != shape {
                        for d in 0..<shape.count { out = try out.narrow(dim: 1 + d, start: offsets[d], length: shape[d]) }
                        out = try out.contiguous()
                    }
                    return try out.to(.cpu)
                }
            }
        }
    }

    func predictWithTTA(_ windows: Tensor, present: [Bool], predict: ([Tensor?]) throws -> [Tensor?]) throws -> [Tensor?] {
        func once(_ w: Tensor) throws -> [Tensor?] {
            let inputs: [Tensor?] = try (0..<w.size(1)).map { m in present[m] ? try w.narrow(dim: 1, start: m, length: 1).contiguous() : nil }
            return try predict(inputs)
        }
        guard flipTTA else { return try once(windows) }
        let spatial = Array(2..<windows.rank)
        var subsets: [[Int]] = [[]]
        for d in spatial { subsets += subsets.map { $0 + [d] } }
        var sums: [Tensor?] = []
        for flips in subsets {
            let input = flips.isEmpty ? windows : try windows.flip(flips)
            var out = try once(input)
            if !flips.isEmpty { out = try out.map { try $0?.flip(flips) } }
            sums = sums.isEmpty ? out : try zip(sums, out).map { a, b in try a.flatMap { x in try b.map { try x + $0 } } }
        }
        return try sums.map { try $0.map { try $0 / Double(subsets.count) } }
    }
}
