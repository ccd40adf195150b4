import Essentials
import Foundation
import Volumes

/// How one modality sees the tissues, and how it degrades them.
struct PhantomContrast {
    /// Mean intensity per `PhantomTissue` (relative units, before the per-case scale and offset).
    var means: [Double]
    /// Noise standard deviation = reference / (snr * snrFactor).
    var reference: Double
    var snrFactor: Double
    /// Blur relative to the configured partial-volume blur.
    var blurFactor: Double

    /// The nominal contrast of `modality`; `overlap` (0...1) pulls the confusing tissues towards the
    /// class they are confused with.
    static func nominal(_ modality: PhantomModality, overlap c: Double) -> PhantomContrast {
        func mix(_ separated: Double, _ confused: Double) -> Double { separated + (confused - separated) * c }
        var m = [Double](repeating: 0, count: PhantomTissue.count)
        func set(_ t: PhantomTissue, _ v: Double) { m[Int(t.rawValue)] = v }
        switch modality {
        case .bSSFP:
            // Blood bright, myocardium dark; liver, chest wall and mediastinum nearly as dark as
            // myocardium -> the epicardial boundary is weak. Fat bright, lungs dark.
            let myo = 0.28
            set(.air, 0); set(.lung, 0.07); set(.fat, 0.85)
            set(.muscle, mix(0.55, myo)); set(.soft, mix(0.62, myo)); set(.liver, mix(0.5, myo))
            set(.vessel, 0.92); set(.lvBlood, 1.0); set(.rvBlood, 0.98)
            set(.myo, myo); set(.scar, 0.31); set(.edema, 0.33); set(.rvWall, myo)
            return PhantomContrast(means: m, reference: 1.0, snrFactor: 1.0, blurFactor: 1.0)
        case .lge:
            // Healthy myocardium nulled, scar bright (pulled towards blood), blood mid-grey, RV blood
            // like LV blood -> the endocardial boundary vanishes where there is scar.
            let blood = 0.5
            set(.air, 0); set(.lung, 0.04); set(.fat, 0.5)
            set(.muscle, 0.24); set(.soft, 0.3); set(.liver, 0.36)
            set(.vessel, 0.46); set(.lvBlood, blood); set(.rvBlood, blood)
            set(.myo, 0.1); set(.scar, mix(0.95, blood)); set(.edema, 0.12); set(.rvWall, 0.1)
            return PhantomContrast(means: m, reference: 0.6, snrFactor: 0.9, blurFactor: 1.0)
        case .t2:
            // Black blood, fat suppressed: myocardium mid-bright, edema bright, blood dark-ish;
            // mediastinal soft tissue close to myocardium. Low SNR, blurrier.
            let myo = 0.45
            set(.air, 0); set(.lung, 0.05); set(.fat, 0.2)
            set(.muscle, 0.3); set(.soft, mix(0.75, myo)); set(.liver, 0.3)
            set(.vessel, 0.12); set(.lvBlood, 0.16); set(.rvBlood, 0.16)
            set(.myo, myo); set(.scar, 0.8); set(.edema, 0.75); set(.rvWall, 0.42)
            return PhantomContrast(means: m, reference: 0.75, snrFactor: 0.6, blurFactor: 1.4)
        }
    }
}

