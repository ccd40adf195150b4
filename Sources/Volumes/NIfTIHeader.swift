import Foundation

/// A NIfTI-1 or NIfTI-2 header: every field, with NIfTI-2's wider types (Int, Double) for both.
///
/// Values are the header's after nibabel's load-time fixes (`Nifti1Header.check_fix`), so that
/// geometry matches `nibabel.load(f).affine`: pixdim[1...3] zero -> 1 and negative -> abs,
/// pixdim[0] (qfac) not +-1 -> 1, qform/sform codes outside 0...5 -> 0.
public struct NIfTIHeader: Sendable, Equatable {
    public enum ByteOrder: String, Sendable, Codable { case little, big }

    /// 1 (348-byte header) or 2 (540-byte header).
    public var version: Int = 1
    /// Byte order of the file this header came from (written files are little-endian).
    public var byteOrder: ByteOrder = .little
    /// Magic "n+1"/"n+2" (header and data in one file) rather than "ni1"/"ni2" (.hdr/.img pair).
    public var isSingleFile = true
    /// dim[0] = number of dimensions (1...7), dim[1...7] their sizes.
    public var dim: [Int] = [3, 1, 1, 1, 1, 1, 1, 1]
    /// pixdim[0] = qfac, pixdim[1...3] voxel size, pixdim[4] time step, ...
    public var pixdim: [Double] = [1, 1, 1, 1, 1, 1, 1, 1]
    public var datatype: NIfTIDataType = .float32
    public var bitpix: Int = 32
    /// Byte offset of the voxel data in the (image) file.
    public var voxOffset: Int = 352
    public var sclSlope: Double = 1
    public var sclInter: Double = 0
    public var calMin: Double = 0
    public var calMax: Double = 0
    public var intentCode: Int = 0
    public var intentP1: Double = 0
    public var intentP2: Double = 0
    public var intentP3: Double = 0
    public var intentName: String = ""
    public var dimInfo: Int = 0
    public var sliceStart: Int = 0
    public var sliceEnd: Int = 0
    public var sliceCode: Int = 0
    public var sliceDuration: Double = 0
    public var toffset: Double = 0
    public var qformCode: Int = 0
    public var sformCode: Int = 0
    public var quaternB: Double = 0
    public var quaternC: Double = 0
    public var quaternD: Double = 0
    public var qoffsetX: Double = 0
    public var qoffsetY: Double = 0
    public var qoffsetZ: Double = 0
    public var srowX: [Double] = [1, 0, 0, 0]
    public var srowY: [Double] = [0, 1, 0, 0]
    public var srowZ: [Double] = [0, 0, 1, 0]
    public var xyztUnits: Int = 0
    public var descrip: String = ""
    public var auxFile: String = ""

    public init() {}

    /// Header size in bytes: 348 (NIfTI-1) or 540 (NIfTI-2).
    public var headerSize: Int { version == 2 ? 540 : 348 }

    /// Number of dimensions (dim[0]).
    public var ndim: Int { dim[0] }

    /// The data shape, dim[1...ndim].
    public var shape: [Int] { Array(dim[1...max(1, min(7, dim[0]))]) }

    /// (nx, ny, nz), with 1 for the axes a 1D/2D image lacks.
    public var spatialShape: [Int] { (1...3).map { $0 <= ndim ? dim[$0] : 1 } }

