import Dispatch
import Essentials
import Foundation

/// Exact Euclidean distance transform with anisotropic spacing, in linear time.
///
/// For every voxel, the distance (in the units of `spacing`, normally mm) to the nearest *feature*
/// voxel, i.e. `scipy.ndimage.distance_transform_edt(features == 0, sampling=spacing)`. Voxels of a
/// volume without any feature get `+infinity` (scipy's behaviour there is not meaningful).
///
/// Algorithm: separable, one axis after the other. Along x the 1D distance to the nearest feature
/// follows from a forward and a backward scan; along y and z each line is replaced by the lower
/// envelope of the parabolas `(q - p)²·s² + f(p)` (Felzenszwalb & Huttenlocher, "Distance Transforms
/// of Sampled Functions", 2012), which is exact and O(n) per line. Lines are processed in parallel
/// with `Parallel.forEachChunk`, gathered in blocks of neighbouring x so that memory is
/// read a cache line at a time along the strided axes.
public enum EuclideanDistanceTransform {
    /// Squared distances (e.g. mm²) to the nearest nonzero voxel of `features` (shape with 1 to 3 axes, x fastest).
    public static func squaredDistances(features: UnsafeBufferPointer<UInt8>, shape: [Int], spacing: [Double]) -> [Double] {
        let grid = Grid3(shape)
        return squaredEDT(features: features, grid: grid, spacing: normalizedSpacing(spacing, axes: shape.count))
    }

    /// Squared distances to the nearest `true` voxel of `features`.
    public static func squaredDistances(features: [Bool], shape: [Int], spacing: [Double]) -> [Double] {
        let bytes = features.map { $0 ? UInt8(1) : 0 }
        return bytes.withUnsafeBufferPointer { squaredDistances(features: $0, shape: shape, spacing: spacing) }
    }

    /// Distances to the nearest nonzero voxel of `features`.
    public static func distances(features: UnsafeBufferPointer<UInt8>, shape: [Int], spacing: [Double]) -> [Double] {
        var d = squaredDistances(features: features, shape: shape, spacing: spacing)
        for idx in d.indices { d[idx] = d[idx].squareRoot() }
        return d
    }

    /// Distances to the nearest `true` voxel of `features`.
    public static func distances(features: [Bool], shape: [Int], spacing: [Double]) -> [Double] {
        let bytes = features.map { $0 ? UInt8(1) : 0 }
        return bytes.withUnsafeBufferPointer { distances(features: $0, shape: shape, spacing: spacing) }
    }
}

/// Lines gathered together along the strided axes (consecutive x, so 16 doubles = 2 cache lines per row).
private let lineBlock = 16

/// Squared EDT of a 0/non-0 feature mask on `grid`.
func squaredEDT(features: UnsafeBufferPointer<UInt8>, grid: Grid3, spacing: (Double, Double, Double)) -> [Double] {
    precondition(features.count == grid.count, "feature mask size \(features.count) does not match the grid")
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
    guard grid.count > 0 else { return [] }
    var result = [Double](repeating: 0, count: grid.count)
    result.withUnsafeMutableBufferPointer { buffer in
        let vol = buffer.baseAddress!
        // Pass 1, along x (contiguous): distance to the nearest feature on the line, by two scans.
        let lines = ny * nz
        let sx = spacing.0
        let chunks = Parallel.chunkCount(lines)
        Parallel.forEachChunk(chunks, chunks: chunks) { c, _ in
            for line in (c * lines / chunks)..<((c + 1) * lines / chunks) {
                let base = line * nx
                var last = -1
                for i in 0..<nx {
                    if features[base + i] != 0 { last = i }
                    vol[base + i] = last >= 0 ? Double(i - last) : .infinity
                }
                var next = -1
                for i in stride(from: nx - 1, through: 0, by: -1) {
                    if features[base + i] != 0 { next = i }
                    var d = vol[base + i]
                    if next >= 0 { d = min(d, Double(next - i)) }
                    let dm = d * sx
                    vol[base + i] = dm * dm
                }
            }
        }
        // Pass 2 along y (stride nx), one outer line per z; pass 3 along z (stride nx*ny), one per y.
        if ny > 1 { envelopePass(vol, nx: nx, n: ny, stride: nx, outer: nz, outerStride: nx * ny, spacing: spacing.1) }
        if nz > 1 { envelopePass(vol, nx: nx, n: nz, stride: nx * ny, outer: ny, outerStride: nx, spacing: spacing.2) }
    }
    return result
}

