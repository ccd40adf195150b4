import Essentials
import Torch

/// Draws training patches from prepared cases: random crops, or (with probability
/// `foregroundFraction`) crops centred on a random voxel of a random foreground class present in
/// the label (nnU-Net's oversampling, which keeps small structures in view). Volumes smaller than
/// the patch are zero-padded (label padded with background).
public struct PatchSampler: Sendable {
    public var patch: [Int]
    public var foregroundFraction: Double

    public init(patch: [Int], foregroundFraction: Double = 0.33) {
        self.patch = patch; self.foregroundFraction = foregroundFraction
    }

    /// Foreground voxel coordinates per class, precomputed once per case (a few thousand samples
    /// per class are plenty to pick centres from).
    public struct ForegroundIndex: @unchecked Sendable {
        public var byClass: [Int: [[Int]]]

        public init(label: Tensor?, maxPerClass: Int = 4096) throws {
            var byClass: [Int: [[Int]]] = [:]
            if let label {
                let shape = label.shape
                let values = try label.toArray(Int64.self)
                var strides = [Int](repeating: 1, count: shape.count)
                for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
                var all: [Int: [Int]] = [:]
                for (i, v) in values.enumerated() where v > 0 { all[Int(v), default: []].append(i) }
                for (k, indices) in all {
                    let step = Swift.max(1, indices.count / maxPerClass)
                    byClass[k] = stride(from: 0, to: indices.count, by: step).map { idx in
                        let flat = indices[idx]
                        return (0..<shape.count).map { (flat / strides[$0]) % shape[$0] }
                    }
                }
            }
            self.byClass = byClass
        }
    }

    /// The crop origin (may be negative or run past the end: padding fills the rest).
    public func origin(shape: [Int], foreground: ForegroundIndex?, rng: inout SeededGenerator) -> [Int] {
        if let fg = foreground, !fg.byClass.isEmpty, rng.unit() < foregroundFraction {
            let classes = fg.byClass.keys.sorted()
            let k = classes[rng.below(classes.count)]
            let voxels = fg.byClass[k]!
            let centre = voxels[rng.below(voxels.count)]
            return (0..<patch.count).map { d in
                // Jitter the centre within the patch so the structure is not always in the middle.
                let jitter = rng.below(Swift.max(patch[d] / 2, 1)) - patch[d] / 4
                let lo = Swift.min(0, shape[d] - patch[d]), hi = Swift.max(0, shape[d] - patch[d])
                return Swift.min(Swift.max(centre[d] - patch[d] / 2 + jitter, lo), hi)
            }
        }
        return (0..<patch.count).map { d in
            let span = shape[d] - patch[d]
            if span >= 0 { return rng.below(span + 1) }
            return span / 2   // centred padding
        }
    }

    /// Crops `x` (C, spatial...) at `origin` to the patch size, zero-padding outside.
    public func crop(_ x: Tensor, origin: [Int], fill: Double = 0) throws -> Tensor {
        let lead = x.rank - patch.count
        let shape = Array(x.shape.suffix(patch.count))
        if origin.allSatisfy({ $0 >= 0 }) && zip(zip(origin, patch), shape).allSatisfy({ $0.0 + $0.1 <= $1 }) {
            var out = x
            for d in 0..<patch.count { out = try out.narrow(dim: lead + d, start: origin[d], length: patch[d]) }
            return try out.contiguous()
        }
        // Partial overlap: copy the valid region into a padded patch.
        let result = try Tensor.full(Array(x.shape.prefix(lead)) + patch, value: fill, dtype: x.dtype)
        var source = x, target = result
        for d in 0..<patch.count {
            let start = Swift.max(origin[d], 0), end = Swift.min(origin[d] + patch[d], shape[d])
            guard end > start else { return result }
            source = try source.narrow(dim: lead + d, start: start, length: end - start)
            target = try target.narrow(dim: lead + d, start: start - origin[d], length: end - start)
        }
        try target.copy_(source)
        return result
    }
}
