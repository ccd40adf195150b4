import Essentials
import Foundation
import Volumes

/// Tissue classes the phantom renders (more than the labels: the background is not uniform).
enum PhantomTissue: UInt8, CaseIterable {
    case air = 0, lung, fat, muscle, soft, liver, vessel, lvBlood, rvBlood, myo, scar, edema, rvWall

    static let count = 13

    /// Segmentation label: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV blood pool.
    var label: UInt8 {
        switch self {
        case .lvBlood: return 1
        case .myo, .scar, .edema: return 2
        case .rvBlood: return 3
        default: return 0
        }
    }
}

/// A sum of a few plane waves: a smooth random scalar field in world space with values in [-1, 1].
struct SmoothField: Sendable {
    /// Per mode: wave vector (rad/mm) x3, phase, weight (weights sum to 1 in absolute value).
    var modes: [(kx: Double, ky: Double, kz: Double, phase: Double, weight: Double)] = []

    init() {}

    init(modes count: Int, wavelengthMM: ClosedRange<Double>, rng: inout SeededGenerator) {
        var raw: [Double] = []
        for _ in 0..<count {
            let dir = rng.unitVector()
            let k = 2 * Double.pi / rng.uniform(wavelengthMM.lowerBound, wavelengthMM.upperBound)
            let w = rng.uniform(0.3, 1)
            raw.append(w)
            modes.append((dir[0] * k, dir[1] * k, dir[2] * k, rng.uniform(0, 2 * .pi), w))
        }
        let total = raw.reduce(0, +)
        for i in modes.indices { modes[i].weight /= total }
    }

    @inline(__always) func value(_ x: Double, _ y: Double, _ z: Double) -> Double {
        var s = 0.0
        for m in modes { s += m.weight * sin(m.kx * x + m.ky * y + m.kz * z + m.phase) }
        return s
    }
}

/// Samples `tissue` at every voxel centre of the grid (x fastest): it gets the centre's world
/// position (x, y, z) and the displacement there of the smooth deformation, `amplitudeMM` times
/// `deform` (zero when the amplitude is 0), and returns the tissue code. Every phantom family
/// renders its anatomy through this one loop.
func renderTissue(shape: [Int], affine: Affine, deform: [SmoothField], amplitudeMM: Double,
                  _ tissue: (Double, Double, Double, (Double, Double, Double)) -> UInt8) -> [UInt8] {
    let nx = shape[0], ny = shape[1], nz = shape[2]
    var out = [UInt8](repeating: 0, count: nx * ny * nz)
    let a = affine.m
    out.withUnsafeMutableBufferPointer { o in
        var idx = 0
        for k in 0..<nz {
            for j in 0..<ny {
                for i in 0..<nx {
                    let fi = Double(i), fj = Double(j), fk = Double(k)
                    let x = a[0] * fi + a[1] * fj + a[2] * fk + a[3]
                    let y = a[4] * fi + a[5] * fj + a[6] * fk + a[7]
                    let z = a[8] * fi + a[9] * fj + a[10] * fk + a[11]
                    let d = amplitudeMM > 0
                        ? (amplitudeMM * deform[0].value(x, y, z), amplitudeMM * deform[1].value(x, y, z), amplitudeMM * deform[2].value(x, y, z))
                        : (0.0, 0.0, 0.0)
                    o[idx] = tissue(x, y, z, d)
                    idx += 1
                }
            }
        }
    }
    return out
}

/// An ellipsoid in a local frame whose third semi-axis differs on the two sides of the equator
/// (a blunt base and a pointed apex).
struct EggEllipsoid: Sendable {
    var a1: Double, a2: Double, apex: Double, base: Double

    /// Squared normalised radius: < 1 inside.
    @inline(__always) func q(_ u1: Double, _ u2: Double, _ u3: Double) -> Double {
        let c = u3 > 0 ? apex : base
        return (u1 * u1) / (a1 * a1) + (u2 * u2) / (a2 * a2) + (u3 * u3) / (c * c)
    }

    /// Grown by `d` mm on every side (approximately a parallel surface).
    func grown(_ d: Double) -> EggEllipsoid { EggEllipsoid(a1: a1 + d, a2: a2 + d, apex: apex + d, base: base + d) }
}

