import Foundation
import Metrics
import Torch
import Volumes

/// Evaluation of predicted masks against reference masks, file by file.
public enum FolderEvaluation {
    /// NIfTI files in a folder by case name (file name without .nii/.nii.gz).
    public static func niftiFiles(in folder: URL) throws -> [String: URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SegmentationError.invalidFolder(path: folder.path, problem: "no such folder")
        }
        var out: [String: URL] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            for ending in [".nii.gz", ".nii"] where name.hasSuffix(ending) && !name.hasPrefix(".") {
                out[String(name.dropLast(ending.count))] = folder.appendingPathComponent(name)
            }
        }
        return out
    }

    /// Compares every reference case with the prediction of the same name. A reference without a
    /// prediction, or a prediction whose grid differs from its reference (shape, or affine beyond
    /// 1e-3 mm), is an error naming the files. `labels` nil = every non-zero value in the references.
    public static func evaluate(predictions: URL, references: URL, labels: [Int]?,
                                progress: ((String, Int, Int) -> Void)? = nil) throws -> EvaluationReport {
        let refs = try niftiFiles(in: references), preds = try niftiFiles(in: predictions)
        guard !refs.isEmpty else { throw SegmentationError.invalidFolder(path: references.path, problem: "no NIfTI files") }
        let missing = refs.keys.filter { preds[$0] == nil }.sorted()
        if !missing.isEmpty {
            throw SegmentationError.invalidFolder(path: predictions.path, problem: "no prediction for \(missing.count) reference case(s): \(missing.prefix(10).joined(separator: ", "))")
        }
        var cases: [CaseEvaluation] = []
        var discovered = Set<Int>()
        var loaded: [(String, [Int32], [Int32], Volume)] = []
        for (i, name) in refs.keys.sorted().enumerated() {
            let ref = try NIfTI.read(refs[name]!).volume, pred = try NIfTI.read(preds[name]!).volume
            guard ref.shape == pred.shape else {
                throw SegmentationError.invalidFolder(path: preds[name]!.lastPathComponent, problem: "shape \(pred.shape) differs from the reference's \(ref.shape)")
            }
            let drift = zip(ref.affine.m, pred.affine.m).map { abs($0 - $1) }.max() ?? 0
            guard drift < 1e-3 else {
                throw SegmentationError.invalidFolder(path: preds[name]!.lastPathComponent, problem: "affine differs from the reference's by \(drift) (not the same grid)")
            }
            let r = try integerLabels(ref, file: refs[name]!), p = try integerLabels(pred, file: preds[name]!)
            if labels == nil { for v in r where v > 0 { discovered.insert(Int(v)) } }
            loaded.append((name, p, r, ref))
            progress?(name, i + 1, refs.count)
        }
        let classes = labels ?? discovered.sorted()
        for (name, p, r, ref) in loaded {
            cases.append(SegmentationMetrics.evaluateCase(name: name, prediction: p, reference: r, shape: ref.shape,
                                                          spacing: ref.spacing, labels: classes))
        }
        return EvaluationReport(cases: cases)
    }

    static func integerLabels(_ v: Volume, file: URL) throws -> [Int32] {
        var out = [Int32](repeating: 0, count: v.count)
        for (i, x) in v.voxels.enumerated() {
            guard x.isFinite, x == x.rounded(), abs(x) < 1e6 else {
                throw SegmentationError.invalidLabels(file: file.lastPathComponent, problem: "voxel \(i) holds \(x), not a label")
            }
            out[i] = Int32(x)
        }
        return out
    }
}
