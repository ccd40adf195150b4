import Foundation
import Volumes

/// How a k-slice of a volume is laid out on screen, from the volume's affine (voxel -> RAS+ mm).
///
/// Radiological convention: the patient's right on the image's left. The plane is named after the
/// world axis closest to the k axis; the in-plane voxel axis closest to the screen's horizontal
/// world axis runs left-right, and each axis is flipped as needed:
/// - axial (k ~ S-I): right of the patient on the left, anterior at the top;
/// - coronal (k ~ A-P): right of the patient on the left, superior at the top;
/// - sagittal (k ~ R-L): anterior on the left, superior at the top.
/// An affine with a degenerate (zero) column gives the raw layout: i to the right, j downwards,
/// no letters.
public struct SliceOrientation: Equatable, Sendable {
    /// Voxel axis (0 = i, 1 = j) running along the screen's horizontal.
    public var horizontalAxis: Int
    /// Voxel axis (0 = i, 1 = j) running along the screen's vertical.
    public var verticalAxis: Int
    /// Index decreases from left to right.
    public var flipHorizontal: Bool
    /// Index decreases from top to bottom.
    public var flipVertical: Bool
    /// "axial", "coronal", "sagittal", or "slice" when unknown.
    public var plane: String
    /// Anatomical letters at the screen's left, right, top and bottom edges ("" when unknown).
    public var left: String, right: String, top: String, bottom: String

    public static let raw = SliceOrientation(horizontalAxis: 0, verticalAxis: 1, flipHorizontal: false, flipVertical: false,
                                             plane: "slice", left: "", right: "", top: "", bottom: "")

    public init(horizontalAxis: Int, verticalAxis: Int, flipHorizontal: Bool, flipVertical: Bool,
                plane: String, left: String, right: String, top: String, bottom: String) {
        self.horizontalAxis = horizontalAxis
        self.verticalAxis = verticalAxis
        self.flipHorizontal = flipHorizontal
        self.flipVertical = flipVertical
        self.plane = plane
        self.left = left; self.right = right; self.top = top; self.bottom = bottom
    }

    /// The radiological layout of the k-slices of a volume with this affine.
    public static func radiological(affine: Affine) -> SliceOrientation {
        let columns = (0..<3).map { c in (0..<3).map { r in affine[r, c] } }
        let norms = columns.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        guard norms.allSatisfy({ $0.isFinite && $0 > 1e-9 }) else { return .raw }
        let unit = (0..<3).map { c in columns[c].map { $0 / norms[c] } }
        // World axis of k.
        let kWorld = (0..<3).max { abs(unit[2][$0]) < abs(unit[2][$1]) }!
        // Screen horizontal / vertical world axes; the screen direction (right, down) is the negative
        // world direction in every case: right = patient left (-x) or posterior (-y), down = -y or -z.
        let (hWorld, vWorld, plane, letters): (Int, Int, String, (String, String, String, String))
        switch kWorld {
        case 2: (hWorld, vWorld, plane, letters) = (0, 1, "axial", ("R", "L", "A", "P"))
        case 1: (hWorld, vWorld, plane, letters) = (0, 2, "coronal", ("R", "L", "S", "I"))
        default: (hWorld, vWorld, plane, letters) = (1, 2, "sagittal", ("A", "P", "S", "I"))
        }
        let iScore = abs(unit[0][hWorld]) + abs(unit[1][vWorld])
        let jScore = abs(unit[1][hWorld]) + abs(unit[0][vWorld])
        let h = iScore >= jScore ? 0 : 1
        let v = 1 - h
        return SliceOrientation(horizontalAxis: h, verticalAxis: v,
                                flipHorizontal: unit[h][hWorld] > 0, flipVertical: unit[v][vWorld] > 0,
                                plane: plane, left: letters.0, right: letters.1, top: letters.2, bottom: letters.3)
    }

    /// Screen size in voxels (columns, rows) of a slice of a volume with this shape.
    public func screenSize(shape: [Int]) -> (columns: Int, rows: Int) {
        (shape[horizontalAxis], shape[verticalAxis])
    }

    /// Voxel (i, j) at screen column `c`, row `r` (from the top-left).
    @inline(__always) public func voxel(column c: Int, row r: Int, shape: [Int]) -> (i: Int, j: Int) {
        let a = flipHorizontal ? shape[horizontalAxis] - 1 - c : c
        let b = flipVertical ? shape[verticalAxis] - 1 - r : r
        return horizontalAxis == 0 ? (a, b) : (b, a)
    }

    /// One sentence for the page.
    public var summary: String {
        if plane == "slice" { return "orientation unknown (degenerate affine): i to the right, j downwards" }
        return "\(plane), radiological convention: \(left) on the left, \(right) on the right, \(top) at the top"
    }
}
