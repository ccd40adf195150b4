import Dispatch
import Essentials
import Foundation

/// A 3D grid (nx, ny, nz), x fastest: the voxel (i, j, k) is at index i + nx*(j + ny*k).
///
/// 1- and 2-axis shapes are padded with trailing 1s; `axes` remembers how many axes are real, so that
/// the padded ones do not count as volume border for the surface extraction (a 2D mask gets a
/// 4-connected erosion in 2D, as scipy does for a 2D array).
struct Grid3: Equatable {
    var nx: Int, ny: Int, nz: Int
    var axes: Int

    init(nx: Int, ny: Int, nz: Int, axes: Int = 3) {
        precondition(nx >= 0 && ny >= 0 && nz >= 0, "negative extent")
        self.nx = nx; self.ny = ny; self.nz = nz; self.axes = axes
    }

    /// A 1-, 2- or 3-element shape, padded with trailing 1s.
    init(_ shape: [Int]) {
        precondition((1...3).contains(shape.count), "shape must have 1 to 3 axes, got \(shape)")
        let s = shape + Array(repeating: 1, count: 3 - shape.count)
        self.init(nx: s[0], ny: s[1], nz: s[2], axes: shape.count)
    }

    /// The grid of a sub-box, with the same number of real axes.
    func cropped(to box: VoxelBox) -> Grid3 {
        let e = box.extent
        return Grid3(nx: e.x, ny: e.y, nz: e.z, axes: axes)
    }

    var count: Int { nx * ny * nz }
}

/// Spacing of a 1- to 3-element shape, padded with trailing 1s; every entry must be positive and finite.
func normalizedSpacing(_ spacing: [Double], axes: Int) -> (Double, Double, Double) {
    precondition(spacing.count == axes, "spacing \(spacing) does not match a \(axes)-axis shape")
    precondition(spacing.allSatisfy { $0 > 0 && $0.isFinite }, "spacing must be positive and finite: \(spacing)")
    let s = spacing + Array(repeating: 1.0, count: 3 - spacing.count)
    return (s[0], s[1], s[2])
}

/// An inclusive axis-aligned box of voxels.
struct VoxelBox: Equatable {
    var lo: SIMD3<Int>
    var hi: SIMD3<Int>

    var extent: SIMD3<Int> { hi &- lo &+ 1 }

    func union(_ other: VoxelBox) -> VoxelBox {
        VoxelBox(lo: pointwiseMin(lo, other.lo), hi: pointwiseMax(hi, other.hi))
    }

    /// Grown by `margin` voxels on every side, then clipped to `grid`.
    func expanded(by margin: Int, within grid: Grid3) -> VoxelBox {
        let upper = SIMD3(grid.nx - 1, grid.ny - 1, grid.nz - 1)
        return VoxelBox(lo: pointwiseMax(lo &- margin, .zero), hi: pointwiseMin(hi &+ margin, upper))
    }

    static func whole(_ grid: Grid3) -> VoxelBox {
        VoxelBox(lo: .zero, hi: SIMD3(grid.nx - 1, grid.ny - 1, grid.nz - 1))
    }
}


/// Partial result of `scanPair` over some z slices.
private struct ScanPartial {
    var p = 0, r = 0, i = 0
    var box: VoxelBox? = nil
}

/// Counts |A|, |B|, |A∩B| and finds the bounding box of A∪B in one pass, parallel over z slices.
/// `isForeground` decides which values are foreground (nonzero for binary masks, `== label` for label maps).
func scanPair<T>(
    _ prediction: UnsafeBufferPointer<T>, _ reference: UnsafeBufferPointer<T>, grid: Grid3,
    isForeground: (T) -> Bool
) -> (counts: OverlapCounts, box: VoxelBox?) {
    precondition(prediction.count == grid.count && reference.count == grid.count,
                 "mask sizes \(prediction.count), \(reference.count) do not match the shape (\(grid.nx), \(grid.ny), \(grid.nz))")
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
    guard grid.count > 0 else { return (OverlapCounts(prediction: 0, reference: 0, intersection: 0), nil) }
    let chunks = Parallel.chunkCount(nz)
    var partials = [ScanPartial](repeating: ScanPartial(), count: chunks)
    partials.withUnsafeMutableBufferPointer { out in
        Parallel.forEachChunk(chunks, chunks: chunks) { c, _ in
            var part = ScanPartial()
            let k0 = c * nz / chunks, k1 = (c + 1) * nz / chunks
            for k in k0..<k1 {
                for j in 0..<ny {
                    let base = nx * (j + ny * k)
                    var first = -1, last = -1
                    var np = 0, nr = 0, ni = 0
                    for i in 0..<nx {
                        let a = isForeground(prediction[base + i])
                        let b = isForeground(reference[base + i])
                        if a { np += 1 }
                        if b { nr += 1 }
                        if a && b { ni += 1 }
                        if a || b {
                            if first < 0 { first = i }
                            last = i
                        }
                    }
                    part.p += np; part.r += nr; part.i += ni
                    if first >= 0 {
                        let line = VoxelBox(lo: SIMD3(first, j, k), hi: SIMD3(last, j, k))
                        part.box = part.box.map { $0.union(line) } ?? line
                    }
                }
            }
            out[c] = part
        }
    }
    var total = ScanPartial()
    for part in partials {
        total.p += part.p; total.r += part.r; total.i += part.i
        if let b = part.box { total.box = total.box.map { $0.union(b) } ?? b }
    }
    return (OverlapCounts(prediction: total.p, reference: total.r, intersection: total.i), total.box)
}

/// Copies the voxels of `box` out of a full volume as a 0/1 mask laid out x fastest.
func extractMask<T>(
    _ volume: UnsafeBufferPointer<T>, grid: Grid3, box: VoxelBox, isForeground: (T) -> Bool
) -> [UInt8] {
    let e = box.extent
    let (cx, cy, cz) = (e.x, e.y, e.z)
    let chunks = Parallel.chunkCount(cz)
    return [UInt8](unsafeUninitializedCapacity: cx * cy * cz) { out, initialized in
        Parallel.forEachChunk(chunks, chunks: chunks) { c, _ in
            let k0 = c * cz / chunks, k1 = (c + 1) * cz / chunks
            for k in k0..<k1 {
                for j in 0..<cy {
                    let src = box.lo.x + grid.nx * (box.lo.y + j + grid.ny * (box.lo.z + k))
                    let dst = cx * (j + cy * k)
                    for i in 0..<cx { out[dst + i] = isForeground(volume[src + i]) ? 1 : 0 }
                }
            }
        }
        initialized = cx * cy * cz
    }
}
