import Foundation
import Volumes

/// How hard the phantom is for an intensity-only classifier: per modality and class pair, the
/// overlap of the two classes' intensity histograms, and how well the best per-voxel classifier
/// that sees only intensities (a histogram Bayes classifier, equal priors) separates them, for
/// each channel alone and for all channels together.
///
/// Intensities are z-scored per case and channel (as preprocessing does) and pooled over cases.
/// Overlap is the Bhattacharyya coefficient sum_b sqrt(p_b q_b) of 48-bin histograms (1 = identical
/// distributions, 0 = disjoint). Accuracy is balanced (mean of the two per-class recalls) and
/// measured on the data the histograms were fitted on, i.e. it is what the best intensity-only
/// voxel classifier can reach (an optimistic bound). Single channels use 32 bins, the fused
/// classifier a joint histogram with fewer bins per channel (16 for 2 channels, 10 for 3), so any
/// advantage of fusion is not an artefact of finer bins.
public struct PhantomStatistics: Codable, Equatable, Sendable {
    /// The class pairs measured.
    public enum Pair: String, Codable, CaseIterable, Sendable {
        /// LV blood pool vs LV myocardium (the endocardial boundary).
        case lvMyo = "LV/Myo"
        /// LV myocardium vs background within `nearHeartMM` of the heart (the epicardial boundary).
        case myoBackground = "Myo/background-near-heart"
        /// LV vs RV blood pool (separated only by shape: same blood in every modality).
        case lvRV = "LV/RV"

        var classes: (Int, Int) {
            switch self {
            case .lvMyo: return (1, 2)
            case .myoBackground: return (2, 4)
            case .lvRV: return (1, 3)
            }
        }
    }

    public struct ChannelEntry: Codable, Equatable, Sendable {
        public var channel: String
        /// Bhattacharyya coefficient per pair (keyed by `Pair.rawValue`).
        public var overlap: [String: Double]
        /// Balanced accuracy of the intensity-only Bayes classifier per pair.
        public var accuracy: [String: Double]
    }

    public var caseCount: Int
    /// Background voxels within this distance (mm, box neighbourhood) of a labelled voxel are the
    /// "background near the heart".
    public var nearHeartMM: Double
    public var channels: [ChannelEntry]
    /// Balanced accuracy with all channels together, per pair.
    public var fusedAccuracy: [String: Double]

    public func overlap(channel: Int, _ pair: Pair) -> Double { channels[channel].overlap[pair.rawValue] ?? .nan }
    public func accuracy(channel: Int, _ pair: Pair) -> Double { channels[channel].accuracy[pair.rawValue] ?? .nan }
    public func fusedAccuracy(_ pair: Pair) -> Double { fusedAccuracy[pair.rawValue] ?? .nan }

    /// Generates `cases` cases (indices 0..<cases) and measures them.
    public static func measure(seed: UInt64, cases: Int, config: PhantomConfig, nearHeartMM: Double = 6) -> PhantomStatistics {
        let generated = (0..<cases).map { Phantom.generateCase(index: $0, seed: seed, config: config) }
        return measure(generated, nearHeartMM: nearHeartMM)
    }

    /// Measures the given cases (all must have the same number of channels).
    public static func measure(_ cases: [PhantomCase], nearHeartMM: Double = 6) -> PhantomStatistics {
        precondition(!cases.isEmpty, "need at least one case")
        let m = cases[0].channels.count
        // samples[class][channel]; class 0 unused, 1 LV, 2 Myo, 3 RV, 4 background near the heart.
        var all = [[[Float]]](repeating: [[Float]](repeating: [], count: m), count: 5)
        for c in cases {
            precondition(c.channels.count == m, "all cases need the same channels")
            let z = c.channels.map { zScored($0.voxels) }
            let near = nearHeartBackground(c.label, mm: nearHeartMM)
            for v in 0..<c.label.count {
                let l = Int(c.label.voxels[v])
                let cls = l > 0 ? l : (near[v] ? 4 : 0)
                guard cls > 0 else { continue }
                for ch in 0..<m { all[cls][ch].append(z[ch][v]) }
            }
        }

        var entries: [ChannelEntry] = []
        for ch in 0..<m {
            var ov: [String: Double] = [:], acc: [String: Double] = [:]
            for pair in Pair.allCases {
                let (a, b) = pair.classes
                ov[pair.rawValue] = bhattacharyya(all[a][ch], all[b][ch], bins: 48)
                acc[pair.rawValue] = bayesAccuracy([all[a][ch]], [all[b][ch]], bins: 32)
            }
            entries.append(ChannelEntry(channel: cases[0].channelNames[ch], overlap: ov, accuracy: acc))
        }
        var fused: [String: Double] = [:]
        let jointBins = m == 1 ? 32 : (m == 2 ? 16 : 10)
        for pair in Pair.allCases {
            let (a, b) = pair.classes
            fused[pair.rawValue] = bayesAccuracy(all[a], all[b], bins: jointBins)
        }
        return PhantomStatistics(caseCount: cases.count, nearHeartMM: nearHeartMM, channels: entries, fusedAccuracy: fused)
    }