/// A myocardial scar (LGE enhancement; edema in T2 around it), described in the LV's own
/// cylindrical coordinates.
struct PhantomScar: Sendable {
    /// Centre direction in the short-axis plane (cos, sin of the angle from e1).
    var cosCentre: Double, sinCentre: Double
    /// Cosine of the angular half-width.
    var cosHalfWidth: Double
    /// Cosine of the angular half-width of the surrounding edema.
    var cosEdemaHalfWidth: Double
    /// Centre and half-extent along the long axis, in normalised height (-1 base ... 1 apex).
    var height: Double, halfHeight: Double
    /// Fraction of the wall thickness from the endocardium that is scarred (1 = transmural).
    var transmurality: Double
}

/// The random anatomy of one case: pose, shapes, deformation and surrounding tissues, all in mm.
struct PhantomAnatomy: Sendable {
    // Heart frame: e3 the LV long axis (towards the apex), e1 towards the RV, e2 = e3 x e1.
    var e1: [Double], e2: [Double], e3: [Double]
    var centre: [Double]
    var endo: EggEllipsoid
    var thickness: Double, thicknessAmplitude: Double, cosThicknessPhase: Double, sinThicknessPhase: Double
    var apexThicknessFactor: Double
    // RV (in the heart frame): centre offset and blood-pool ellipsoid; free wall thickness.
    var rvOffset: [Double]
    var rv: EggEllipsoid
    var rvWall: Double
    // Epicardial fat: a shell of this width where `fatField` exceeds `fatThreshold`.
    var fatWidth: Double, fatThreshold: Double
    var fatField: SmoothField
    var scars: [PhantomScar]
    var scarEdgeField: SmoothField
    // Deformation: one smooth field per world axis, amplitude in mm.
    var deform: [SmoothField]
    var deformMM: Double
    // Context (world frame, relative to `centre`).
    var anterior: [Double]          // unit vector in the axial plane pointing to the chest wall
    var skinDistance: Double, bodyRadius: Double, subcutaneousFat: Double, chestMuscle: Double
    var lungs: [(centre: [Double], axes: [Double])]
    var liverCentre: [Double], liverAxes: [Double]
    var aortaCentre: [Double], aortaRadius: Double, aortaDirection: [Double]

    static func sample(config: PhantomConfig, rng r: inout SeededGenerator) -> PhantomAnatomy {
        let s = config.anatomyScale

        // Pose: long axis tilted from +z by up to maxTilt, in a random azimuth.
        let tilt = r.uniform(0, config.maxTiltDegrees) * .pi / 180
        let azimuth = r.uniform(0, 2 * .pi)
        let e3 = [sin(tilt) * cos(azimuth), sin(tilt) * sin(azimuth), cos(tilt)]
        // The RV lies right-anterior of the LV (RAS: -x, +y), +-25 degrees.
        let psi = (150 + r.uniform(-25, 25)) * .pi / 180
        var v = [cos(psi), sin(psi), 0.0]
        let dot = v[0] * e3[0] + v[1] * e3[1] + v[2] * e3[2]
        v = (0..<3).map { v[$0] - dot * e3[$0] }
        let vn = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).squareRoot()
        let e1 = v.map { $0 / vn }
        let e2 = [e3[1] * e1[2] - e3[2] * e1[1], e3[2] * e1[0] - e3[0] * e1[2], e3[0] * e1[1] - e3[1] * e1[0]]

        // LV blood pool and myocardium.
        let a1 = r.uniform(12, 16) * s, a2 = r.uniform(12, 16) * s
        let apex = r.uniform(26, 33) * s
        let base = apex * r.uniform(0.5, 0.7)
        let endo = EggEllipsoid(a1: a1, a2: a2, apex: apex, base: base)
        let thickness = r.uniform(2.7, 5.0) * s
        let thicknessAmplitude = r.uniform(0, 0.25)
        let thicknessPhase = r.uniform(0, 2 * .pi)
        let apexThicknessFactor = r.uniform(0.7, 1.0)

