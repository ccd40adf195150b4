import Foundation

/// Intensity normalisation of one channel, as nnU-Net's schemes.
public enum ChannelNormalization: Codable, Sendable, Equatable {
    /// nnU-Net's CTNormalization: clip to [clipLow, clipHigh] (the dataset's foreground 0.5 and 99.5
    /// percentiles), then (x - mean) / max(std, 1e-8) with the dataset's foreground mean and
    /// (population) standard deviation of the unclipped foreground intensities.
    case ct(clipLow: Double, clipHigh: Double, mean: Double, std: Double)
    /// nnU-Net's ZScoreNormalization, statistics of each image itself: (x - mean) / max(std, 1e-8).
    /// With `nonZeroOnly`, mean and std come from the voxels inside the mask (the non-zero region of
    /// the case) and voxels outside it are set to 0.
    case zscore(nonZeroOnly: Bool)
    /// Values left as they are.
    case none

    /// The family of scheme a channel name asks for (nnU-Net's `channel_names` rule): "CT"
    /// (case-insensitive) -> `.ct`; "noNorm"/"none" -> `.none`; anything else -> per-image z-score.
    public enum Scheme: String, Codable, Sendable { case ct, zscore, none }

    public static func scheme(forChannelName name: String) -> Scheme {
        switch name.trimmingCharacters(in: .whitespaces).lowercased() {
        case "ct": return .ct
        case "nonorm", "none", "no_norm": return .none
        default: return .zscore
        }
    }

    /// The CT scheme from pooled foreground intensities: 0.5/99.5 percentiles (numpy's linear
    /// interpolation), mean and population std of all the values.
    public static func ct(foregroundIntensities values: [Float]) throws -> ChannelNormalization {
        guard !values.isEmpty else {
            throw PreprocessingError(field: "normalization", problem: "no foreground intensities to compute CT statistics from")
        }
        if let bad = values.first(where: { !$0.isFinite }) {
            throw PreprocessingError(field: "voxel values", problem: "foreground intensities contain a non-finite value (\(bad))")
        }
        let sorted = values.sorted()
        let (mean, std) = IntensityStatistics.meanStd(values)
        return .ct(clipLow: IntensityStatistics.percentile(sorted: sorted, 0.5), clipHigh: IntensityStatistics.percentile(sorted: sorted, 99.5),
                   mean: mean, std: std)
    }

    /// Normalises a volume. `mask` (one Bool per voxel) is the non-zero region used by
    /// `.zscore(nonZeroOnly: true)`; when nil, the volume's own non-zero voxels.
    public func apply(to volume: Volume, mask: [Bool]? = nil) throws -> Volume {
        var v = volume
        v.voxels = try apply(volume.voxels, mask: mask)
        return v
    }

    /// Normalises a buffer of voxel values (see `apply(to:mask:)`).
    public func apply(_ values: [Float], mask: [Bool]? = nil) throws -> [Float] {
        if let mask, mask.count != values.count {
            throw PreprocessingError(field: "normalization", problem: "mask of \(mask.count) voxels for a volume of \(values.count)")
        }
        switch self {
        case .none:
            return values
        case let .ct(lo, hi, mean, std):
            guard lo <= hi, [lo, hi, mean, std].allSatisfy({ $0.isFinite }) else {
                throw PreprocessingError(field: "normalization", problem: "invalid CT parameters clip [\(lo), \(hi)], mean \(mean), std \(std)")
            }
            let flo = Float(lo), fhi = Float(hi), fmean = Float(mean), scale = Float(1 / Swift.max(std, 1e-8))
            return values.map { (Swift.min(Swift.max($0, flo), fhi) - fmean) * scale }
        case let .zscore(nonZeroOnly):
            if !nonZeroOnly {
                let (mean, std) = IntensityStatistics.meanStd(values)
                let fmean = Float(mean), scale = Float(1 / Swift.max(std, 1e-8))
                return values.map { ($0 - fmean) * scale }
            }
            let m = mask ?? values.map { $0 != 0 }
            var sum = 0.0, count = 0
            for n in values.indices where m[n] { sum += Double(values[n]); count += 1 }
            if count == 0 { return [Float](repeating: 0, count: values.count) }
            let mean = sum / Double(count)
            var ss = 0.0
            for n in values.indices where m[n] { let d = Double(values[n]) - mean; ss += d * d }
            let std = (ss / Double(count)).squareRoot()
            let fmean = Float(mean), scale = Float(1 / Swift.max(std, 1e-8))
            var out = [Float](repeating: 0, count: values.count)
            for n in values.indices where m[n] { out[n] = (values[n] - fmean) * scale }
            return out
        }
    }
}

/// Plain statistics used by the normalisation schemes.
public enum IntensityStatistics {
    /// Mean and population standard deviation (two passes, in Double).
    public static func meanStd(_ values: [Float]) -> (mean: Double, std: Double) {
        guard !values.isEmpty else { return (0, 0) }
        var sum = 0.0
        for v in values { sum += Double(v) }
        let mean = sum / Double(values.count)
        var ss = 0.0
        for v in values { let d = Double(v) - mean; ss += d * d }
        return (mean, (ss / Double(values.count)).squareRoot())
    }

    /// The q-th percentile (0...100) of sorted values with linear interpolation between closest
    /// ranks (numpy's default): position q / 100 * (n - 1).
    public static func percentile(sorted: [Float], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = Swift.min(Swift.max(q, 0), 100) / 100 * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
        let f = pos - Double(lo)
        return Double(sorted[lo]) + f * (Double(sorted[hi]) - Double(sorted[lo]))
    }
}
