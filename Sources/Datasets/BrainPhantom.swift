import Essentials
import Foundation
import Volumes

/// Tissues of the brain phantom (`PhantomFamily.brain`).
enum BrainTissue: UInt8, CaseIterable {
    case air = 0, scalp, outerCSF, grey, white, ventricle, lesion

    static var count: Int { allCases.count }

    /// Segmentation label: 0 background (air, scalp and skull, sulcal CSF, grey matter),
    /// 1 ventricles, 2 white matter, 3 lesions.
    var label: UInt8 {
        switch self {
        case .ventricle: return 1
        case .white: return 2
        case .lesion: return 3
        default: return 0
        }
    }
}

/// The anatomy of one brain case, in millimetres about the grid centre: an ellipsoidal head (scalp
/// and skull, a thin rim of CSF, the brain), a cortical grey-matter ribbon of varying thickness
/// over the white matter (a smooth random field folds its inner surface), two lateral ventricles
/// (elongated, slightly curved ellipsoids, scaled per case as by atrophy) and 0 to several small
/// white-matter lesions, most of them periventricular as in multiple sclerosis.
struct BrainAnatomy: Sendable {
    /// Semi-axes of the head (x left-right, y anterior-posterior, z inferior-superior).
    var head: [Double]
    var skullMM: Double
    var csfMM: Double
    /// Mean cortical thickness and the amplitude of its folding.
    var cortexMM: Double
    var foldMM: Double
    var folding: SmoothField
    var deform: [SmoothField]
    var deformMM: Double
    /// Lateral ventricles: centre offsets (x) and semi-axes, shared by both sides.
    var ventricleOffsetMM: Double
    var ventricleAxes: [Double]
    var ventricleBendMM: Double
    /// Lesions: centres and semi-axes (ellipsoids aligned with the grid).
    var lesions: [(centre: [Double], axes: [Double])]

    static func sample(config: PhantomConfig, rng r: inout SeededGenerator) -> BrainAnatomy {
        let head = [r.uniform(66, 74), r.uniform(82, 90), r.uniform(60, 66)]
        let atrophy = r.uniform(0.8, 1.5)
        var anatomy = BrainAnatomy(
            head: head, skullMM: r.uniform(6, 8), csfMM: r.uniform(2, 4), cortexMM: r.uniform(5, 7), foldMM: r.uniform(7, 11),
            folding: SmoothField(modes: 8, wavelengthMM: 20...45, rng: &r),
            deform: (0..<3).map { _ in SmoothField(modes: 3, wavelengthMM: 80...160, rng: &r) }, deformMM: config.deformationMM,
            ventricleOffsetMM: r.uniform(8, 11) * min(atrophy, 1.2),
            ventricleAxes: [r.uniform(5, 7.5) * atrophy, r.uniform(24, 32), r.uniform(9, 13) * atrophy],
            ventricleBendMM: r.uniform(2, 5), lesions: [])
        let (low, high) = (config.lesionCount[0], config.lesionCount[1])
        let count = low + r.below(high - low + 1)
        var attempts = 0
        while anatomy.lesions.count < count && attempts < 400 {
            attempts += 1
            let periventricular = r.uniform(0, 1) < 0.7
            var centre: [Double]
            if periventricular {
                // Next to a ventricle: its surface point in a random direction, pushed outwards.
                let side: Double = r.uniform(0, 1) < 0.5 ? -1 : 1
                let u = r.unitVector()
                let a = anatomy.ventricleAxes
                let push = r.uniform(1.5, 6)
                centre = [side * anatomy.ventricleOffsetMM + u[0] * (a[0] + push), u[1] * (a[1] + push), u[2] * (a[2] + push)]
            } else {
                centre = [r.uniform(-0.6, 0.6) * head[0], r.uniform(-0.6, 0.6) * head[1], r.uniform(-0.5, 0.5) * head[2]]
            }
            let radius = r.uniform(config.lesionRadiusMM[0], config.lesionRadiusMM[1])
            let axes = (0..<3).map { _ in radius * r.uniform(0.7, 1.3) }
            // Lesions lie in white matter (its centre at least), not in a ventricle.
            let t = anatomy.baseTissue(centre[0], centre[1], centre[2])
            if t == .white { anatomy.lesions.append((centre, axes)) }
        }
        return anatomy
    }