    /// Number of 3D frames: the product of dim[4...ndim] (1 for a 3D image; Int.max if it overflows,
    /// which `NIfTI.read` refuses).
    public var frameCount: Int {
        guard ndim > 3 else { return 1 }
        var n = 1
        for d in dim[4...min(7, ndim)] {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return Int.max }
            n = p
        }
        return n
    }

    /// Voxel size along i, j, k: |pixdim[1...3]|.
    public var spacing: [Double] { (1...3).map { abs(pixdim[$0]) } }

    /// The scaling nibabel applies, or nil when the data are unscaled (slope 0 or not finite).
    public var scaling: (slope: Double, inter: Double)? {
        guard sclSlope.isFinite, sclSlope != 0 else { return nil }
        return (sclSlope, sclInter)
    }

    /// qfac: pixdim[0] when it is -1, else 1.
    public var qfac: Double { pixdim[0] == -1 ? -1 : 1 }

    // MARK: - Affines (nibabel's Nifti1Header.get_sform / get_qform / get_base_affine / get_best_affine)

    /// The sform rows as an affine (whatever the sform code).
    public var sformAffine: Affine {
        Affine(rowMajor: srowX + srowY + srowZ + [0, 0, 0, 1])
    }

    /// The quaternion's real part as nibabel's `fillpositive` computes it; nil when b²+c²+d² exceeds 1
    /// by more than 3 eps of the header's float type (nibabel refuses such a qform).
    var quaternionA: Double? {
        let w2 = 1.0 - (quaternB * quaternB + quaternC * quaternC + quaternD * quaternD)
        let threshold = 3 * (version == 2 ? Double.ulpOfOne : Double(Float.ulpOfOne))
        if abs(w2) < threshold { return 0 }
        if w2 < 0 { return nil }
        return w2.squareRoot()
    }

    /// The qform (quaternion, qfac, pixdim, qoffset) as an affine, whatever the qform code.
    public var qformAffine: Affine {
        let w = quaternionA ?? 0, x = quaternB, y = quaternC, z = quaternD
        let r = NIfTIGeometry.rotation(w: w, x: x, y: y, z: z)
        let vox = [abs(pixdim[1]), abs(pixdim[2]), abs(pixdim[3]) * qfac]
        var m = [Double](repeating: 0, count: 16)
        for row in 0..<3 { for col in 0..<3 { m[row * 4 + col] = r[row * 3 + col] * vox[col] } }
        m[3] = qoffsetX; m[7] = qoffsetY; m[11] = qoffsetZ; m[15] = 1
        return Affine(rowMajor: m)
    }

    /// nibabel's fallback when both codes are 0 (`shape_zoom_affine(shape, zooms, x_flip=True)`):
    /// diag(-pixdim[1], pixdim[2], pixdim[3]) with voxel (dim-1)/2 at the world origin.
    public var baseAffine: Affine {
        let shape = spatialShape
        var zooms = (1...3).map { $0 <= ndim ? abs(pixdim[$0]) : 1.0 }
        zooms[0] = -zooms[0]
        let origin = (0..<3).map { -Double(shape[$0] - 1) / 2.0 * zooms[$0] }
        return Affine(rowMajor: [zooms[0], 0, 0, origin[0],
                                 0, zooms[1], 0, origin[1],
                                 0, 0, zooms[2], origin[2],
                                 0, 0, 0, 1])
    }

    /// Which transform `affine` uses.
    public enum AffineSource: String, Sendable { case sform, qform, pixdim }

    /// nibabel's choice: sform when sform_code != 0, else qform when qform_code != 0, else pixdim.
    public var affineSource: AffineSource { sformCode != 0 ? .sform : (qformCode != 0 ? .qform : .pixdim) }

    /// Voxel -> world (RAS+ mm) exactly as nibabel's `img.affine` (`get_best_affine`).
    public var affine: Affine {
        switch affineSource {
        case .sform: return sformAffine
        case .qform: return qformAffine
        case .pixdim: return baseAffine
        }
    }

    /// Sets the sform rows from `affine` and the sform code.
    public mutating func setSform(_ affine: Affine, code: Int) {
        srowX = Array(affine.m[0..<4])
        srowY = Array(affine.m[4..<8])
        srowZ = Array(affine.m[8..<12])
        sformCode = code
    }

    /// Sets quaternion, qoffset, qfac (pixdim[0]) and voxel sizes (pixdim[1...3]) from `affine` as
    /// nibabel's `set_qform` does (shears stripped: the nearest rotation is stored), and the qform
    /// code. An affine with a zero-length column has no qform: the code is set to 0 and pixdim is
    /// left alone; returns false then.
    @discardableResult
    public mutating func setQform(_ affine: Affine, code: Int) -> Bool {
        guard let q = NIfTIGeometry.decompose(affine) else { qformCode = 0; return false }
        quaternB = q.b; quaternC = q.c; quaternD = q.d
        qoffsetX = affine[0, 3]; qoffsetY = affine[1, 3]; qoffsetZ = affine[2, 3]
        pixdim[0] = q.qfac
        pixdim[1] = q.zooms[0]; pixdim[2] = q.zooms[1]; pixdim[3] = q.zooms[2]
        qformCode = code
        return true
    }
}

// MARK: - Geometry helpers

enum NIfTIGeometry {
    /// Row-major 3x3 rotation of quaternion (w, x, y, z), normalised (nibabel's quat2mat).
    static func rotation(w: Double, x: Double, y: Double, z: Double) -> [Double] {
        let n = w * w + x * x + y * y + z * z
        if n < Double.ulpOfOne { return [1, 0, 0, 0, 1, 0, 0, 0, 1] }
        let s = 2.0 / n
        let X = x * s, Y = y * s, Z = z * s
        let wX = w * X, wY = w * Y, wZ = w * Z
        let xX = x * X, xY = x * Y, xZ = x * Z
        let yY = y * Y, yZ = y * Z, zZ = z * Z
        return [1 - (yY + zZ), xY - wZ, xZ + wY,
                xY + wZ, 1 - (xX + zZ), yZ - wX,
                xZ - wY, yZ + wX, 1 - (xX + yY)]
    }

