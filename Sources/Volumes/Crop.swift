import Essentials
import Foundation

/// A box of voxels: `lower[a] ..< upper[a]` on each axis (i, j, k), half-open.
public struct BoundingBox: Equatable, Codable, Sendable, CustomStringConvertible {
    public var lower: [Int]
    public var upper: [Int]

    public init(lower: [Int], upper: [Int]) {
        self.lower = lower
        self.upper = upper
    }

    enum CodingKeys: String, CodingKey { case lower, upper }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lower = try c.decode([Int].self, forKey: .lower)
        upper = try c.decode([Int].self, forKey: .upper)
        guard lower.count == 3, upper.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: .lower, in: c, debugDescription: "a bounding box has 3 lower and 3 upper bounds, got \(lower) and \(upper)")
        }
    }

    /// The whole of a grid of `shape`.
    public static func full(_ shape: [Int]) -> BoundingBox { BoundingBox(lower: [0, 0, 0], upper: shape) }

    public var shape: [Int] { zip(lower, upper).map { $1 - $0 } }
    public var count: Int { shape.reduce(1, *) }

    /// Whether the box is non-empty and lies inside a grid of `shape`.
    public func fits(in shape: [Int]) -> Bool {
        lower.count == 3 && upper.count == 3 && shape.count == 3
            && (0..<3).allSatisfy { lower[$0] >= 0 && upper[$0] <= shape[$0] && lower[$0] < upper[$0] }
    }

    public var description: String {
        guard lower.count == upper.count else { return "lower \(lower) upper \(upper)" }
        return "[" + zip(lower, upper).map { "\($0)..<\($1)" }.joined(separator: ", ") + "]"
    }
}

public enum Cropping {
    /// The bounding box of the voxels where any of `volumes` is non-zero (nnU-Net's crop-to-non-zero
    /// rule; NaN counts as non-zero); nil when every voxel of every volume is zero. All volumes must
    /// have the same shape.
    public static func nonZeroBox(_ volumes: [Volume]) throws -> BoundingBox? {
        guard let first = volumes.first else { return nil }
        for (n, v) in volumes.enumerated() where v.shape != first.shape {
            throw PreprocessingError(channel: n, field: "shape",
                                     problem: "crop to non-zero needs volumes of one shape: \(v.shape) vs \(first.shape)")
        }
        let nx = first.shape[0], ny = first.shape[1], nz = first.shape[2]
        // Per k slice: (min i, max i, min j, max j), or nil when the slice is all zero.
        var slices = [(Int, Int, Int, Int)?](repeating: nil, count: nz)
        let buffers = volumes.map { $0.voxels }
        slices.withUnsafeMutableBufferPointer { out in
            let outBase = out.baseAddress!
            Parallel.forEach(nz, grain: max(1, 65_536 / max(nx * ny, 1))) { k in
                var iLo = Int.max, iHi = -1, jLo = Int.max, jHi = -1
                for j in 0..<ny {
                    let row = nx * (j + ny * k)
                    var first = -1, last = -1
                    for b in buffers {
                        b.withUnsafeBufferPointer { p in
                            // Scan from the left up to what is already known, then from the right.
                            var i = 0
                            let leftLimit = first < 0 ? nx : first
                            while i < leftLimit { if p[row + i] != 0 { first = i; break }; i += 1 }
                            if first < 0 { return }
                            var r = nx - 1
                            while r > last { if p[row + r] != 0 { last = r; break }; r -= 1 }
                        }
                    }
                    if first >= 0 {
                        iLo = min(iLo, first); iHi = max(iHi, last)
                        jLo = min(jLo, j); jHi = max(jHi, j)
                    }
                }
                if iHi >= 0 { outBase[k] = (iLo, iHi, jLo, jHi) }
            }
        }
        var lo = [Int.max, Int.max, Int.max], hi = [-1, -1, -1]
        for (k, s) in slices.enumerated() {
            guard let s else { continue }
            lo[0] = min(lo[0], s.0); hi[0] = max(hi[0], s.1)
            lo[1] = min(lo[1], s.2); hi[1] = max(hi[1], s.3)
            lo[2] = min(lo[2], k); hi[2] = max(hi[2], k)
        }
        if hi[2] < 0 { return nil }
        return BoundingBox(lower: lo, upper: hi.map { $0 + 1 })
    }
}

