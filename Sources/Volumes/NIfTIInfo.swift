import Foundation

/// Summary of an image, as `concord info` prints it (JSON keys: shape, spacing, affine, datatype,
/// min, max, mean).
public struct VolumeInfo: Codable, Equatable, Sendable {
    /// The data shape, dim[1...ndim] (4 entries for a 4D image).
    public var shape: [Int]
    /// Voxel size along i, j, k (|pixdim[1...3]|).
    public var spacing: [Double]
    /// Voxel -> world (RAS+ mm), 4 rows of 4.
    public var affine: [[Double]]
    /// The file's datatype name ("int16", "float32", ...).
    public var datatype: String
    /// Statistics of the scaled voxels of all frames, over the finite values only (NaN/Inf are
    /// skipped; see `NIfTIImage.hasNonFinite`); 0 when no voxel is finite.
    public var min: Double
    public var max: Double
    public var mean: Double

    public init(shape: [Int], spacing: [Double], affine: [[Double]], datatype: String, min: Double, max: Double, mean: Double) {
        self.shape = shape
        self.spacing = spacing
        self.affine = affine
        self.datatype = datatype
        self.min = min
        self.max = max
        self.mean = mean
    }
}

extension Affine {
    /// The 4 rows of 4.
    public var matrixRows: [[Double]] { (0..<4).map { Array(m[$0 * 4..<$0 * 4 + 4]) } }
}

extension NIfTIImage {
    /// Shape, geometry, datatype and min/max/mean of the finite voxels (all frames), one pass.
    public func info() -> VolumeInfo {
        var lo = Float.infinity, hi = -Float.infinity
        var sum = 0.0
        var count = 0
        forEachFrameBuffer { _, b in
            for v in b where v.isFinite {
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
                sum += Double(v)
                count += 1
            }
        }
        let any = count > 0
        return VolumeInfo(shape: header.shape, spacing: volume.spacing, affine: volume.affine.matrixRows,
                          datatype: header.datatype.name,
                          min: any ? Double(lo) : 0, max: any ? Double(hi) : 0, mean: any ? sum / Double(count) : 0)
    }
}
