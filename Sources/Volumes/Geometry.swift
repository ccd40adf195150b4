import Essentials
import Foundation

// Orientation of voxel axes in world space, and exact axis permutations/flips of volumes.
//
// Conventions (nibabel's): world is RAS+ millimetres; an orientation code has one letter per voxel
// axis (i, j, k) naming the direction in which that index *increases*: "RAS" means i runs toward
// Right, j toward Anterior, k toward Superior; "LPS" means i toward Left, j toward Posterior,
// k toward Superior (what DICOM/ITK call an LPS-oriented array, read by nibabel).

/// Which world axis each voxel axis runs along, and in which direction.
public struct Orientation: Equatable, Hashable, Codable, Sendable, CustomStringConvertible {
    /// For voxel axis i, j, k: the world axis it runs along (0 = x, L->R; 1 = y, P->A; 2 = z, I->S).
    public let worldAxes: [Int]
    /// For voxel axis i, j, k: +1 when the index increases toward R/A/S, -1 toward L/P/I.
    public let signs: [Int]

    static let letters: [[Character]] = [["L", "R"], ["P", "A"], ["I", "S"]]

    public init(worldAxes: [Int], signs: [Int]) throws {
        guard worldAxes.count == 3, signs.count == 3, Set(worldAxes) == [0, 1, 2],
              signs.allSatisfy({ $0 == 1 || $0 == -1 }) else {
            throw PreprocessingError(field: "orientation",
                                     problem: "world axes \(worldAxes) with signs \(signs) are not a permutation of 0, 1, 2 with signs +-1")
        }
        self.worldAxes = worldAxes
        self.signs = signs
    }

    /// From a three-letter code such as "RAS", "LPS", "PIR" (case-insensitive).
    public init(_ code: String) throws {
        let chars = Array(code.uppercased())
        var axes: [Int] = [], signs: [Int] = []
        for c in chars {
            guard let axis = Orientation.letters.firstIndex(where: { $0.contains(c) }) else {
                throw PreprocessingError(field: "orientation", problem: "'\(code)' is not an orientation code: letter '\(c)' is none of L R P A I S")
            }
            axes.append(axis)
            signs.append(Orientation.letters[axis][1] == c ? 1 : -1)
        }
        guard chars.count == 3, Set(axes).count == 3 else {
            throw PreprocessingError(field: "orientation",
                                     problem: "'\(code)' is not an orientation code: it needs three letters, one of L/R, one of P/A, one of I/S")
        }
        try self.init(worldAxes: axes, signs: signs)
    }

    enum CodingKeys: String, CodingKey { case worldAxes, signs }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        do {
            try self.init(worldAxes: c.decode([Int].self, forKey: .worldAxes), signs: c.decode([Int].self, forKey: .signs))
        } catch let e as PreprocessingError {
            throw DecodingError.dataCorruptedError(forKey: .worldAxes, in: c, debugDescription: e.description)
        }
    }

    public static let ras = try! Orientation("RAS")
    public static let lps = try! Orientation("LPS")

    /// The three-letter code, e.g. "RAS".
    public var code: String {
        String((0..<3).map { Orientation.letters[worldAxes[$0]][signs[$0] > 0 ? 1 : 0] })
    }

    public var description: String { code }

    /// The orientation closest to the affine's rotation (nibabel's `io_orientation`): the affine's
    /// 3x3 part is normalised per column, replaced by its nearest orthogonal matrix (polar
    /// decomposition, which removes shear), then voxel axes i, j, k in turn take the world axis with
    /// the largest absolute component among those not yet taken.
    public init(closestTo affine: Affine) {
        var rs = [Double](repeating: 0, count: 9)
        for c in 0..<3 {
            var zoom = 0.0
            for r in 0..<3 { zoom += affine[r, c] * affine[r, c] }
            zoom = zoom.squareRoot()
            if zoom == 0 { zoom = 1 }
            for r in 0..<3 { rs[r * 3 + c] = affine[r, c] / zoom }
        }
        let r = Mat3.nearestOrthogonal(rs) ?? rs
        var used = [Bool](repeating: false, count: 3)
        var axes = [Int](repeating: -1, count: 3), signs = [Int](repeating: 1, count: 3)
        for col in 0..<3 {
            var best = -1, bestValue = 0.0
            for row in 0..<3 where !used[row] {
                let v = abs(r[row * 3 + col])
                if v > bestValue { bestValue = v; best = row }
            }
            if best < 0 { continue }   // a null column: assigned below
            used[best] = true
            axes[col] = best
            signs[col] = r[best * 3 + col] < 0 ? -1 : 1
        }
        for col in 0..<3 where axes[col] < 0 {
            let free = (0..<3).first { !used[$0] }!
            used[free] = true
            axes[col] = free
        }
        // swiftlint:disable:next force_try
        self = try! Orientation(worldAxes: axes, signs: signs)
    }
}

