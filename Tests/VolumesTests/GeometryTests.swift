import Essentials
import Foundation
import XCTest
@testable import Volumes

/// Row-major 3x3 product.
func geoMul(_ a: [Double], _ b: [Double]) -> [Double] {
    var out = [Double](repeating: 0, count: 9)
    for r in 0..<3 { for c in 0..<3 { out[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c] } }
    return out
}

/// Rz * Ry * Rx for angles in degrees about x, y, z (to build oblique test affines).
func geoEulerRotation(_ degrees: [Double]) -> [Double] {
    let r = degrees.map { $0 * Double.pi / 180 }
    let (cx, sx) = (cos(r[0]), sin(r[0])), (cy, sy) = (cos(r[1]), sin(r[1])), (cz, sz) = (cos(r[2]), sin(r[2]))
    let rx: [Double] = [1, 0, 0, 0, cx, -sx, 0, sx, cx]
    let ry: [Double] = [cy, 0, sy, 0, 1, 0, -sy, 0, cy]
    let rz: [Double] = [cz, -sz, 0, sz, cz, 0, 0, 0, 1]
    return geoMul(rz, geoMul(ry, rx))
}

/// A volume whose voxel (i, j, k) holds f(i, j, k).
func geoVolume(_ shape: [Int], affine: Affine, _ f: (Int, Int, Int) -> Float) -> Volume {
    var v = [Float](repeating: 0, count: shape.reduce(1, *))
    for k in 0..<shape[2] { for j in 0..<shape[1] { for i in 0..<shape[0] { v[i + shape[0] * (j + shape[1] * k)] = f(i, j, k) } } }
    return Volume(shape: shape, voxels: v, spacing: affine.spacing, affine: affine)
}

func geoAffine(_ rows: [[Double]]) -> Affine { Affine(rowMajor: rows.flatMap { $0 } + [0, 0, 0, 1]) }

func geoAssertAffine(_ a: Affine, _ b: Affine, accuracy: Double = 1e-9, file: StaticString = #filePath, line: UInt = #line) {
    for n in 0..<16 { XCTAssertEqual(a.m[n], b.m[n], accuracy: accuracy, "affine entry \(n): \(a.m) vs \(b.m)", file: file, line: line) }
}

final class GeometryTests: XCTestCase {
    func testOrientationCodes() throws {
        XCTAssertEqual(Orientation.ras.worldAxes, [0, 1, 2])
        XCTAssertEqual(Orientation.ras.signs, [1, 1, 1])
        let lps = try Orientation("lps")
        XCTAssertEqual(lps.worldAxes, [0, 1, 2])
        XCTAssertEqual(lps.signs, [-1, -1, 1])
        XCTAssertEqual(lps.code, "LPS")
        let pir = try Orientation("PIR")
        XCTAssertEqual(pir.worldAxes, [1, 2, 0])
        XCTAssertEqual(pir.signs, [-1, -1, 1])
        XCTAssertEqual(pir.code, "PIR")
        for bad in ["RAX", "RRS", "RA", "RASL", ""] {
            XCTAssertThrowsError(try Orientation(bad)) { error in
                XCTAssertTrue("\(error)".contains("orientation"), "\(error)")
            }
        }
    }

    // Expected codes from nibabel 5.4 (aff2axcodes).
    func testClosestOrientationMatchesNibabel() {
        XCTAssertEqual(Orientation(closestTo: .scaling([2, 3, 4])).code, "RAS")
        XCTAssertEqual(Orientation(closestTo: geoAffine([[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0]])).code, "LPS")
        XCTAssertEqual(Orientation(closestTo: geoAffine([[0, -3, 0, 5], [0, 0, 1, -7], [2, 0, 0, 9]])).code, "SLA")
        XCTAssertEqual(Orientation(closestTo: Self.obliqueAffine).code, "LPS")
        XCTAssertEqual(Orientation(closestTo: geoAffine([[1, 0.9, 0, 0], [0.2, 1, 0, 0], [0, 0.3, -1, 0]])).code, "RAI")
        XCTAssertEqual(Orientation(closestTo: geoAffine([[0.7, 0.7, 0, 0], [-0.7, 0.72, 0, 0], [0, 0, 1, 0]])).code, "RAS")
    }

    /// R_z(40) R_x(-30) diag(-0.8, -1.1, 2.5), translation (100, -50, 20) (as in the nibabel check).
    static var obliqueAffine: Affine {
        let c40 = cos(40 * Double.pi / 180), s40 = sin(40 * Double.pi / 180)
        let c30 = cos(-30 * Double.pi / 180), s30 = sin(-30 * Double.pi / 180)
        let rz: [Double] = [c40, -s40, 0, s40, c40, 0, 0, 0, 1]
        let rx: [Double] = [1, 0, 0, 0, c30, -s30, 0, s30, c30]
        let r = geoMul(rz, rx)
        let d = [-0.8, -1.1, 2.5]
        var rows: [[Double]] = []
        let t = [100.0, -50, 20]
        for row in 0..<3 { rows.append((0..<3).map { r[row * 3 + $0] * d[$0] } + [t[row]]) }
        return geoAffine(rows)
    }

