import Foundation

/// Entry points: metrics of binary masks and of label maps (see `BinaryMetrics` for the definitions).
///
/// Volumes are flat arrays with shape (nx, ny, nz), x fastest (voxel (i, j, k) at i + nx*(j + ny*k));
/// 1- and 2-axis shapes are accepted too. `spacing` has one positive entry per axis (mm).
///
/// Performance: one parallel pass counts the voxels and finds the bounding box of the union of both
/// masks; the surfaces and the two distance transforms are computed only inside that box grown by one
/// voxel (clipped to the volume). This gives the uncropped result: a 6-neighbour of a foreground voxel
/// that falls outside the grown box lies outside the volume (so the voxel is a border voxel either way),
/// a voxel not on the volume border keeps all its neighbours, and every surface voxel, hence every
/// nearest surface voxel, lies inside the box. (The box itself would already do; the margin makes the
/// argument local.) Distances agree with the uncropped computation up to the last bits of rounding.
public enum SegmentationMetrics {
    // MARK: Binary masks

    /// Metrics of a binary prediction against a binary reference.
    public static func binary(prediction: UnsafeBufferPointer<Bool>, reference: UnsafeBufferPointer<Bool>,
                              shape: [Int], spacing: [Double]) -> BinaryMetrics {
        evaluate(prediction, reference, shape: shape, spacing: spacing) { $0 }.metrics
    }

    /// Metrics of a binary prediction against a binary reference given as bytes (nonzero = foreground).
    public static func binary(prediction: UnsafeBufferPointer<UInt8>, reference: UnsafeBufferPointer<UInt8>,
                              shape: [Int], spacing: [Double]) -> BinaryMetrics {
        evaluate(prediction, reference, shape: shape, spacing: spacing) { $0 != 0 }.metrics
    }

    /// Metrics of a binary prediction against a binary reference.
    public static func binary(prediction: [Bool], reference: [Bool], shape: [Int], spacing: [Double]) -> BinaryMetrics {
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in binary(prediction: p, reference: r, shape: shape, spacing: spacing) }
        }
    }

    /// Metrics of a binary prediction against a binary reference given as bytes (nonzero = foreground).
    public static func binary(prediction: [UInt8], reference: [UInt8], shape: [Int], spacing: [Double]) -> BinaryMetrics {
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in binary(prediction: p, reference: r, shape: shape, spacing: spacing) }
        }
    }

    /// The directed surface distances of two binary masks, or `nil` when either mask is empty.
    public static func surfaceDistances(prediction: [Bool], reference: [Bool], shape: [Int],
                                        spacing: [Double]) -> SurfaceDistances? {
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in
                evaluate(p, r, shape: shape, spacing: spacing) { $0 }.distances
            }
        }
    }

    // MARK: Label maps

    /// Metrics of every label in `labels` (foreground = voxels equal to the label) of a label map.
    public static func perClass<L: BinaryInteger>(
        prediction: UnsafeBufferPointer<L>, reference: UnsafeBufferPointer<L>,
        shape: [Int], spacing: [Double], labels: [Int]
    ) -> [Int: BinaryMetrics] {
        var result: [Int: BinaryMetrics] = [:]
        for label in labels {
            // A label the element type cannot hold matches no voxel.
            let value = L(exactly: label)
            result[label] = evaluate(prediction, reference, shape: shape, spacing: spacing) { $0 == value }.metrics
        }
        return result
    }

    /// Metrics of every label in `labels` (foreground = voxels equal to the label) of a label map.
    public static func perClass<L: BinaryInteger>(
        prediction: [L], reference: [L], shape: [Int], spacing: [Double], labels: [Int]
    ) -> [Int: BinaryMetrics] {
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in
                perClass(prediction: p, reference: r, shape: shape, spacing: spacing, labels: labels)
            }
        }
    }

    /// `perClass` packaged as one case of an evaluation report (class keys are the labels as strings).
    public static func evaluateCase<L: BinaryInteger>(
        name: String, prediction: [L], reference: [L], shape: [Int], spacing: [Double], labels: [Int]
    ) -> CaseEvaluation {
        CaseEvaluation(caseName: name,
                       perClass: perClass(prediction: prediction, reference: reference,
                                          shape: shape, spacing: spacing, labels: labels))
    }

    // MARK: Core

    /// Counts, crops (unless `crop` is false: tests compare both) and measures one pair of masks.
    static func evaluate<T>(
        _ prediction: UnsafeBufferPointer<T>, _ reference: UnsafeBufferPointer<T>,
        shape: [Int], spacing: [Double], crop: Bool = true, isForeground: (T) -> Bool
    ) -> (metrics: BinaryMetrics, distances: SurfaceDistances?) {
        let grid = Grid3(shape)
        let sp = normalizedSpacing(spacing, axes: shape.count)
        let (counts, union) = scanPair(prediction, reference, grid: grid, isForeground: isForeground)
        let predictionEmpty = counts.prediction == 0, referenceEmpty = counts.reference == 0
        func result(_ d: Double?, hd: Double?, asd: Double?, assd: Double?) -> BinaryMetrics {
            BinaryMetrics(dice: counts.dice, jaccard: counts.jaccard, hd95: d, hd: hd, asd: asd, assd: assd,
                          predictionEmpty: predictionEmpty, referenceEmpty: referenceEmpty)
        }
        if predictionEmpty && referenceEmpty { return (result(0, hd: 0, asd: 0, assd: 0), nil) }
        if predictionEmpty || referenceEmpty { return (result(nil, hd: nil, asd: nil, assd: nil), nil) }

        let box = crop ? union!.expanded(by: 1, within: grid) : VoxelBox.whole(grid)
        let cropGrid = grid.cropped(to: box)
        let p = extractMask(prediction, grid: grid, box: box, isForeground: isForeground)
        let r = extractMask(reference, grid: grid, box: box, isForeground: isForeground)
        let distances = Metrics.surfaceDistances(prediction: p, reference: r, grid: cropGrid, spacing: sp)
        return (result(distances.hd95, hd: distances.hd, asd: distances.asd, assd: distances.assd), distances)
    }
}