/// Small 3x3 helpers (row-major [Double] of 9).
enum Mat3 {
    static func det(_ a: [Double]) -> Double {
        a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6])
    }

    static func inverse(_ a: [Double]) -> [Double]? {
        let d = det(a)
        guard abs(d) > 1e-300, d.isFinite else { return nil }
        let inv: [Double] = [
            a[4] * a[8] - a[5] * a[7], a[2] * a[7] - a[1] * a[8], a[1] * a[5] - a[2] * a[4],
            a[5] * a[6] - a[3] * a[8], a[0] * a[8] - a[2] * a[6], a[2] * a[3] - a[0] * a[5],
            a[3] * a[7] - a[4] * a[6], a[1] * a[6] - a[0] * a[7], a[0] * a[4] - a[1] * a[3],
        ]
        return inv.map { $0 / d }
    }

    static func transpose(_ a: [Double]) -> [Double] { [a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]] }

    /// The orthogonal factor of the polar decomposition (the orthogonal matrix nearest to `a`), by
    /// Newton's iteration X <- (X + X^-T) / 2; nil when `a` is (nearly) singular.
    static func nearestOrthogonal(_ a: [Double]) -> [Double]? {
        var x = a
        guard abs(det(x)) > 1e-10 else { return nil }
        for _ in 0..<100 {
            guard let inv = inverse(x) else { return nil }
            let invT = transpose(inv)
            var next = x
            var change = 0.0
            for n in 0..<9 { next[n] = 0.5 * (x[n] + invT[n]); change = max(change, abs(next[n] - x[n])) }
            x = next
            if change < 1e-14 { break }
        }
        return x
    }
}

/// The geometry of a voxel grid: shape (nx, ny, nz) and voxel -> world affine.
public struct VoxelGrid: Equatable, Codable, Sendable {
    public var shape: [Int]
    public var affine: Affine

    public init(shape: [Int], affine: Affine) {
        self.shape = shape
        self.affine = affine
    }

    /// Voxel size implied by the affine (column norms).
    public var spacing: [Double] { affine.spacing }
    public var count: Int { shape.reduce(1, *) }

    /// World position of the grid's centre ((n - 1) / 2 in voxel indices).
    public var centre: [Double] { affine.apply(shape.map { Double($0 - 1) / 2 }) }

    /// World positions of the 8 outer corners of the grid's voxel boxes (indices -0.5 and n - 0.5).
    public var worldCorners: [[Double]] {
        var out: [[Double]] = []
        for c in 0..<8 {
            let p = (0..<3).map { a in (c >> a) & 1 == 0 ? -0.5 : Double(shape[a]) - 0.5 }
            out.append(affine.apply(p))
        }
        return out
    }