    static func det3(_ a: [Double]) -> Double {
        a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6])
    }

    /// Inverse transpose of a 3x3 (row-major); nil when singular.
    static func inverseTranspose3(_ a: [Double]) -> [Double]? {
        let d = det3(a)
        if abs(d) < 1e-300 || !d.isFinite { return nil }
        // cofactor matrix / det = inverse transpose
        let c: [Double] = [
            a[4] * a[8] - a[5] * a[7], -(a[3] * a[8] - a[5] * a[6]), a[3] * a[7] - a[4] * a[6],
            -(a[1] * a[8] - a[2] * a[7]), a[0] * a[8] - a[2] * a[6], -(a[0] * a[7] - a[1] * a[6]),
            a[1] * a[5] - a[2] * a[4], -(a[0] * a[5] - a[2] * a[3]), a[0] * a[4] - a[1] * a[3],
        ]
        return c.map { $0 / d }
    }

    /// The orthogonal polar factor of a non-singular 3x3 (the rotation nearest to it; what nibabel
    /// gets from the SVD as P·Qᵀ), by Newton's iteration X <- (X + X⁻ᵀ)/2.
    static func nearestRotation(_ r: [Double]) -> [Double]? {
        var x = r
        for _ in 0..<100 {
            guard let it = inverseTranspose3(x) else { return nil }
            let next = (0..<9).map { 0.5 * (x[$0] + it[$0]) }
            let delta = (0..<9).reduce(0.0) { max($0, abs(next[$1] - x[$1])) }
            x = next
            if delta < 1e-15 { break }
        }
        return x
    }

    /// Unit quaternion (w >= 0) of a rotation matrix (row-major), Shepperd's method.
    static func quaternion(_ m: [Double]) -> (w: Double, x: Double, y: Double, z: Double) {
        let t = m[0] + m[4] + m[8]
        var w, x, y, z: Double
        if t > max(m[0], m[4], m[8]) {
            let s = (1 + t).squareRoot() * 2
            w = 0.25 * s; x = (m[7] - m[5]) / s; y = (m[2] - m[6]) / s; z = (m[3] - m[1]) / s
        } else if m[0] >= m[4] && m[0] >= m[8] {
            let s = (1 + m[0] - m[4] - m[8]).squareRoot() * 2
            w = (m[7] - m[5]) / s; x = 0.25 * s; y = (m[1] + m[3]) / s; z = (m[2] + m[6]) / s
        } else if m[4] >= m[8] {
            let s = (1 + m[4] - m[0] - m[8]).squareRoot() * 2
            w = (m[2] - m[6]) / s; x = (m[1] + m[3]) / s; y = 0.25 * s; z = (m[5] + m[7]) / s
        } else {
            let s = (1 + m[8] - m[0] - m[4]).squareRoot() * 2
            w = (m[3] - m[1]) / s; x = (m[2] + m[6]) / s; y = (m[5] + m[7]) / s; z = 0.25 * s
        }
        let n = (w * w + x * x + y * y + z * z).squareRoot()
        w /= n; x /= n; y /= n; z /= n
        if w < 0 { w = -w; x = -x; y = -y; z = -z }
        return (w, x, y, z)
    }

    /// nibabel's set_qform decomposition: zooms (column norms), qfac (sign of the determinant),
    /// quaternion of the nearest rotation. nil for an affine with a zero or non-finite column.
    static func decompose(_ a: Affine) -> (b: Double, c: Double, d: Double, qfac: Double, zooms: [Double])? {
        guard a.m.allSatisfy({ $0.isFinite }) else { return nil }
        let zooms = (0..<3).map { c in (0..<3).reduce(0.0) { $0 + a[$1, c] * a[$1, c] }.squareRoot() }
        guard zooms.allSatisfy({ $0 > 0 }) else { return nil }
        var r = [Double](repeating: 0, count: 9)
        for row in 0..<3 { for col in 0..<3 { r[row * 3 + col] = a[row, col] / zooms[col] } }
        var qfac = 1.0
        if det3(r) <= 0 {
            qfac = -1
            for row in 0..<3 { r[row * 3 + 2] = -r[row * 3 + 2] }
        }
        guard let rot = nearestRotation(r) else { return nil }
        let q = quaternion(rot)
        return (q.x, q.y, q.z, qfac, zooms)
    }
}