extension Volume {
    /// The bounding box of this volume's non-zero voxels; nil when all are zero.
    public func nonZeroBoundingBox() -> BoundingBox? {
        // swiftlint:disable:next force_try
        try! Cropping.nonZeroBox([self])
    }

    /// The voxels inside `box`; the affine is shifted so that world positions are unchanged.
    public func cropped(to box: BoundingBox) throws -> Volume {
        guard box.fits(in: shape) else {
            throw PreprocessingError(field: "crop box", problem: "box \(box) is empty or outside a volume of shape \(shape)")
        }
        if box == .full(shape) { return self }
        let s = box.shape
        var out = [Float](repeating: 0, count: box.count)
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                Volume.copyRows(of: box, in: shape, from: src.baseAddress!, to: dst.baseAddress!, boxIsSource: false)
            }
        }
        return Volume(shape: s, voxels: out, spacing: spacing, affine: affine * Affine.voxelShift(box.lower.map(Double.init)))
    }

    /// Copies the x-rows of `box` from `source` to `destination`, in parallel over k. One side is a
    /// volume of shape `shape`, the other a box-shaped buffer (`boxIsSource` says which).
    static func copyRows(of box: BoundingBox, in shape: [Int], from source: UnsafePointer<Float>,
                         to destination: UnsafeMutablePointer<Float>, boxIsSource: Bool) {
        let s = box.shape, nx = shape[0], ny = shape[1]
        Parallel.forEach(s[2], grain: max(1, 65_536 / max(s[0] * s[1], 1))) { k in
            for j in 0..<s[1] {
                let inVolume = box.lower[0] + nx * (box.lower[1] + j + ny * (box.lower[2] + k))
                let inBox = s[0] * (j + s[1] * k)
                (destination + (boxIsSource ? inVolume : inBox)).update(from: source + (boxIsSource ? inBox : inVolume), count: s[0])
            }
        }
    }

    /// Puts this volume back at `box` inside a volume of `shape`, `fill` elsewhere: the inverse of
    /// `cropped(to: box)` (the affine is shifted back).
    public func uncropped(from box: BoundingBox, into shape: [Int], fill: Float = 0) throws -> Volume {
        guard box.fits(in: shape), box.shape == self.shape else {
            throw PreprocessingError(field: "crop box",
                                     problem: "cannot put a volume of shape \(self.shape) back at box \(box) inside shape \(shape)")
        }
        if box == .full(shape) { return self }
        var out = [Float](repeating: fill, count: shape.reduce(1, *))
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                Volume.copyRows(of: box, in: shape, from: src.baseAddress!, to: dst.baseAddress!, boxIsSource: true)
            }
        }
        return Volume(shape: shape, voxels: out, spacing: spacing,
                      affine: affine * Affine.voxelShift(box.lower.map { -Double($0) }))
    }

    /// Pads with `fill` to at least `minimumShape` on every axis, centring the data (the extra voxels
    /// are split as nnU-Net does: half, rounded down, before). Returns the padded volume and the box
    /// where this volume lies inside it (`cropped(to: box)` undoes the padding).
    public func padded(toMinimumShape minimumShape: [Int], fill: Float = 0) throws -> (volume: Volume, box: BoundingBox) {
        guard minimumShape.count == 3 else {
            throw PreprocessingError(field: "shape", problem: "minimum shape \(minimumShape) is not 3D")
        }
        let newShape = (0..<3).map { Swift.max(shape[$0], minimumShape[$0]) }
        let lower = (0..<3).map { (newShape[$0] - shape[$0]) / 2 }
        let box = BoundingBox(lower: lower, upper: (0..<3).map { lower[$0] + shape[$0] })
        return (try uncropped(from: box, into: newShape, fill: fill), box)
    }
}

extension Affine {
    /// Translation of voxel indices by `t` (as a voxel -> voxel map).
    static func voxelShift(_ t: [Double]) -> Affine {
        Affine(rowMajor: [1, 0, 0, t[0], 0, 1, 0, t[1], 0, 0, 1, t[2], 0, 0, 0, 1])
    }
}