    /// Whether the voxel boxes of `other` and this grid overlap in world space (by a positive
    /// volume): `other`'s corners are taken into this grid's voxel space, and their bounding box is
    /// intersected with [-0.5, n - 0.5] on every axis. False when an affine is singular.
    public func overlaps(_ other: VoxelGrid) -> Bool {
        guard let inv = affine.inverse() else { return false }
        let corners = other.worldCorners.map { inv.apply($0) }
        for a in 0..<3 {
            let lo = corners.map { $0[a] }.min()!, hi = corners.map { $0[a] }.max()!
            if !(lo.isFinite && hi.isFinite) { return false }
            if min(hi, Double(shape[a]) - 0.5) - max(lo, -0.5) <= 1e-9 { return false }
        }
        return true
    }

    /// Whether both grids have the same shape and (to `tolerance` mm at every corner voxel) the same affine.
    public func matches(_ other: VoxelGrid, tolerance: Double = 1e-3) -> Bool {
        guard shape == other.shape else { return false }
        for c in 0..<8 {
            let p = (0..<3).map { a in (c >> a) & 1 == 0 ? 0.0 : Double(shape[a] - 1) }
            let x = affine.apply(p), y = other.affine.apply(p)
            for a in 0..<3 where abs(x[a] - y[a]) > tolerance { return false }
        }
        return true
    }
}

/// An exact rearrangement of a volume's voxel axes: output axis a takes input axis
/// `sourceAxes[a]`, reversed when `flips[a]`. Reorientation is one of these; its `inverse` brings
/// data (e.g. a prediction) back to the input's voxel order, bit for bit.
public struct AxisTransform: Equatable, Codable, Sendable {
    /// For output axis a: the input axis it comes from.
    public var sourceAxes: [Int]
    /// For output axis a: whether the order along it is reversed.
    public var flips: [Bool]
    /// Shape of the input (nx, ny, nz).
    public var inputShape: [Int]

    public init(sourceAxes: [Int], flips: [Bool], inputShape: [Int]) throws {
        guard sourceAxes.count == 3, flips.count == 3, inputShape.count == 3, Set(sourceAxes) == [0, 1, 2] else {
            throw PreprocessingError(field: "orientation",
                                     problem: "source axes \(sourceAxes) are not a permutation of 0, 1, 2 (flips \(flips), shape \(inputShape))")
        }
        self.sourceAxes = sourceAxes
        self.flips = flips
        self.inputShape = inputShape
    }