        // RV: an ellipsoid offset towards e1, minus the LV: a crescent against the septum.
        let R = (a1 + a2) / 2 + thickness
        let d = R * r.uniform(0.25, 0.45)
        let extent = r.uniform(9, 15) * s                      // free-wall distance beyond the LV epicardium
        let rv1 = R - d + extent
        let rv2 = R * r.uniform(1.2, 1.5)
        let rvApex = apex * r.uniform(0.6, 0.85)
        let rvBase = base * r.uniform(0.95, 1.15)
        let rvOffset = [d, r.uniform(-3, 3) * s, -r.uniform(0, 0.15) * apex]
        let rv = EggEllipsoid(a1: rv1, a2: rv2, apex: rvApex, base: rvBase)
        let rvWall = r.uniform(2.0, 3.0) * s

        // Centre: the LV + RV composite roughly in the middle of the field of view.
        let jitter = [r.uniform(-4, 4) * s, r.uniform(-4, 4) * s, r.uniform(-2, 2) * s]
        let alongAxis = (apex - base) / 2
        let centre = (0..<3).map { jitter[$0] - e1[$0] * extent * 0.5 - e3[$0] * alongAxis }

        let fatField = SmoothField(modes: 3, wavelengthMM: (18 * s)...(35 * s), rng: &r)
        let fatWidth = r.uniform(2.0, 3.5) * s
        let fatThreshold = r.uniform(0.0, 0.3)

        var scars: [PhantomScar] = []
        if r.unit() < config.scarProbability {
            let n = 1 + r.below(3)
            for _ in 0..<n {
                let angle = r.uniform(0, 2 * .pi)
                let half = r.uniform(30, 80) * .pi / 180
                let edemaHalf = min(.pi * 0.999, half * r.uniform(1.3, 1.7))
                scars.append(PhantomScar(cosCentre: cos(angle), sinCentre: sin(angle), cosHalfWidth: cos(half),
                                         cosEdemaHalfWidth: cos(edemaHalf), height: r.uniform(-0.6, 0.7),
                                         halfHeight: r.uniform(0.25, 0.6), transmurality: r.uniform(0.4, 1.0)))
            }
        }
        let scarEdgeField = SmoothField(modes: 2, wavelengthMM: (10 * s)...(20 * s), rng: &r)

        let deformMM = config.deformationMM
        let deform = (0..<3).map { _ in SmoothField(modes: 3, wavelengthMM: (40 * s)...(90 * s), rng: &r) }

        // Context.
        let antAngle = (90 + r.uniform(-15, 15)) * .pi / 180
        let anterior = [cos(antAngle), sin(antAngle), 0]
        let skinDistance = r.uniform(30, 36) * s
        let bodyRadius = r.uniform(90, 140) * s
        let subcutaneousFat = r.uniform(3, 7) * s
        let chestMuscle = r.uniform(5, 9) * s

        // Left lung (+x) lateral to the LV, right lung (-x) beyond the RV.
        let lx = r.uniform(20, 26) * s
        let leftGap = r.uniform(1, 5) * s
        let leftLung = (centre: [R + leftGap + lx, r.uniform(-14, -4) * s, r.uniform(-10, 10) * s],
                        axes: [lx, r.uniform(30, 40) * s, r.uniform(50, 70) * s])
        let rx = r.uniform(20, 26) * s
        let rightGap = r.uniform(2, 6) * s
        let rightLung = (centre: [-(R + extent * 0.75 + rightGap + rx), r.uniform(-14, -4) * s, r.uniform(-10, 10) * s],
                         axes: [rx, r.uniform(30, 40) * s, r.uniform(50, 70) * s])
        // Liver: below the inferior wall (posterior, -y), slightly to the right, a thin gap away.
        let liverAxes = [r.uniform(35, 45) * s, r.uniform(18, 26) * s, r.uniform(35, 50) * s]
        let liverGap = r.uniform(1, 4) * s
        let liverCentre = [r.uniform(-16, -6) * s, -(R + liverGap + liverAxes[1]), r.uniform(-12, 0) * s]
        // Descending aorta: posterior-left, roughly along z.
        let aortaRadius = r.uniform(6, 9) * s
        let aortaCentre = [r.uniform(10, 18) * s, -(R + aortaRadius + r.uniform(3, 8) * s), 0]
        var ad = [r.uniform(-0.15, 0.15), r.uniform(-0.15, 0.15), 1]
        let adn = (ad[0] * ad[0] + ad[1] * ad[1] + 1).squareRoot()
        ad = ad.map { $0 / adn }

