import Foundation

/// The directed surface distances between two non-empty binary masks (medpy's `__surface_distances`
/// in both directions), in the units of the spacing (mm).
public struct SurfaceDistances: Equatable, Sendable {
    /// For every prediction surface voxel (in increasing voxel index order), the distance to the
    /// nearest reference surface voxel.
    public var predictionToReference: [Double]
    /// For every reference surface voxel (in increasing voxel index order), the distance to the
    /// nearest prediction surface voxel.
    public var referenceToPrediction: [Double]

    public init(predictionToReference: [Double], referenceToPrediction: [Double]) {
        self.predictionToReference = predictionToReference
        self.referenceToPrediction = referenceToPrediction
    }

    /// Both directions pooled (prediction->reference first), as medpy's `numpy.hstack((hd1, hd2))`.
    public var pooled: [Double] { predictionToReference + referenceToPrediction }

    /// 95th percentile of the pooled distances (`medpy.metric.binary.hd95`).
    public var hd95: Double { numpyPercentile(pooled, 95) }

    /// Maximum of the pooled distances (`medpy.metric.binary.hd`).
    public var hd: Double { max(predictionToReference.max() ?? 0, referenceToPrediction.max() ?? 0) }

    /// Mean prediction->reference distance (`medpy.metric.binary.asd(prediction, reference)`).
    public var asd: Double { mean(predictionToReference) }

    /// Mean of the pooled distances of both directions (`medpy.metric.binary.assd`, medpy >= 0.5).
    public var assd: Double {
        let n = predictionToReference.count + referenceToPrediction.count
        guard n > 0 else { return 0 }
        return (pairwiseSum(predictionToReference[...]) + pairwiseSum(referenceToPrediction[...])) / Double(n)
    }
}

/// Surface distances of two 0/1 masks on the same grid (both non-empty for meaningful results).
func surfaceDistances(prediction: [UInt8], reference: [UInt8], grid: Grid3,
                      spacing: (Double, Double, Double)) -> SurfaceDistances {
    let predictionSurface = prediction.withUnsafeBufferPointer { surfaceMask($0, grid: grid) }
    let referenceSurface = reference.withUnsafeBufferPointer { surfaceMask($0, grid: grid) }
    func directed(from source: [UInt8], to target: [UInt8]) -> [Double] {
        let squared = target.withUnsafeBufferPointer { squaredEDT(features: $0, grid: grid, spacing: spacing) }
        return nonzeroIndices(source).map { squared[$0].squareRoot() }
    }
    return SurfaceDistances(
        predictionToReference: directed(from: predictionSurface, to: referenceSurface),
        referenceToPrediction: directed(from: referenceSurface, to: predictionSurface))
}

/// The q-th percentile (0...100) of `values` with numpy's default method ("linear",
/// Hyndman & Fan type 7), including numpy's way of interpolating. 0 for an empty array.
func numpyPercentile(_ values: [Double], _ q: Double) -> Double {
    precondition((0...100).contains(q), "percentile must be in 0...100")
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let n = sorted.count
    let virtualIndex = Double(n - 1) * (q / 100)
    if virtualIndex >= Double(n - 1) { return sorted[n - 1] }
    let previous = virtualIndex.rounded(.down)
    let gamma = virtualIndex - previous
    let a = sorted[Int(previous)], b = sorted[Int(previous) + 1]
    let difference = b - a
    // numpy's _lerp: interpolate from the nearer end.
    return gamma >= 0.5 ? b - difference * (1 - gamma) : a + difference * gamma
}

/// Arithmetic mean with pairwise summation (as numpy's `mean`, up to rounding); 0 for an empty array.
func mean(_ values: [Double]) -> Double {
    values.isEmpty ? 0 : pairwiseSum(values[...]) / Double(values.count)
}

/// Pairwise (cascade) summation: error O(log n · ε) instead of O(n · ε).
func pairwiseSum(_ values: ArraySlice<Double>) -> Double {
    if values.count <= 128 {
        var s = 0.0
        for x in values { s += x }
        return s
    }
    let middle = values.startIndex + values.count / 2
    return pairwiseSum(values[..<middle]) + pairwiseSum(values[middle...])
}