    enum CodingKeys: String, CodingKey { case sourceAxes, flips, inputShape }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let shape = try c.decode([Int].self, forKey: .inputShape)
        guard shape.count == 3, shape.allSatisfy({ $0 >= 0 }) else {
            throw DecodingError.dataCorruptedError(forKey: .inputShape, in: c, debugDescription: "input shape \(shape) is not 3 sizes >= 0")
        }
        do {
            try self.init(sourceAxes: c.decode([Int].self, forKey: .sourceAxes), flips: c.decode([Bool].self, forKey: .flips), inputShape: shape)
        } catch let e as PreprocessingError {
            throw DecodingError.dataCorruptedError(forKey: .sourceAxes, in: c, debugDescription: e.description)
        }
    }

    public static func identity(shape: [Int]) -> AxisTransform {
        // swiftlint:disable:next force_try
        try! AxisTransform(sourceAxes: [0, 1, 2], flips: [false, false, false], inputShape: shape)
    }

    /// The transform taking an array in orientation `from` to orientation `to` (nibabel's
    /// `ornt_transform` + `apply_orientation`).
    public init(from: Orientation, to: Orientation, inputShape: [Int]) throws {
        var source = [Int](repeating: 0, count: 3), flips = [Bool](repeating: false, count: 3)
        for a in 0..<3 {
            let s = from.worldAxes.firstIndex(of: to.worldAxes[a])!
            source[a] = s
            flips[a] = from.signs[s] != to.signs[a]
        }
        try self.init(sourceAxes: source, flips: flips, inputShape: inputShape)
    }

    public var outputShape: [Int] { sourceAxes.map { inputShape[$0] } }
    public var isIdentity: Bool { sourceAxes == [0, 1, 2] && flips == [false, false, false] }

    /// The transform undoing this one.
    public var inverse: AxisTransform {
        var source = [Int](repeating: 0, count: 3), flips = [Bool](repeating: false, count: 3)
        for a in 0..<3 {
            source[sourceAxes[a]] = a
            flips[sourceAxes[a]] = self.flips[a]
        }
        // swiftlint:disable:next force_try
        return try! AxisTransform(sourceAxes: source, flips: flips, inputShape: outputShape)
    }

    /// Output voxel index -> input voxel index, as an affine (entries 0, +-1 and integers).
    public var voxelMap: Affine {
        var m = [Double](repeating: 0, count: 16)
        m[15] = 1
        for a in 0..<3 {
            let s = sourceAxes[a]
            m[s * 4 + a] = flips[a] ? -1 : 1
            m[s * 4 + 3] = flips[a] ? Double(inputShape[s] - 1) : 0
        }
        return Affine(rowMajor: m)
    }

    /// The output's affine for an input with `affine`: world positions of voxels are unchanged.
    public func outputAffine(_ affine: Affine) -> Affine { affine * voxelMap }

    /// Rearranges a buffer of `inputShape` (x fastest) into `outputShape`.
    public func apply(_ input: [Float]) throws -> [Float] {
        let n = inputShape
        guard input.count == n.reduce(1, *) else {
            throw PreprocessingError(field: "shape", problem: "axis transform made for shape \(n) applied to \(input.count) voxels")
        }
        let inStride = [1, n[0], n[0] * n[1]]
        var step = [Int](repeating: 0, count: 3), base = 0
        for a in 0..<3 {
            let s = sourceAxes[a]
            step[a] = flips[a] ? -inStride[s] : inStride[s]
            if flips[a] { base += (n[s] - 1) * inStride[s] }
        }
        if isIdentity { return input }
        let o = outputShape
        let plane = o[0] * o[1]
        var out = [Float](repeating: 0, count: input.count)
        input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                Parallel.forEach(o[2], grain: max(1, 65_536 / max(plane, 1))) { k in
                    for j in 0..<o[1] {
                        var from = base + j * step[1] + k * step[2]
                        var to = o[0] * (j + o[1] * k)
                        for _ in 0..<o[0] { d[to] = s[from]; from += step[0]; to += 1 }
                    }
                }
            }
        }
        return out
    }
}

extension Volume {
    /// The voxel grid (shape and affine).
    public var grid: VoxelGrid { VoxelGrid(shape: shape, affine: affine) }

    /// The orientation closest to the affine (nibabel's `aff2axcodes`).
    public var orientation: Orientation { Orientation(closestTo: affine) }

    /// The axis transform taking this volume to `target` orientation (identity when already there).
    public func axisTransform(to target: Orientation = .ras) -> AxisTransform {
        // swiftlint:disable:next force_try
        try! AxisTransform(from: orientation, to: target, inputShape: shape)
    }

    /// This volume with its axes permuted/flipped into `target` orientation (default RAS: nibabel's
    /// `as_closest_canonical`); world positions of voxels are unchanged, the affine is updated.
    /// `axisTransform(to:)` gives the transform, and its `inverse` undoes it exactly.
    public func reoriented(to target: Orientation = .ras) -> Volume {
        // swiftlint:disable:next force_try
        try! applying(axisTransform(to: target))
    }

    /// Applies an axis transform made for this volume's shape.
    public func applying(_ t: AxisTransform) throws -> Volume {
        guard t.inputShape == shape else {
            throw PreprocessingError(field: "shape", problem: "axis transform made for shape \(t.inputShape) applied to a volume of shape \(shape)")
        }
        if t.isIdentity { return self }
        return Volume(shape: t.outputShape, voxels: try t.apply(voxels), spacing: t.sourceAxes.map { spacing[$0] },
                      affine: t.outputAffine(affine))
    }
}
