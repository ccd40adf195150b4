import Essentials
import Foundation
import Volumes

/// Checks a dataset folder and reports every problem at once, each naming its file:
/// dataset.json problems, layout problems (missing channel files, labels without images, wrong
/// endings, count mismatches), unreadable NIfTI files (the reader's error), 4D images, NaN/Inf
/// voxels, channels whose shapes disagree and whose affines do not describe overlapping world boxes
/// (so they could not be resampled onto one grid), label maps whose shape or geometry differs from
/// channel 0, label values that are not declared in `labels` (or not integers), and label maps that
/// hold only background (a warning).
public enum DatasetValidator {
    /// Validates the folder; an empty result means the dataset is usable as it is.
    /// Cases are checked in parallel on `threads` threads (default: all cores).
    public static func validate(root: URL, threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> [DatasetProblem] {
        let (layoutOrNil, layoutProblems) = DatasetLayout.scan(root: root)
        guard let layout = layoutOrNil else { return layoutProblems }
        let declared: [Int: String]
        if let values = try? layout.description.labelValues() {
            declared = Dictionary(values.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        } else {
            declared = [:]      // region labels: already reported by the description check
        }
        let cases = layout.allCases
        let results = Parallel.map(count: cases.count, workers: threads) { validate(cases[$0], root: root, declaredLabels: declared) }
        return layoutProblems + results.flatMap { $0 }
    }

    /// Validates the files of one case. `declaredLabels` maps label value -> name (empty: values
    /// are not checked).
    public static func validate(_ c: DatasetCase, root: URL, declaredLabels: [Int: String]) -> [DatasetProblem] {
        var problems: [DatasetProblem] = []
        func rel(_ url: URL) -> String { relativePath(url, root: root) }

        // Channels.
        var reference: (channel: Int, volume: Volume, file: String)? = nil
        for ch in c.presentChannels {
            let url = c.channels[ch]!
            guard let image = read(url, rel(url), &problems) else { continue }
            let v = image.volume
            if image.hasNonFinite {
                problems.append(DatasetProblem(file: rel(url), kind: .nonFinite, message: "\(nonFiniteCount(image.volume.voxels)) NaN/Inf voxel(s) in the image" + (image.frameCount > 1 ? " (frame 0; other frames too)" : "")))
            }
            if let ref = reference {
                if v.shape != ref.volume.shape || !sameGeometry(v, ref.volume) {
                    if !worldBoxesOverlap(v.shape, v.affine, ref.volume.shape, ref.volume.affine) {
                        problems.append(DatasetProblem(file: rel(url), kind: .geometryMismatch,
                            message: "shape \(v.shape) (spacing \(fmt(v.spacing)) mm) differs from channel \(ref.channel)'s \(ref.volume.shape) (\(ref.file)) and the affines place the two images in world regions that do not overlap, so this channel cannot be resampled onto channel \(ref.channel)'s grid"))
                    }
                }
            } else {
                reference = (ch, v, rel(url))
            }
        }

        // Label map.
        if let url = c.label, let image = read(url, rel(url), &problems) {
            let v = image.volume
            if let ref = reference {
                if v.shape != ref.volume.shape {
                    problems.append(DatasetProblem(file: rel(url), kind: .labelShapeMismatch,
                        message: "label shape \(v.shape) differs from channel \(ref.channel)'s \(ref.volume.shape) (\(ref.file)); labels must be on the first channel's grid"))
                } else if !sameGeometry(v, ref.volume) {
                    problems.append(DatasetProblem(file: rel(url), kind: .labelShapeMismatch,
                        message: "label affine differs from channel \(ref.channel)'s (\(ref.file)) by up to \(fmt([maxCornerDistance(v, ref.volume)])) mm; labels must share the first channel's geometry"))
                }
            }
            var counts: [Float: Int] = [:]
            var nonFinite = 0
            for x in v.voxels {
                if x.isFinite { counts[x, default: 0] += 1 } else { nonFinite += 1 }
            }
            if nonFinite > 0 {
                problems.append(DatasetProblem(file: rel(url), kind: .nonFinite, message: "\(nonFinite) NaN/Inf voxel(s) in the label map"))
            }
            let nonInteger = counts.keys.filter { $0 != $0.rounded() }.sorted()
            if !nonInteger.isEmpty {
                problems.append(DatasetProblem(file: rel(url), kind: .undeclaredLabel,
                    message: "non-integer label value(s) \(nonInteger.prefix(5).map { "\($0)" }.joined(separator: ", "))\(nonInteger.count > 5 ? ", ..." : "") (\(nonInteger.reduce(0) { $0 + counts[$1]! }) voxels)"))
            }
            if !declaredLabels.isEmpty {
                let undeclared = counts.keys.filter { $0 == $0.rounded() && declaredLabels[Int($0)] == nil }.sorted()
                if !undeclared.isEmpty {
                    let list = declaredLabels.keys.sorted().map { "\($0) \(declaredLabels[$0]!)" }.joined(separator: ", ")
                    problems.append(DatasetProblem(file: rel(url), kind: .undeclaredLabel,
                        message: "label value(s) \(undeclared.map { "\(Int($0)) (\(counts[$0]!) voxels)" }.joined(separator: ", ")) not declared in dataset.json's labels (\(list))"))
                }
            }
            if counts.keys.allSatisfy({ $0 == 0 }) && nonFinite == 0 {
                problems.append(DatasetProblem(file: rel(url), kind: .emptyLabel, severity: .warning,
                    message: "the label map holds only background (0)"))
            }
        }
        return problems
    }

    // MARK: - helpers

    static func read(_ url: URL, _ rel: String, _ problems: inout [DatasetProblem]) -> NIfTIImage? {
        do {
            let image = try NIfTI.read(url)
            if image.frameCount > 1 {
                problems.append(DatasetProblem(file: rel, kind: .notThreeD, message: "image has \(image.frameCount) frames (dim \(image.header.shape)); one 3D volume per file is needed"))
            }
            return image
        } catch {
            problems.append(DatasetProblem(file: rel, kind: .unreadable, message: "cannot read: \(error)"))
            return nil
        }
    }

    static func relativePath(_ url: URL, root: URL) -> String {
        let r = root.standardizedFileURL.path, p = url.standardizedFileURL.path
        if p.hasPrefix(r + "/") { return String(p.dropFirst(r.count + 1)) }
        return p
    }

    static func nonFiniteCount(_ v: [Float]) -> Int { v.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }

    static func fmt(_ x: [Double]) -> String {
        x.count == 1 ? String(format: "%.4g", x[0]) : "[" + x.map { String(format: "%.4g", $0) }.joined(separator: ", ") + "]"
    }

    /// Largest world distance between corresponding grid corners of two same-shape volumes.
    static func maxCornerDistance(_ a: Volume, _ b: Volume) -> Double {
        var worst = 0.0
        for c in 0..<8 {
            let p = (0..<3).map { ax in (c >> ax) & 1 == 0 ? 0.0 : Double(a.shape[ax] - 1) }
            let x = a.affine.apply(p), y = b.affine.apply(p)
            worst = max(worst, ((0..<3).reduce(0.0) { $0 + (x[$1] - y[$1]) * (x[$1] - y[$1]) }).squareRoot())
        }
        return worst
    }

    /// Same shape and corners within 1% of the smallest voxel size (at least 1e-3 mm): the float32
    /// geometry of NIfTI headers written by different tools.
    static func sameGeometry(_ a: Volume, _ b: Volume) -> Bool {
        guard a.shape == b.shape else { return false }
        let tol = max(1e-3, 0.01 * (a.affine.spacing + b.affine.spacing).min()!)
        return maxCornerDistance(a, b) <= tol
    }

    /// Whether the voxel boxes of two grids overlap in world space (by a positive volume): the
    /// corners of B's box are mapped into A's voxel space and their bounding box is intersected
    /// with A's. False when an affine is singular.
    public static func worldBoxesOverlap(_ shapeA: [Int], _ affineA: Affine, _ shapeB: [Int], _ affineB: Affine) -> Bool {
        guard let inv = affineA.inverse(), affineB.inverse() != nil else { return false }
        var lo = [Double.infinity, .infinity, .infinity], hi = [-Double.infinity, -.infinity, -.infinity]
        for c in 0..<8 {
            let p = (0..<3).map { ax in (c >> ax) & 1 == 0 ? -0.5 : Double(shapeB[ax]) - 0.5 }
            let q = inv.apply(affineB.apply(p))
            for ax in 0..<3 { lo[ax] = min(lo[ax], q[ax]); hi[ax] = max(hi[ax], q[ax]) }
        }
        for ax in 0..<3 {
            guard lo[ax].isFinite, hi[ax].isFinite else { return false }
            if min(hi[ax], Double(shapeA[ax]) - 0.5) - max(lo[ax], -0.5) <= 1e-9 { return false }
        }
        return true
    }
}