extension Phantom {
    /// Renders one modality of a case: tissue means (with per-case jitter) -> partial-volume blur
    /// -> optional rigid motion -> bias field -> Rician noise -> global scale and offset.
    static func image(tissue: [UInt8], shape: [Int], spacing: [Double], affine: Affine, contrast nominal: PhantomContrast,
                      config: PhantomConfig, motion: RigidTransform?, rng r: inout SeededGenerator) -> [Float] {
        var contrast = nominal
        // Per-case contrast jitter (each tissue's mean independently; air, tissue 0, stays 0).
        for t in 1..<contrast.means.count {
            contrast.means[t] = max(0, contrast.means[t] * (1 + config.contrastJitter * r.normal()))
        }
        let lut = contrast.means.map { Float($0) }
        var img = tissue.map { lut[Int($0)] }

        // Partial-volume blur, larger through-plane.
        let sigma = config.blurSigma * contrast.blurFactor
        if sigma > 0 {
            img = gaussianBlur(img, shape: shape, sigma: [sigma, sigma, sigma * config.throughPlaneBlurFactor])
        }
        if let motion = motion, !motion.isIdentity {
            guard let inv = affine.inverse() else { return img }
            // Edge replication outside the volume, so no artificial black band appears.
            img = Volume.resample(img, shape: shape, voxelMap: Volume.rigidVoxelMap(motion, affine: affine, inverse: inv, shape: shape),
                                  interpolation: .linear, border: .edge)
        }

        // Smooth multiplicative bias field (a coil property: fixed in scanner space).
        let bias = SmoothField(modes: 3, wavelengthMM: 120...260, rng: &r)
        let strength = config.biasStrength * r.uniform(0.6, 1.0)
        // Rician noise: magnitude of (signal + n1, n2).
        let sigmaNoise = contrast.reference / (config.snr * contrast.snrFactor)
        let lo = log(config.intensityScale[0]), hi = log(config.intensityScale[1])
        let scale = exp(r.uniform(lo, hi))
        let offset = r.uniform(config.intensityOffset[0], config.intensityOffset[1])
        var noise = SeededGenerator(seed: r.next(), stream: [])

        let nx = shape[0], ny = shape[1], nz = shape[2]
        let a = affine.m
        img.withUnsafeMutableBufferPointer { v in
            var idx = 0
            for k in 0..<nz {
                for j in 0..<ny {
                    let fj = Double(j), fk = Double(k)
                    let bx = a[1] * fj + a[2] * fk + a[3], by = a[5] * fj + a[6] * fk + a[7], bz = a[9] * fj + a[10] * fk + a[11]
                    for i in 0..<nx {
                        let fi = Double(i)
                        let gain = exp(strength * bias.value(a[0] * fi + bx, a[4] * fi + by, a[8] * fi + bz))
                        let s = Double(v[idx]) * gain
                        let (n1, n2) = noise.normalPair()
                        let re = s + sigmaNoise * n1, im = sigmaNoise * n2
                        v[idx] = Float(scale * (re * re + im * im).squareRoot() + offset)
                        idx += 1
                    }
                }
            }
        }
        return img
    }

    /// Separable Gaussian blur with per-axis sigma in voxels (edges replicated).
    static func gaussianBlur(_ src: [Float], shape: [Int], sigma: [Double]) -> [Float] {
        var data = src
        var tmp = [Float](repeating: 0, count: src.count)
        let n = shape
        let strides = [1, n[0], n[0] * n[1]]
        for axis in 0..<3 where sigma[axis] > 0.05 && n[axis] > 1 {
            let radius = max(1, Int((3 * sigma[axis]).rounded(.up)))
            var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma[axis] * sigma[axis]))) }
            let total = kernel.reduce(0, +)
            kernel = kernel.map { $0 / total }
            let len = n[axis], stride = strides[axis]
            // Lines along `axis`: iterate over all voxels whose coordinate on `axis` is 0.
            let (o1, o2) = axis == 0 ? (1, 2) : (axis == 1 ? (0, 2) : (0, 1))
            data.withUnsafeBufferPointer { s in
                tmp.withUnsafeMutableBufferPointer { d in
                    kernel.withUnsafeBufferPointer { kw in
                        for b in 0..<n[o2] {
                            for a in 0..<n[o1] {
                                let base = a * strides[o1] + b * strides[o2]
                                for p in 0..<len {
                                    var acc: Float = 0
                                    if p >= radius && p + radius < len {
                                        var q = base + (p - radius) * stride
                                        for t in 0..<kw.count { acc += kw[t] * s[q]; q += stride }
                                    } else {
                                        for t in 0..<kw.count {
                                            let q = min(max(p + t - radius, 0), len - 1)
                                            acc += kw[t] * s[base + q * stride]
                                        }
                                    }
                                    d[base + p * stride] = acc
                                }
                            }
                        }
                    }
                }
            }
            swap(&data, &tmp)
        }
        return data
    }
}