/// Replaces every line along one strided axis by its lower envelope of parabolas. The lines start at
/// `i + o*outerStride` for i in 0..<nx, o in 0..<outer, and have `n` elements `stride` apart.
private func envelopePass(
    _ vol: UnsafeMutablePointer<Double>, nx: Int, n: Int, stride: Int, outer: Int, outerStride: Int, spacing s: Double
) {
    let blocksPerRow = (nx + lineBlock - 1) / lineBlock
    let items = outer * blocksPerRow
    let chunks = Parallel.chunkCount(items)
    Parallel.forEachChunk(chunks, chunks: chunks) { c, _ in
        let f = UnsafeMutablePointer<Double>.allocate(capacity: lineBlock * n)
        let g = UnsafeMutablePointer<Double>.allocate(capacity: lineBlock * n)
        let v = UnsafeMutablePointer<Int>.allocate(capacity: n)
        let z = UnsafeMutablePointer<Double>.allocate(capacity: n + 1)
        defer { f.deallocate(); g.deallocate(); v.deallocate(); z.deallocate() }
        for item in (c * items / chunks)..<((c + 1) * items / chunks) {
            let o = item / blocksPerRow
            let i0 = (item % blocksPerRow) * lineBlock
            let width = min(lineBlock, nx - i0)
            let base = i0 + o * outerStride
            for t in 0..<n {
                let row = vol + base + t * stride
                for b in 0..<width { f[b * n + t] = row[b] }
            }
            for b in 0..<width {
                lowerEnvelope(f + b * n, out: g + b * n, n: n, spacing: s, v: v, z: z)
            }
            for t in 0..<n {
                let row = vol + base + t * stride
                for b in 0..<width { row[b] = g[b * n + t] }
            }
        }
    }
}

/// 1D squared distance transform of a sampled function: out[q] = min_p ((q - p)·s)² + f[p].
/// `f` may contain +infinity (no feature); `v` and `z` are scratch of n and n + 1 elements.
@inline(__always)
private func lowerEnvelope(
    _ f: UnsafePointer<Double>, out: UnsafeMutablePointer<Double>, n: Int, spacing s: Double,
    v: UnsafeMutablePointer<Int>, z: UnsafeMutablePointer<Double>
) {
    let s2 = s * s
    var k = -1  // index of the rightmost parabola of the envelope
    for q in 0..<n {
        let fq = f[q]
        if fq == .infinity { continue }
        let qd = Double(q)
        var boundary = -Double.infinity
        while k >= 0 {
            let p = v[k]
            let pd = Double(p)
            // Abscissa (in voxels) where the parabolas rooted at p and q intersect.
            boundary = ((fq - f[p]) + s2 * (qd * qd - pd * pd)) / (2 * s2 * (qd - pd))
            if boundary <= z[k] { k -= 1 } else { break }
        }
        if k < 0 { boundary = -.infinity }
        k += 1
        v[k] = q
        z[k] = boundary
    }
    guard k >= 0 else {
        for q in 0..<n { out[q] = .infinity }
        return
    }
    z[k + 1] = .infinity
    var j = 0
    for q in 0..<n {
        let qd = Double(q)
        while z[j + 1] < qd { j += 1 }
        let p = v[j]
        let d = Double(q - p) * s
        out[q] = d * d + f[p]
    }
}