    // as_closest_canonical of a 3x4x5 array holding i*20 + j*5 + k: shapes, affines and values from nibabel 5.4.
    func testReorientToCanonicalMatchesNibabel() throws {
        let value: (Int, Int, Int) -> Float = { Float($0 * 20 + $1 * 5 + $2) }
        let sla = geoVolume([3, 4, 5], affine: geoAffine([[0, -3, 0, 5], [0, 0, 1, -7], [2, 0, 0, 9]]), value)
        let r = sla.reoriented()
        XCTAssertEqual(r.shape, [4, 5, 3])
        geoAssertAffine(r.affine, geoAffine([[3, 0, 0, -4], [0, 1, 0, -7], [0, 0, 2, 9]]))
        XCTAssertEqual(Array(r.voxels.prefix(8)), [15, 10, 5, 0, 16, 11, 6, 1])
        XCTAssertEqual(r[1, 2, 2], 52)
        XCTAssertEqual(r.spacing, [3, 1, 2])
        XCTAssertEqual(r.orientation, .ras)

        let obl = geoVolume([3, 4, 5], affine: Self.obliqueAffine, value).reoriented()
        XCTAssertEqual(obl.shape, [3, 4, 5])
        geoAssertAffine(obl.affine, geoAffine([[0.612835554495, -0.612337439149, -0.803484512108, 100.611341208457],
                                               [0.514230087749, 0.729755342986, 0.957555553899, -53.217726204456],
                                               [0, -0.55, 2.165063509461, 21.65]]), accuracy: 1e-9)
        XCTAssertEqual(Array(obl.voxels.prefix(8)), [55, 35, 15, 50, 30, 10, 45, 25])
        XCTAssertEqual(obl[1, 2, 2], 27)

        let shear = geoVolume([3, 4, 5], affine: geoAffine([[1, 0.9, 0, 0], [0.2, 1, 0, 0], [0, 0.3, -1, 0]]), value).reoriented()
        geoAssertAffine(shear.affine, geoAffine([[1, 0.9, 0, 0], [0.2, 1, 0, 0], [0, 0.3, 1, -4]]))
        XCTAssertEqual(Array(shear.voxels.prefix(8)), [4, 24, 44, 9, 29, 49, 14, 34])
    }

    func testReorientationKeepsWorldPositionsAndInvertsExactly() throws {
        var rng = SeededGenerator(seed: 7, stream: [])
        let affine = geoAffine([[0, 0, -1.5, 12], [2.0, 0, 0, -30], [0, -0.7, 0, 4]])   // "ASL"-like permutation
        let v = geoVolume([5, 6, 7], affine: affine) { _, _, _ in Float.random(in: -1...1, using: &rng) }
        XCTAssertEqual(v.orientation.code, "AIL")
        let t = v.axisTransform(to: .ras)
        let r = try v.applying(t)
        XCTAssertEqual(r.orientation, .ras)
        XCTAssertEqual(r.shape, t.outputShape)
        // Every voxel keeps its world position.
        let inv = try XCTUnwrap(r.affine.inverse())
        for k in 0..<7 { for j in 0..<6 { for i in 0..<5 {
            let p = inv.apply(v.affine.apply([Double(i), Double(j), Double(k)])).map { Int($0.rounded()) }
            XCTAssertEqual(r[p[0], p[1], p[2]], v[i, j, k])
        } } }
        let back = try r.applying(t.inverse)
        XCTAssertEqual(back.shape, v.shape)
        XCTAssertEqual(back.voxels, v.voxels)
        geoAssertAffine(back.affine, v.affine, accuracy: 1e-12)
        XCTAssertEqual(back.spacing, v.spacing)
        // To another orientation and back.
        let lps = v.reoriented(to: .lps)
        XCTAssertEqual(lps.orientation.code, "LPS")
        XCTAssertEqual(lps.reoriented(to: v.orientation).voxels, v.voxels)
        XCTAssertThrowsError(try Volume(shape: [2, 2, 2], voxels: Array(repeating: 0, count: 8), spacing: [1, 1, 1]).applying(t))
    }

