import Foundation

/// A 4x4 homogeneous transform, row-major, mapping voxel indices (i, j, k, 1) to world
/// coordinates in millimetres, RAS+ (nibabel's convention: the affine nibabel's `img.affine` returns).
public struct Affine: Equatable, Sendable, Codable {
    /// Row-major 4x4 entries.
    public var m: [Double]

    public init(rowMajor m: [Double]) {
        precondition(m.count == 16, "an affine has 16 entries")
        self.m = m
    }

    public static let identity = Affine(rowMajor: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])

    /// Diagonal scaling by the spacing, origin at `origin`.
    public static func scaling(_ spacing: [Double], origin: [Double] = [0, 0, 0]) -> Affine {
        Affine(rowMajor: [spacing[0], 0, 0, origin[0],
                          0, spacing[1], 0, origin[1],
                          0, 0, spacing[2], origin[2],
                          0, 0, 0, 1])
    }

    /// The rigid world map p -> R (p - c) + c + t (R a row-major 3x3 rotation, c the centre,
    /// t the translation in mm) as a 4x4 affine. Shared by the phantom's motion and simulated
    /// misalignment.
    public static func rigid(rotation r: [Double], centre c: [Double], translation t: [Double]) -> Affine {
        var m = [Double](repeating: 0, count: 16)
        for row in 0..<3 {
            var rc = 0.0
            for col in 0..<3 { m[row * 4 + col] = r[row * 3 + col]; rc += r[row * 3 + col] * c[col] }
            m[row * 4 + 3] = c[row] - rc + t[row]
        }
        m[15] = 1
        return Affine(rowMajor: m)
    }

    public subscript(row: Int, col: Int) -> Double {
        get { m[row * 4 + col] }
        set { m[row * 4 + col] = newValue }
    }

    /// Applies the transform to a point (voxel index -> world mm).
    public func apply(_ p: [Double]) -> [Double] {
        (0..<3).map { r in self[r, 0] * p[0] + self[r, 1] * p[1] + self[r, 2] * p[2] + self[r, 3] }
    }

    public static func * (a: Affine, b: Affine) -> Affine {
        var out = [Double](repeating: 0, count: 16)
        for r in 0..<4 { for c in 0..<4 { var s = 0.0; for k in 0..<4 { s += a[r, k] * b[k, c] }; out[r * 4 + c] = s } }
        return Affine(rowMajor: out)
    }

    /// Inverse by Gauss-Jordan elimination with partial pivoting; nil when singular.
    public func inverse() -> Affine? {
        var a = m, inv = Affine.identity.m
        for col in 0..<4 {
            var pivot = col
            for r in col..<4 where abs(a[r * 4 + col]) > abs(a[pivot * 4 + col]) { pivot = r }
            if abs(a[pivot * 4 + col]) < 1e-12 { return nil }
            if pivot != col {
                for c in 0..<4 { a.swapAt(col * 4 + c, pivot * 4 + c); inv.swapAt(col * 4 + c, pivot * 4 + c) }
            }
            let d = a[col * 4 + col]
            for c in 0..<4 { a[col * 4 + c] /= d; inv[col * 4 + c] /= d }
            for r in 0..<4 where r != col {
                let f = a[r * 4 + col]
                if f == 0 { continue }
                for c in 0..<4 { a[r * 4 + c] -= f * a[col * 4 + c]; inv[r * 4 + c] -= f * inv[col * 4 + c] }
            }
        }
        return Affine(rowMajor: inv)
    }

    /// Voxel spacing implied by the affine: the norms of its first three columns.
    public var spacing: [Double] {
        (0..<3).map { c in (0..<3).reduce(0.0) { $0 + self[$1, c] * self[$1, c] }.squareRoot() }
    }
}

/// One 3D scalar volume in scanner geometry.
///
/// Memory layout: `voxels[i + nx * (j + ny * k)]` for voxel (i, j, k), i.e. the NIfTI file order
/// (x fastest). Seen as a C-contiguous tensor this is shape `[nz, ny, nx]` (D, H, W), so a volume
/// goes to libtorch without a transpose.
public struct Volume: Sendable {
    /// (nx, ny, nz).
    public var shape: [Int]
    /// Scaled voxel values (scl_slope/scl_inter applied).
    public var voxels: [Float]
    /// Voxel size in mm along i, j, k.
    public var spacing: [Double]
    /// Voxel index -> world (RAS+ mm).
    public var affine: Affine

    public init(shape: [Int], voxels: [Float], spacing: [Double], affine: Affine? = nil) {
        precondition(shape.count == 3 && spacing.count == 3, "a Volume is 3D")
        precondition(voxels.count == shape.reduce(1, *), "voxel count must equal the product of the shape")
        self.shape = shape
        self.voxels = voxels
        self.spacing = spacing
        self.affine = affine ?? .scaling(spacing)
    }

    public var count: Int { voxels.count }

    @inline(__always) public func index(_ i: Int, _ j: Int, _ k: Int) -> Int { i + shape[0] * (j + shape[1] * k) }

    public subscript(i: Int, j: Int, k: Int) -> Float {
        get { voxels[index(i, j, k)] }
        set { voxels[index(i, j, k)] = newValue }
    }
}
