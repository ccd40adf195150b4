import Datasets
import Essentials
import Foundation
import Volumes

/// What the planner knows about a dataset: per case the shape and spacing after reorientation
/// and cropping to the non-zero box, per channel intensity statistics, per class the fraction of
/// labelled voxels, and the dataset's preprocessing statistics (median spacing, normalisation).
///
/// Axes are the volume's (i, j, k) after reorientation to RAS, as `PreprocessingPlan` uses them;
/// the network's tensor order (D, H, W) is (k, j, i).
public struct DatasetFingerprint: Codable, Sendable, Equatable {
    public struct CaseShape: Codable, Sendable, Equatable {
        public var name: String
        /// Shape after reorientation and cropping (i, j, k).
        public var croppedShape: [Int]
        /// Spacing after reorientation, mm (i, j, k).
        public var spacing: [Double]
    }

    /// Statistics of one channel's voxels inside the labelled foreground (label > 0) of the cases
    /// that have a label on the channel's grid, else inside its non-zero region; at most
    /// `samplesPerCase` voxels per case (an even stride, deterministic).
    public struct IntensityStatistics: Codable, Sendable, Equatable {
        public var channel: String
        public var mean: Double
        public var std: Double
        public var min: Double
        public var max: Double
        public var percentile00_5: Double
        public var median: Double
        public var percentile99_5: Double
        /// How the dataset normalises this channel (from the preprocessing statistics).
        public var normalization: String
    }

    public static let samplesPerCase = 10_000

    public var cases: [CaseShape]
    public var intensities: [IntensityStatistics]
    /// Class index -> fraction of the cropped voxels of the labelled cases with that class.
    public var classFractions: [String: Double]
    public var classNames: [String]
    public var channelNames: [String]
    /// Median spacing (i, j, k) and the normalisation, as `PreprocessingPlan.make` computes them.
    public var preprocessing: PreprocessingPlan

    /// Largest / smallest median spacing.
    public var anisotropy: Double {
        let s = medianSpacing
        return (s.max() ?? 1) / (s.min() ?? 1)
    }

    public var medianSpacing: [Double] { (0..<3).map { a in Self.percentile(cases.map { $0.spacing[a] }, 50) } }
    public var medianCroppedShape: [Double] { (0..<3).map { a in Self.percentile(cases.map { Double($0.croppedShape[a]) }, 50) } }

    /// Linear-interpolated percentile (numpy's default), p in [0, 100].
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        let position = p / 100 * Double(s.count - 1)
        let lo = Int(position.rounded(.down)), hi = Swift.min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (position - Double(lo))
    }

    /// Reads every labelled and unlabelled case of `layout` (on all cores).
    public static func make(layout: DatasetLayout) throws -> DatasetFingerprint {
        let channelNames = try layout.description.orderedChannelNames()
        let labelNames = try layout.description.orderedLabelNames()
        let allowed = Set(labelNames.indices)
        let labelled = try Parallel.map(layout.labeled) { try DatasetLoading.read($0, withLabel: true, allowedLabels: allowed) }
        let unlabelled = try Parallel.map(layout.unlabeled) { try DatasetLoading.read($0, withLabel: false, allowedLabels: allowed) }
        return try make(cases: labelled + unlabelled, channelNames: channelNames, classNames: labelNames)
    }

    /// The fingerprint of cases already read.
    public static func make(cases: [CaseVolumes], channelNames: [String], classNames: [String]) throws -> DatasetFingerprint {
        let preprocessing = try PreprocessingPlan.make(cases: cases, channelNames: channelNames)
        var shapes: [CaseShape] = []
        var classCounts = [Double](repeating: 0, count: classNames.count)
        var labelledVoxels = 0.0
        var samples = [[Float]](repeating: [], count: channelNames.count)
        for c in cases {
            guard let reference = c.channels.firstIndex(where: { $0 != nil }), let ref = c.channels[reference] else {
                throw SegmentationError.incompatibleData("\(c.name): no channel is present")
            }
            // The case's own spacing as target: the crop box and orientation are what the plan's
            // steps give, without resampling to another grid.
            let orientation = ref.axisTransform(to: .ras)
            let spacing = orientation.sourceAxes.map { ref.affine.spacing[$0] }
            var own = preprocessing
            own.targetSpacing = spacing
            let prepared = try own.apply(c)
            shapes.append(CaseShape(name: c.name, croppedShape: prepared.record.croppedShape, spacing: spacing))
            if let label = prepared.label {
                for v in label.voxels { let k = Int(v); if k >= 0 && k < classCounts.count { classCounts[k] += 1 } }
                labelledVoxels += Double(label.count)
            }
            for (m, channel) in c.channels.enumerated() {
                guard let channel else { continue }
                let mask: [Int]
                if let label = c.label, label.shape == channel.shape, label.voxels.contains(where: { $0 > 0 }) {
                    mask = label.voxels.indices.filter { label.voxels[$0] > 0 }
                } else {
                    mask = channel.voxels.indices.filter { channel.voxels[$0] != 0 }
                }
                let stride = Swift.max(1, (mask.count + samplesPerCase - 1) / samplesPerCase)
                for n in Swift.stride(from: 0, to: mask.count, by: stride) { samples[m].append(channel.voxels[mask[n]]) }
            }
        }
        let intensities = channelNames.indices.map { m -> IntensityStatistics in
            let values = samples[m].map(Double.init)
            let mean = values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
            let variance = values.isEmpty ? .nan : values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            return IntensityStatistics(channel: channelNames[m], mean: mean, std: variance.squareRoot(), min: values.min() ?? .nan,
                                       max: values.max() ?? .nan, percentile00_5: percentile(values, 0.5), median: percentile(values, 50),
                                       percentile99_5: percentile(values, 99.5),
                                       normalization: DatasetLoading.describe(preprocessing.normalization[m]))
        }
        var fractions: [String: Double] = [:]
        for (k, count) in classCounts.enumerated() { fractions[String(k)] = labelledVoxels > 0 ? count / labelledVoxels : 0 }
        return DatasetFingerprint(cases: shapes, intensities: intensities, classFractions: fractions, classNames: classNames,
                                  channelNames: channelNames, preprocessing: preprocessing)
    }
}