    func testDecodingRejectsMalformedGeometry() throws {
        let t = try AxisTransform(sourceAxes: [2, 0, 1], flips: [true, false, true], inputShape: [3, 4, 5])
        XCTAssertEqual(try JSONDecoder().decode(AxisTransform.self, from: JSONEncoder().encode(t)), t)
        XCTAssertEqual(try JSONDecoder().decode(Orientation.self, from: JSONEncoder().encode(Orientation.lps)), .lps)
        let bad: [(Decodable.Type, String)] = [
            (AxisTransform.self, #"{"sourceAxes":[0,0,1],"flips":[false,false,false],"inputShape":[2,2,2]}"#),
            (AxisTransform.self, #"{"sourceAxes":[0,1,2],"flips":[false,false,false],"inputShape":[2,2]}"#),
            (Orientation.self, #"{"worldAxes":[0,1,1],"signs":[1,1,1]}"#),
            (BoundingBox.self, #"{"lower":[0,0],"upper":[1,1,1]}"#),
            (RigidTransform.self, #"{"axis":[0],"angleDegrees":1,"translationMM":[1,2,3]}"#),
            (RigidTransform.self, #"{"rotationDegrees":[0,0,0],"translationMM":[1,2,3]}"#),
        ]
        for (type, json) in bad {
            XCTAssertThrowsError(try JSONDecoder().decode(type, from: Data(json.utf8)), json)
        }
        XCTAssertThrowsError(try t.apply([1, 2, 3]))
    }

    func testVoxelGridOverlapAndMatch() {
        let a = VoxelGrid(shape: [10, 10, 10], affine: .scaling([1, 1, 1]))
        XCTAssertTrue(a.overlaps(VoxelGrid(shape: [4, 4, 4], affine: .scaling([2, 2, 2], origin: [5, 5, 5]))))
        XCTAssertFalse(a.overlaps(VoxelGrid(shape: [4, 4, 4], affine: .scaling([1, 1, 1], origin: [20, 0, 0]))))
        XCTAssertTrue(a.matches(VoxelGrid(shape: [10, 10, 10], affine: .scaling([1, 1, 1], origin: [0, 0, 1e-6]))))
        XCTAssertFalse(a.matches(VoxelGrid(shape: [10, 10, 10], affine: .scaling([1, 1, 1.001]))))
        XCTAssertEqual(a.centre, [4.5, 4.5, 4.5])
    }

    // MARK: crop / pad

    func testNonZeroBoxOverChannels() throws {
        var a = Volume(shape: [6, 5, 4], voxels: Array(repeating: 0, count: 120), spacing: [1, 1, 1])
        var b = a
        a[1, 2, 1] = 3
        b[4, 1, 2] = -1
        b[2, 3, 2] = 5
        let box = try XCTUnwrap(try Cropping.nonZeroBox([a, b]))
        XCTAssertEqual(box, BoundingBox(lower: [1, 1, 1], upper: [5, 4, 3]))
        XCTAssertEqual(a.nonZeroBoundingBox(), BoundingBox(lower: [1, 2, 1], upper: [2, 3, 2]))
        XCTAssertNil(Volume(shape: [3, 3, 3], voxels: Array(repeating: 0, count: 27), spacing: [1, 1, 1]).nonZeroBoundingBox())
        XCTAssertThrowsError(try Cropping.nonZeroBox([a, Volume(shape: [2, 2, 2], voxels: Array(repeating: 0, count: 8), spacing: [1, 1, 1])]))
    }

    func testCropUncropAndPad() throws {
        let affine = geoAffine([[-2, 0, 0, 10], [0, 0, 3, -4], [0, 1, 0, 7]])
        let v = geoVolume([6, 5, 4], affine: affine) { Float($0 + 10 * $1 + 100 * $2) + 1 }
        let box = BoundingBox(lower: [1, 2, 0], upper: [4, 5, 3])
        let c = try v.cropped(to: box)
        XCTAssertEqual(c.shape, [3, 3, 3])
        XCTAssertEqual(c[0, 0, 0], v[1, 2, 0])
        XCTAssertEqual(c[2, 1, 2], v[3, 3, 2])
        // World positions are kept.
        XCTAssertEqual(c.affine.apply([2, 1, 2]), v.affine.apply([3, 3, 2]))
        let u = try c.uncropped(from: box, into: v.shape, fill: -5)
        XCTAssertEqual(u.shape, v.shape)
        geoAssertAffine(u.affine, v.affine)
        for k in 0..<4 { for j in 0..<5 { for i in 0..<6 {
            let inside = (1..<4).contains(i) && (2..<5).contains(j) && (0..<3).contains(k)
            XCTAssertEqual(u[i, j, k], inside ? v[i, j, k] : -5)
        } } }
        XCTAssertThrowsError(try v.cropped(to: BoundingBox(lower: [0, 0, 0], upper: [7, 1, 1]))) { error in
            XCTAssertTrue("\(error)".contains("crop box"), "\(error)")
        }
        XCTAssertThrowsError(try c.uncropped(from: BoundingBox(lower: [0, 0, 0], upper: [2, 3, 3]), into: v.shape))

        let (p, pbox) = try v.padded(toMinimumShape: [9, 5, 2], fill: 0)
        XCTAssertEqual(p.shape, [9, 5, 4])
        XCTAssertEqual(pbox, BoundingBox(lower: [1, 0, 0], upper: [7, 5, 4]))
        XCTAssertEqual(p[1, 0, 0], v[0, 0, 0])
        XCTAssertEqual(p[0, 0, 0], 0)
        XCTAssertEqual(p[8, 0, 0], 0)
        XCTAssertEqual(p.affine.apply([1, 0, 0]), v.affine.apply([0, 0, 0]))
        XCTAssertEqual(try p.cropped(to: pbox).voxels, v.voxels)
    }
}
