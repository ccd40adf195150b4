import Essentials
import Foundation
import Torch

/// How values between voxel centres are computed.
public enum Interpolation: String, Codable, Sendable {
    /// Trilinear: images.
    case linear
    /// Nearest neighbour: label maps.
    case nearest
}

// Resampling.
//
// Voxel indices address voxel centres: index i is the centre of voxel i, whose box spans
// [i - 0.5, i + 0.5]; the affine maps centres to world millimetres.
//
// * `resampled(toShape:)` / `resampled(toSpacing:)` keep the world box of the volume (the outer
//   faces of the outer voxels) and its centre exactly: output voxel i samples input index
//   (i + 0.5) * n / n' - 0.5 (PyTorch's align_corners=False convention), so the new spacing is
//   spacing * n / n', within half a voxel of the requested spacing per axis. Values beyond the
//   outermost input centres repeat the edge (no fill needed: the box is the same).
// * `resampled(onto:)` samples through the affines: output voxel ijk is at world A_out * ijk, i.e. at
//   input index A_in^-1 * A_out * ijk, interpolated between input voxel centres; points outside the
//   input's voxel centres blend toward `fill` (linear) or take `fill` (nearest, beyond half a voxel).
//   A map that is a signed axis permutation plus whole-voxel shift (identity, shifts, reorientation)
//   is done as an exact copy.
extension Volume {
    /// Resamples to `target` spacing (mm per axis i, j, k): output shape round(shape * spacing /
    /// target) (at least 1), same world box and centre, affine updated. The resulting spacing is
    /// spacing * shape / newShape (exactly the target when it divides the extent).
    public func resampled(toSpacing target: [Double], interpolation: Interpolation) throws -> Volume {
        guard target.count == 3, target.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw PreprocessingError(field: "spacing", problem: "target spacing \(target) must be three positive finite numbers")
        }
        guard spacing.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw PreprocessingError(field: "spacing", problem: "the volume's spacing \(spacing) must be positive and finite to resample it")
        }
        return try resampled(toShape: Volume.shape(shape, spacing: spacing, target: target), interpolation: interpolation)
    }

    /// round(shape * spacing / target), at least 1 per axis.
    public static func shape(_ shape: [Int], spacing: [Double], target: [Double]) -> [Int] {
        (0..<3).map { Swift.max(1, Int((Double(shape[$0]) * spacing[$0] / target[$0]).rounded())) }
    }

    /// Resamples to `newShape` keeping the world box and centre (see the notes above).
    public func resampled(toShape newShape: [Int], interpolation: Interpolation) throws -> Volume {
        guard newShape.count == 3, newShape.allSatisfy({ $0 >= 1 }) else {
            throw PreprocessingError(field: "shape", problem: "cannot resample to shape \(newShape)")
        }
        if newShape == shape { return self }
        guard shape.allSatisfy({ $0 >= 1 }) else {
            throw PreprocessingError(field: "shape", problem: "cannot resample an empty volume of shape \(shape)")
        }
        let scale = (0..<3).map { Double(shape[$0]) / Double(newShape[$0]) }
        var map = Affine.identity
        for a in 0..<3 { map[a, a] = scale[a]; map[a, 3] = 0.5 * scale[a] - 0.5 }
        let newAffine = affine * map
        let newSpacing = (0..<3).map { spacing[$0] * scale[$0] }
        let out: [Float]
        switch interpolation {
        case .linear:
            // libtorch's trilinear resize uses exactly this index map (align_corners=False) and
            // clamps at the edges; it is faster than grid_sample with a grid.
            do {
                let x = try Tensor(voxels, shape: [1, 1, shape[2], shape[1], shape[0]])
                let y = try F.interpolate(x, size: [newShape[2], newShape[1], newShape[0]], mode: .linear, alignCorners: false)
                out = try y.toArray(Float.self)
            } catch {
                throw PreprocessingError(field: "resampling", problem: "trilinear resize \(shape) -> \(newShape) failed in libtorch: \(error)")
            }
        case .nearest:
            out = nearestResize(to: newShape)
        }
        return Volume(shape: newShape, voxels: out, spacing: newSpacing, affine: newAffine)
    }

    /// Nearest-neighbour resize with the box-preserving index map (rounded half away from zero).
    private func nearestResize(to newShape: [Int]) -> [Float] {
        let tables: [[Int]] = (0..<3).map { a in
            let n = shape[a], m = newShape[a]
            let scale = Double(n) / Double(m)
            return (0..<m).map { i in Swift.min(n - 1, Swift.max(0, Int(((Double(i) + 0.5) * scale - 0.5).rounded()))) }
        }
        let nx = shape[0], ny = shape[1]
        let mx = newShape[0], my = newShape[1], mz = newShape[2]
        var out = [Float](repeating: 0, count: mx * my * mz)
        let ti = tables[0], tj = tables[1], tk = tables[2]
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                ti.withUnsafeBufferPointer { tip in
                    let t = tip.baseAddress!
                    Parallel.forEach(mz, grain: Swift.max(1, 65_536 / Swift.max(mx * my, 1))) { k in
                        for j in 0..<my {
                            let row = s + nx * (tj[j] + ny * tk[k])
                            let o = d + mx * (j + my * k)
                            for i in 0..<mx { o[i] = row[t[i]] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Resamples onto another volume's grid through the affines (world coordinates).
    public func resampled(like other: Volume, interpolation: Interpolation, fill: Float = 0) throws -> Volume {
        var v = try resampled(onto: other.grid, interpolation: interpolation, fill: fill)
        v.spacing = other.spacing
        return v
    }

    /// Resamples onto `grid` through the affines: output voxel ijk takes the value at world
    /// grid.affine * ijk, i.e. at this volume's index affine^-1 * grid.affine * ijk (see the notes
    /// above). Outside this volume: `fill` (0 for images, background for labels).
    public func resampled(onto grid: VoxelGrid, interpolation: Interpolation, fill: Float = 0) throws -> Volume {
        guard let inv = affine.inverse() else {
            throw PreprocessingError(field: "affine", problem: "the volume's affine is singular: \(affine.m)")
        }
        return try resampled(voxelMap: inv * grid.affine, shape: grid.shape, affine: grid.affine,
                             interpolation: interpolation, fill: fill)
    }

    /// The core sampler: output voxel ijk (of `shape`) takes this volume's value at index
    /// `voxelMap * ijk`; the output gets `affine`. `exactShortcut` allows the exact copy for signed
    /// permutations with whole-voxel shifts (tests turn it off to check both paths agree).
    func resampled(voxelMap m: Affine, shape outShape: [Int], affine outAffine: Affine, interpolation: Interpolation,
                   fill: Float, exactShortcut: Bool = true) throws -> Volume {
        guard outShape.count == 3, outShape.allSatisfy({ $0 >= 1 }) else {
            throw PreprocessingError(field: "shape", problem: "cannot resample onto a grid of shape \(outShape)")
        }
        guard shape.allSatisfy({ $0 >= 1 }) else {
            throw PreprocessingError(field: "shape", problem: "cannot resample an empty volume of shape \(shape)")
        }
        guard m.m.allSatisfy({ $0.isFinite }) else {
            throw PreprocessingError(field: "affine", problem: "the voxel map between the grids is not finite: \(m.m)")
        }
        let outSpacing = outAffine.spacing
        if exactShortcut, let perm = SignedPermutation(m) {
            return Volume(shape: outShape, voxels: perm.gather(voxels, inShape: shape, outShape: outShape, fill: fill),
                          spacing: outSpacing, affine: outAffine)
        }
        let out = try gridSample(voxelMap: m, outShape: outShape, interpolation: interpolation, fill: fill)
        return Volume(shape: outShape, voxels: out, spacing: outSpacing, affine: outAffine)
    }

    /// grid_sample in slabs of output k (bounded memory for the sampling grid); the slabs run
    /// concurrently, since libtorch's 3D grid_sample uses one core for a single image.
    private func gridSample(voxelMap m: Affine, outShape: [Int], interpolation: Interpolation, fill: Float,
                            padding: F.GridPadding = .zeros) throws -> [Float] {
        let n = shape
        let source: [Float] = fill == 0 ? voxels : voxels.map { $0 - fill }
        let input: Tensor
        do { input = try Tensor(source, shape: [1, 1, n[2], n[1], n[0]]) } catch {
            throw PreprocessingError(field: "resampling", problem: "cannot hold the volume of shape \(n) in libtorch: \(error)")
        }
        let mx = outShape[0], my = outShape[1], mz = outShape[2]
        let plane = mx * my
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // At most ~256k voxels a slab, and enough slabs to keep every core busy.
        let slabDepth = Swift.max(1, Swift.min((mz + cores - 1) / cores, (1 << 18) / Swift.max(plane, 1)))
        let slabs = (mz + slabDepth - 1) / slabDepth
        var out = [Float](repeating: 0, count: plane * mz)
        // Normalised coordinate of index p on an axis of n voxels, for align_corners=False (which
        // maps it back to exactly p for every n, including 1).
        let a0 = 2.0 / Double(n[0]), a1 = 2.0 / Double(n[1]), a2 = 2.0 / Double(n[2])
        let b0 = 1.0 / Double(n[0]) - 1, b1 = 1.0 / Double(n[1]) - 1, b2 = 1.0 / Double(n[2]) - 1
        let mode: F.InterpolationMode = interpolation == .nearest ? .nearest : .linear
        let failure = FirstError()
        out.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            Parallel.forEachChunk(slabs, chunks: slabs) { s, _ in
                let k0 = s * slabDepth, depth = Swift.min(slabDepth, mz - k0)
                var grid = [Float](repeating: 0, count: depth * plane * 3)
                grid.withUnsafeMutableBufferPointer { g in
                    var o = g.baseAddress!
                    for kk in 0..<depth { for j in 0..<my {
                        let k = Double(k0 + kk), jd = Double(j)
                        let px = m[0, 1] * jd + m[0, 2] * k + m[0, 3]
                        let py = m[1, 1] * jd + m[1, 2] * k + m[1, 3]
                        let pz = m[2, 1] * jd + m[2, 2] * k + m[2, 3]
                        for i in 0..<mx {
                            let id = Double(i)
                            o[0] = Float((px + m[0, 0] * id) * a0 + b0)
                            o[1] = Float((py + m[1, 0] * id) * a1 + b1)
                            o[2] = Float((pz + m[2, 0] * id) * a2 + b2)
                            o += 3
                        }
                    } }
                }
                do {
                    let g = try Tensor(grid, shape: [1, depth, my, mx, 3])
                    let y = try F.gridSample(input, grid: g, mode: mode, padding: padding, alignCorners: false)
                    let stride = MemoryLayout<Float>.stride
                    try y.copyBytes(into: UnsafeMutableRawBufferPointer(start: base + k0 * plane * stride, count: depth * plane * stride))
                } catch {
                    failure.record(PreprocessingError(field: "resampling", problem: "grid_sample onto \(outShape) failed in libtorch: \(error)"))
                }
            }
        }
        if let error = failure.error { throw error }
        if fill != 0 { for n in out.indices { out[n] += fill } }
        return out
    }
}

/// The first error thrown by concurrent workers (every libtorch failure in this file is reported as a
/// `PreprocessingError` on "resampling", so Volumes throws only its own error types).
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    func record(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
}

/// A voxel map that is a signed axis permutation plus a whole-voxel shift: output axis a reads
/// input axis `axis[a]` at `sign[a] * o_a + offset[axis[a]]`.
struct SignedPermutation {
    var axis: [Int]
    var sign: [Int]
    var offset: [Int]   // per input axis

    init?(_ m: Affine) {
        var axis = [Int](repeating: -1, count: 3), sign = [Int](repeating: 0, count: 3)
        for a in 0..<3 {          // output axis = column
            for r in 0..<3 {      // input axis = row
                let v = m[r, a]
                if abs(v) < 1e-7 { continue }
                if abs(abs(v) - 1) < 1e-7, axis[a] < 0 { axis[a] = r; sign[a] = v > 0 ? 1 : -1 } else { return nil }
            }
        }
        guard Set(axis) == [0, 1, 2] else { return nil }
        var offset = [Int](repeating: 0, count: 3)
        for r in 0..<3 {
            let t = m[r, 3], rt = t.rounded()
            guard abs(t - rt) < 1e-5, abs(rt) < 1e9 else { return nil }
            offset[r] = Int(rt)
        }
        self.axis = axis; self.sign = sign; self.offset = offset
    }

    func gather(_ input: [Float], inShape n: [Int], outShape o: [Int], fill: Float) -> [Float] {
        var out = [Float](repeating: fill, count: o.reduce(1, *))
        let inStride = [1, n[0], n[0] * n[1]]
        // Source coordinate along input axis axis[a] of output coordinate c: sign[a] * c + offset.
        func source(_ a: Int, _ c: Int) -> Int { sign[a] * c + offset[axis[a]] }
        // Valid output range along output axis 0 (source inside [0, n)).
        let s0 = axis[0], n0 = n[s0]
        var iLo: Int, iHi: Int   // inclusive
        if sign[0] > 0 { iLo = -offset[s0]; iHi = n0 - 1 - offset[s0] } else { iLo = offset[s0] - (n0 - 1); iHi = offset[s0] }
        iLo = max(iLo, 0); iHi = min(iHi, o[0] - 1)
        if iLo > iHi { return out }
        let step = sign[0] * inStride[s0]
        let plane = o[0] * o[1]
        input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let sp = src.baseAddress!, dp = dst.baseAddress!
                Parallel.forEach(o[2], grain: max(1, 65_536 / max(plane, 1))) { k in
                    let sk = source(2, k)
                    guard sk >= 0, sk < n[axis[2]] else { return }
                    for j in 0..<o[1] {
                        let sj = source(1, j)
                        guard sj >= 0, sj < n[axis[1]] else { continue }
                        var from = sj * inStride[axis[1]] + sk * inStride[axis[2]] + source(0, iLo) * inStride[s0]
                        var to = o[0] * (j + o[1] * k) + iLo
                        for _ in iLo...iHi { dp[to] = sp[from]; from += step; to += 1 }
                    }
                }
            }
        }
        return out
    }
}
