import Foundation

/// Voxel counts of a prediction/reference pair, from which the overlap metrics follow.
public struct OverlapCounts: Equatable, Sendable {
    /// |A|: foreground voxels of the prediction.
    public var prediction: Int
    /// |B|: foreground voxels of the reference.
    public var reference: Int
    /// |A∩B|.
    public var intersection: Int

    public init(prediction: Int, reference: Int, intersection: Int) {
        self.prediction = prediction
        self.reference = reference
        self.intersection = intersection
    }

    /// |A∪B| = |A| + |B| - |A∩B|.
    public var union: Int { prediction + reference - intersection }

    /// Dice = 2|A∩B| / (|A| + |B|) as `medpy.metric.binary.dc`; 1 when both masks are empty.
    public var dice: Double {
        let denominator = prediction + reference
        return denominator == 0 ? 1 : 2.0 * Double(intersection) / Double(denominator)
    }

    /// Jaccard = |A∩B| / |A∪B| as `medpy.metric.binary.jc`; 1 when both masks are empty.
    public var jaccard: Double {
        let u = union
        return u == 0 ? 1 : Double(intersection) / Double(u)
    }
}