    /// A Markdown table of the numbers, for notes and reports.
    public var markdown: String {
        var s = "Intensity overlap (Bhattacharyya coefficient, 1 = identical) and balanced accuracy of an intensity-only Bayes classifier, \(caseCount) cases, z-scored per case:\n\n"
        s += "| channel | " + Pair.allCases.map { "\($0.rawValue) overlap | \($0.rawValue) acc" }.joined(separator: " | ") + " |\n"
        s += "|---|" + String(repeating: "---|---|", count: Pair.allCases.count) + "\n"
        func f(_ x: Double) -> String { String(format: "%.3f", x) }
        for e in channels {
            s += "| \(e.channel) | " + Pair.allCases.map { "\(f(e.overlap[$0.rawValue] ?? .nan)) | \(f(e.accuracy[$0.rawValue] ?? .nan))" }.joined(separator: " | ") + " |\n"
        }
        s += "| fused | " + Pair.allCases.map { "- | \(f(fusedAccuracy[$0.rawValue] ?? .nan))" }.joined(separator: " | ") + " |\n"
        return s
    }

    // MARK: - helpers

    static func zScored(_ v: [Float]) -> [Float] {
        var sum = 0.0, sq = 0.0
        for x in v { sum += Double(x); sq += Double(x) * Double(x) }
        let n = Double(max(v.count, 1))
        let mean = sum / n
        let sd = max((sq / n - mean * mean), 0).squareRoot()
        let inv = sd > 0 ? Float(1 / sd) : 1
        return v.map { (Float(Double($0) - mean)) * inv }
    }

    /// Background voxels within `mm` (per-axis box) of a foreground voxel.
    static func nearHeartBackground(_ label: Volume, mm: Double) -> [Bool] {
        let n = label.shape
        var mask = label.voxels.map { $0 > 0 ? UInt8(1) : 0 }
        let strides = [1, n[0], n[0] * n[1]]
        for axis in 0..<3 {
            let r = Int((mm / label.spacing[axis]).rounded())
            guard r > 0, n[axis] > 1 else { continue }
            var out = mask
            let len = n[axis], st = strides[axis]
            let (o1, o2) = axis == 0 ? (1, 2) : (axis == 1 ? (0, 2) : (0, 1))
            for b in 0..<n[o2] {
                for a in 0..<n[o1] {
                    let base = a * strides[o1] + b * strides[o2]
                    // running count of foreground in the window [p - r, p + r]
                    var count = 0
                    for q in 0..<min(r, len) { count += Int(mask[base + q * st]) }
                    for p in 0..<len {
                        if p + r < len { count += Int(mask[base + (p + r) * st]) }
                        if p - r - 1 >= 0 { count -= Int(mask[base + (p - r - 1) * st]) }
                        out[base + p * st] = count > 0 ? 1 : 0
                    }
                }
            }
            mask = out
        }
        return (0..<label.count).map { label.voxels[$0] == 0 && mask[$0] == 1 }
    }

    static func robustRange(_ a: [Float], _ b: [Float]) -> (Float, Float) {
        let pooled = (a + b).sorted()
        guard !pooled.isEmpty else { return (0, 1) }
        let lo = pooled[Int(Double(pooled.count - 1) * 0.005)], hi = pooled[Int(Double(pooled.count - 1) * 0.995)]
        return hi > lo ? (lo, hi) : (lo, lo + 1)
    }

    /// Bhattacharyya coefficient of two samples' histograms on a common robust range.
    static func bhattacharyya(_ a: [Float], _ b: [Float], bins: Int) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return .nan }
        let (lo, hi) = robustRange(a, b)
        func hist(_ x: [Float]) -> [Double] {
            var h = [Double](repeating: 0, count: bins)
            let w = Float(bins) / (hi - lo)
            for v in x { h[min(max(Int((v - lo) * w), 0), bins - 1)] += 1 }
            return h.map { $0 / Double(x.count) }
        }
        let p = hist(a), q = hist(b)
        return zip(p, q).reduce(0) { $0 + ($1.0 * $1.1).squareRoot() }
    }

    /// Balanced accuracy of a (joint) histogram Bayes classifier with equal priors, fitted and
    /// measured on the same samples (one array per channel).
    static func bayesAccuracy(_ sa: [[Float]], _ sb: [[Float]], bins: Int) -> Double {
        let m = sa.count
        guard m > 0, !sa[0].isEmpty, !sb[0].isEmpty else { return .nan }
        let ranges = (0..<m).map { robustRange(sa[$0], sb[$0]) }
        var cells = 1
        for _ in 0..<m { cells *= bins }
        func cell(_ s: [[Float]], _ i: Int) -> Int {
            var c = 0
            for ch in 0..<m {
                let (lo, hi) = ranges[ch]
                let b = min(max(Int((s[ch][i] - lo) * Float(bins) / (hi - lo)), 0), bins - 1)
                c = c * bins + b
            }
            return c
        }
        var ha = [Double](repeating: 0.5, count: cells), hb = ha      // Laplace smoothing
        for i in 0..<sa[0].count { ha[cell(sa, i)] += 1 }
        for i in 0..<sb[0].count { hb[cell(sb, i)] += 1 }
        let na = ha.reduce(0, +), nb = hb.reduce(0, +)
        func recall(_ s: [[Float]], isA: Bool) -> Double {
            var right = 0
            for i in 0..<s[0].count {
                let c = cell(s, i)
                let saysA = ha[c] / na >= hb[c] / nb
                if saysA == isA { right += 1 }
            }
            return Double(right) / Double(s[0].count)
        }
        return (recall(sa, isA: true) + recall(sb, isA: false)) / 2
    }
}