    /// The tissue at p without lesions.
    func baseTissue(_ x: Double, _ y: Double, _ z: Double) -> BrainTissue {
        // Normalised radius of the head ellipsoid, and the depth below its surface in mm (first order).
        let rh = ((x / head[0]) * (x / head[0]) + (y / head[1]) * (y / head[1]) + (z / head[2]) * (z / head[2])).squareRoot()
        if rh >= 1 { return .air }
        let meanAxis = (head[0] + head[1] + head[2]) / 3
        let depth = (1 - rh) * meanAxis
        if depth < skullMM { return .scalp }
        if depth < skullMM + csfMM { return .outerCSF }
        // The cortex: thicker where the folding field is high (sulci reach into white matter).
        let cortex = cortexMM + foldMM * (folding.value(x, y, z) + 1) / 2
        if depth < skullMM + csfMM + cortex { return .grey }
        // Lateral ventricles: curved along y (the body bends downwards at both ends).
        let a = ventricleAxes
        let bend = ventricleBendMM * (y / a[1]) * (y / a[1])
        for side in [-1.0, 1.0] {
            let dx = (x - side * ventricleOffsetMM) / a[0], dy = y / a[1], dz = (z + bend) / a[2]
            if dx * dx + dy * dy + dz * dz < 1 { return .ventricle }
        }
        return .white
    }

    func tissue(_ x: Double, _ y: Double, _ z: Double) -> BrainTissue {
        // Lesions replace white matter only.
        let base = baseTissue(x, y, z)
        guard base == .white else { return base }
        for lesion in lesions {
            let c = lesion.centre, a = lesion.axes
            let dx = (x - c[0]) / a[0], dy = (y - c[1]) / a[1], dz = (z - c[2]) / a[2]
            if dx * dx + dy * dy + dz * dz < 1 { return .lesion }
        }
        return base
    }

    func render(shape: [Int], affine: Affine) -> [UInt8] {
        renderTissue(shape: shape, affine: affine, deform: deform, amplitudeMM: deformMM) { x, y, z, d in
            tissue(x + d.0, y + d.1, z + d.2).rawValue
        }
    }
}

extension PhantomContrast {
    /// The brain phantom's channels: 0 T1-weighted (white matter bright, grey darker, CSF dark;
    /// lesions hypointense, pulled towards grey matter by `overlap`), 1 FLAIR (CSF nulled, grey
    /// matter brighter than white, lesions brightest, pulled a third as far towards grey matter;
    /// a little blurrier), 2 T2-weighted (CSF brightest, lesions bright like CSF and grey matter).
    /// Neither channel alone separates lesions from grey matter at the defaults; together they do
    /// better, and periventricular lesions border CSF that FLAIR nulls and T2 brightens.
    static func brain(channel: Int, overlap c: Double) -> PhantomContrast {
        func mix(_ separated: Double, _ confused: Double) -> Double { separated + (confused - separated) * c }
        var m = [Double](repeating: 0, count: BrainTissue.count)
        func set(_ t: BrainTissue, _ v: Double) { m[Int(t.rawValue)] = v }
        switch channel {
        case 0:
            let grey = 0.58
            set(.air, 0); set(.scalp, 0.9); set(.outerCSF, 0.16); set(.grey, grey); set(.white, 0.84)
            set(.ventricle, 0.12); set(.lesion, mix(0.38, grey))
            return PhantomContrast(means: m, reference: 0.6, snrFactor: 1.0, blurFactor: 1.0)
        case 1:
            // FLAIR hyperintensity is what lesions are read by: `overlap` pulls them only a third of
            // the way towards grey matter (1.0 -> 0.91 at the default 0.8), leaving a visible but
            // noisy margin; T1 alone hardly tells them from grey matter.
            let grey = 0.66
            set(.air, 0); set(.scalp, 0.5); set(.outerCSF, 0.07); set(.grey, grey); set(.white, 0.5)
            set(.ventricle, 0.05); set(.lesion, 1.0 + (grey - 1.0) * c / 3)
            return PhantomContrast(means: m, reference: 0.6, snrFactor: 0.8, blurFactor: 1.15)
        default:
            let csf = 1.0
            set(.air, 0); set(.scalp, 0.45); set(.outerCSF, csf); set(.grey, 0.62); set(.white, 0.45)
            set(.ventricle, csf); set(.lesion, mix(0.85, 0.62))
            return PhantomContrast(means: m, reference: 0.7, snrFactor: 0.7, blurFactor: 1.2)
        }
    }
}

enum BrainPhantom {
    /// Label names in value order.
    static let labelNames = ["background", "ventricles", "WM", "lesion"]
    /// Channel names in channel order.
    static let channelNames = ["T1", "FLAIR", "T2"]

    /// The anatomy and label map of a case (the channels are imaged by `Phantom.generateCase`).
    static func tissue(index: Int, seed: UInt64, config: PhantomConfig) -> (tissue: [UInt8], labels: [Float], hasLesions: Bool) {
        var anatomyRNG = SeededGenerator(seed: seed, stream: [UInt64(index), 0])
        let anatomy = BrainAnatomy.sample(config: config, rng: &anatomyRNG)
        let tissue = anatomy.render(shape: config.shape, affine: config.affine)
        return (tissue, tissue.map { Float(BrainTissue(rawValue: $0)!.label) }, !anatomy.lesions.isEmpty)
    }
}