        return PhantomAnatomy(e1: e1, e2: e2, e3: e3, centre: centre, endo: endo, thickness: thickness,
                              thicknessAmplitude: thicknessAmplitude, cosThicknessPhase: cos(thicknessPhase),
                              sinThicknessPhase: sin(thicknessPhase), apexThicknessFactor: apexThicknessFactor,
                              rvOffset: rvOffset, rv: rv, rvWall: rvWall, fatWidth: fatWidth, fatThreshold: fatThreshold,
                              fatField: fatField, scars: scars, scarEdgeField: scarEdgeField, deform: deform,
                              deformMM: deformMM, anterior: anterior, skinDistance: skinDistance, bodyRadius: bodyRadius,
                              subcutaneousFat: subcutaneousFat, chestMuscle: chestMuscle, lungs: [leftLung, rightLung],
                              liverCentre: liverCentre, liverAxes: liverAxes, aortaCentre: aortaCentre,
                              aortaRadius: aortaRadius, aortaDirection: ad)
    }

    /// The tissue at (deformed) world point p, given relative to `centre`.
    @inline(__always) func tissue(_ px: Double, _ py: Double, _ pz: Double) -> PhantomTissue {
        // Heart frame coordinates.
        let u1 = e1[0] * px + e1[1] * py + e1[2] * pz
        let u2 = e2[0] * px + e2[1] * py + e2[2] * pz
        let u3 = e3[0] * px + e3[1] * py + e3[2] * pz
        let r2 = u1 * u1 + u2 * u2
        let rr = r2.squareRoot()
        // Myocardial thickness varies smoothly around the circumference.
        let cosPhase = rr > 1e-9 ? (u1 * cosThicknessPhase + u2 * sinThicknessPhase) / rr : 0
        let t = thickness * (1 + thicknessAmplitude * cosPhase)
        let epi = EggEllipsoid(a1: endo.a1 + t, a2: endo.a2 + t, apex: endo.apex + t * apexThicknessFactor, base: endo.base + t)
        let qEndo = endo.q(u1, u2, u3)
        if qEndo < 1 { return .lvBlood }
        let qEpi = epi.q(u1, u2, u3)
        if qEpi < 1 { return myocardium(u1, u2, u3, rr, qEndo, qEpi, px, py, pz) }

        let v1 = u1 - rvOffset[0], v2 = u2 - rvOffset[1], v3 = u3 - rvOffset[2]
        if rv.q(v1, v2, v3) < 1 { return .rvBlood }
        let rvOuter = rv.grown(rvWall)
        let qRVOuter = rvOuter.q(v1, v2, v3)
        if qRVOuter < 1 { return .rvWall }
        // Epicardial fat in a thin shell around the heart, in patches.
        if epi.grown(fatWidth).q(u1, u2, u3) < 1 || rvOuter.grown(fatWidth).q(v1, v2, v3) < 1 {
            if fatField.value(px, py, pz) > fatThreshold { return .fat }
        }
        return context(px, py, pz)
    }

    @inline(__always) func myocardium(_ u1: Double, _ u2: Double, _ u3: Double, _ rr: Double, _ qEndo: Double, _ qEpi: Double,
                                      _ px: Double, _ py: Double, _ pz: Double) -> PhantomTissue {
        if scars.isEmpty { return .myo }
        let h = u3 > 0 ? u3 / endo.apex : u3 / endo.base
        // Depth through the wall: 0 at the endocardium, 1 at the epicardium.
        let re = qEndo.squareRoot() - 1, rp = 1 - qEpi.squareRoot()
        let depth = re / max(re + rp, 1e-9)
        let wobble = 0.12 * scarEdgeField.value(px, py, pz)
        var inEdema = false
        for sc in scars {
            let c = rr > 1e-9 ? (u1 * sc.cosCentre + u2 * sc.sinCentre) / rr : 1
            guard abs(h - sc.height) < sc.halfHeight * 1.3 + wobble else { continue }
            if c > sc.cosHalfWidth - wobble && abs(h - sc.height) < sc.halfHeight + wobble && depth < sc.transmurality + wobble {
                return .scar
            }
            if c > sc.cosEdemaHalfWidth - wobble { inEdema = true }
        }
        return inEdema ? .edema : .myo
    }

    /// Tissue outside the heart.
    @inline(__always) func context(_ px: Double, _ py: Double, _ pz: Double) -> PhantomTissue {
        // Body outline: a gently curved anterior surface; inside: fat, chest-wall muscle, soft tissue.
        let da = px * anterior[0] + py * anterior[1]
        let dp = -px * anterior[1] + py * anterior[0]
        let depth = skinDistance - dp * dp / (2 * bodyRadius) - da
        if depth <= 0 { return .air }
        // Aorta (a tube).
        let ax = px - aortaCentre[0], ay = py - aortaCentre[1], az = pz - aortaCentre[2]
        let along = ax * aortaDirection[0] + ay * aortaDirection[1] + az * aortaDirection[2]
        let ox = ax - along * aortaDirection[0], oy = ay - along * aortaDirection[1], oz = az - along * aortaDirection[2]
        if ox * ox + oy * oy + oz * oz < aortaRadius * aortaRadius { return .vessel }
        for lung in lungs {
            let x = (px - lung.centre[0]) / lung.axes[0], y = (py - lung.centre[1]) / lung.axes[1], z = (pz - lung.centre[2]) / lung.axes[2]
            if x * x + y * y + z * z < 1 { return .lung }
        }
        let lx = (px - liverCentre[0]) / liverAxes[0], ly = (py - liverCentre[1]) / liverAxes[1], lz = (pz - liverCentre[2]) / liverAxes[2]
        if lx * lx + ly * ly + lz * lz < 1 { return .liver }
        if depth < subcutaneousFat { return .fat }
        if depth < subcutaneousFat + chestMuscle { return .muscle }
        return .soft
    }

    /// Renders the tissue map on the voxel grid (x fastest), sampling the deformed anatomy at voxel
    /// centres.
    func render(shape: [Int], affine: Affine) -> [UInt8] {
        renderTissue(shape: shape, affine: affine, deform: deform, amplitudeMM: deformMM) { x, y, z, d in
            tissue(x - centre[0] + d.0, y - centre[1] + d.1, z - centre[2] + d.2).rawValue
        }
    }

    /// Makes the label geometry consistent: every LV blood voxel's 6-neighbours are LV blood or
    /// myocardium (a neighbour that is anything else becomes myocardium), and no LV blood voxel lies
    /// on the grid's border.
    static func closeMyocardium(_ tissue: inout [UInt8], shape: [Int]) {
        let nx = shape[0], ny = shape[1], nz = shape[2]
        let lv = PhantomTissue.lvBlood.rawValue
        func isMyo(_ t: UInt8) -> Bool { PhantomTissue(rawValue: t)!.label == 2 }
        // Border LV voxels become myocardium first (they cannot be enclosed).
        for k in 0..<nz {
            for j in 0..<ny {
                for i in 0..<nx where tissue[i + nx * (j + ny * k)] == lv {
                    if i == 0 || j == 0 || (k == 0 && nz > 1) || i == nx - 1 || j == ny - 1 || (k == nz - 1 && nz > 1) {
                        tissue[i + nx * (j + ny * k)] = PhantomTissue.myo.rawValue
                    }
                }
            }
        }
        let steps = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
        for k in 0..<nz {
            for j in 0..<ny {
                for i in 0..<nx where tissue[i + nx * (j + ny * k)] == lv {
                    for (di, dj, dk) in steps {
                        let a = i + di, b = j + dj, c = k + dk
                        guard a >= 0, b >= 0, c >= 0, a < nx, b < ny, c < nz else { continue }
                        let n = a + nx * (b + ny * c)
                        let t = tissue[n]
                        if t != lv && !isMyo(t) { tissue[n] = PhantomTissue.myo.rawValue }
                    }
                }
            }
        }
    }
}
