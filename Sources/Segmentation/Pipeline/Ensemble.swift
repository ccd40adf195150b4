import Essentials
import Foundation
import Torch
import Volumes

extension Predictor {
    /// The selected head's softmax probabilities for one case, one volume per class, each restored
    /// into the reference channel's geometry with the steps that restore a mask (resampling to the
    /// cropped shape, padding, axes permuted back) but with trilinear interpolation; the padding
    /// outside the crop box is background (probability 1 for class 0, 0 for the others). Linear
    /// interpolation is a convex combination, so the restored classes still sum to 1 per voxel.
    public func probabilities(_ input: CaseVolumes, progress: ((Int, Int) -> Void)? = nil) throws -> [Volume] {
        let index = head ?? method.outputNames.count - 1
        let prepared = try description.plan.apply(input)
        let tensors = try PreparedCase(name: input.name, channels: prepared.channels, present: prepared.present, label: nil)
        let heads = try inference.run(images: tensors.images, present: tensors.present, progress: progress) { try method.predict($0) }
        guard heads.indices.contains(index), let probabilities = heads[index] else {
            throw SegmentationError.incompatibleData("\(input.name): head \(index) of \(run.path) produced no prediction (missing modality?)")
        }
        let grid = prepared.channels[0]
        let values: [Float] = try probabilities.toArray(Float.self)
        let n = grid.count, classes = probabilities.shape[0]
        guard values.count == classes * n else {
            throw SegmentationError.incompatibleData("\(input.name): probabilities \(probabilities.shape) do not fit the preprocessed grid \(grid.shape)")
        }
        return try (0..<classes).map { k in
            var channel = grid
            channel.voxels = Array(values[(k * n)..<((k + 1) * n)])
            return try description.plan.restore(channel, record: prepared.record, interpolation: .linear, fill: k == 0 ? 1 : 0)
        }
    }
}

/// Several trained runs (typically the folds of one cross-validation) predicting together: each
/// run preprocesses the case with its own plan, predicts, and its class probabilities are restored
/// into the input's geometry (`Predictor.probabilities`); the ensemble's probabilities are their
/// mean, its mask their argmax (ties to the lower class). One run alone keeps the single-run path
/// (argmax on the preprocessed grid, nearest-neighbour restore) unless its probabilities are asked for.
public final class EnsemblePredictor {
    public let members: [Predictor]

    /// The members must agree on classes (indices and names) and modalities (names, in order).
    public init(members: [Predictor]) throws {
        guard let first = members.first else { throw SegmentationError.invalidSettings(source: "--run", problem: "no run to predict with") }
        for other in members.dropFirst() {
            let a = first.description, b = other.description
            guard a.classNames == b.classNames else {
                throw SegmentationError.incompatibleData("runs disagree on their classes: \(first.run.path) has \(Self.describe(a.classNames)), \(other.run.path) has \(Self.describe(b.classNames)); an ensemble needs the same classes")
            }
            guard a.modalityNames == b.modalityNames else {
                throw SegmentationError.incompatibleData("runs disagree on their modalities: \(first.run.path) has \(a.modalityNames.joined(separator: ", ")), \(other.run.path) has \(b.modalityNames.joined(separator: ", ")); an ensemble needs the same channels in the same order")
            }
        }
        self.members = members
    }

    static func describe(_ classes: [Int: String]) -> String {
        classes.keys.sorted().map { "\($0)=\(classes[$0]!)" }.joined(separator: ", ")
    }

    public var description: RunDescription { members[0].description }

    /// Run folders from what the user named: a run (a folder with run.json), or a folder of runs
    /// (no run.json of its own; every subfolder with a run.json, in name order).
    public static func runFolders(_ given: [URL]) throws -> [URL] {
        var out: [URL] = []
        let fm = FileManager.default
        for url in given {
            if fm.fileExists(atPath: RunDescription.url(in: url).path) { out.append(url); continue }
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw SegmentationError.invalidRun(path: url.path, problem: "no such folder")
            }
            let runs = try fm.contentsOfDirectory(atPath: url.path).sorted().map { url.appendingPathComponent($0) }
                .filter { fm.fileExists(atPath: RunDescription.url(in: $0).path) }
            guard !runs.isEmpty else {
                throw SegmentationError.invalidRun(path: url.path, problem: "neither a run (no run.json) nor a folder of runs (no subfolder has a run.json)")
            }
            out += runs
        }
        guard Set(out.map(\.standardizedFileURL.path)).count == out.count else {
            throw SegmentationError.invalidSettings(source: "--run", problem: "a run is named twice: \(out.map(\.path).joined(separator: ", "))")
        }
        return out
    }

    /// The `postprocessing.json` beside the runs: in the one folder that holds all of them, if any.
    public static func postprocessingBeside(_ runs: [URL]) -> URL? {
        let parents = Set(runs.map { $0.standardizedFileURL.deletingLastPathComponent().path })
        guard parents.count == 1, let parent = parents.first else { return nil }
        let file = URL(fileURLWithPath: parent).appendingPathComponent(Postprocessing.fileName)
        return FileManager.default.fileExists(atPath: file.path) ? file : nil
    }

    /// The voxelwise mean of the members' per-class probabilities (each member: one volume per class).
    public static func average(_ memberProbabilities: [[Volume]]) throws -> [Volume] {
        guard let first = memberProbabilities.first, !first.isEmpty else {
            throw SegmentationError.incompatibleData("no probabilities to average")
        }
        for (m, member) in memberProbabilities.enumerated() {
            guard member.count == first.count, member.allSatisfy({ $0.shape == first[0].shape }) else {
                throw SegmentationError.incompatibleData("member \(m) has \(member.count) class volume(s) of shape \(member.first?.shape ?? []), member 0 \(first.count) of \(first[0].shape)")
            }
        }
        let scale = 1 / Float(memberProbabilities.count)
        return first.indices.map { k in
            var sum = [Float](repeating: 0, count: first[k].count)
            for member in memberProbabilities {
                member[k].voxels.withUnsafeBufferPointer { v in for i in sum.indices { sum[i] += v[i] } }
            }
            var out = first[k]
            out.voxels = sum.map { $0 * scale }
            return out
        }
    }

    /// The class of highest probability per voxel (ties to the lower class), in the volumes' geometry.
    public static func argmax(_ probabilities: [Volume]) -> Volume {
        var best = probabilities[0].voxels, label = [Float](repeating: 0, count: best.count)
        for k in 1..<max(1, probabilities.count) {
            probabilities[k].voxels.withUnsafeBufferPointer { v in
                for i in best.indices where v[i] > best[i] { best[i] = v[i]; label[i] = Float(k) }
            }
        }
        var out = probabilities[0]
        out.voxels = label
        return out
    }

    /// The mean of the members' restored probabilities.
    public func probabilities(_ input: CaseVolumes, progress: ((Int, Int) -> Void)? = nil) throws -> [Volume] {
        try Self.average(members.map { try $0.probabilities(input, progress: progress) })
    }

    /// The mask (and, when asked or when several runs predict, the averaged probabilities) of one case,
    /// postprocessed when `postprocessing` is given.
    public func segment(_ input: CaseVolumes, wantProbabilities: Bool, postprocessing: Postprocessing?,
                        progress: ((Int, Int) -> Void)? = nil) throws -> (mask: Volume, probabilities: [Volume]?) {
        var mask: Volume, probabilities: [Volume]? = nil
        if members.count == 1 && !wantProbabilities {
            mask = try members[0].segment(input, progress: progress)
        } else {
            let p = try self.probabilities(input, progress: progress)
            mask = Self.argmax(p)
            probabilities = p
        }
        if let postprocessing, !postprocessing.isIdentity {
            let labels = postprocessing.apply(mask.voxels.map { Int32($0) }, shape: mask.shape)
            mask.voxels = labels.map { Float($0) }
        }
        return (mask, probabilities)
    }

    /// Segments `cases` and writes `out/CASE<ending>` (uint8, the header of each case's reference
    /// channel) and, with `saveProbabilities`, `out/probabilities/CASE<ending>`: one 4D float32
    /// NIfTI with one frame per class (frame k = class k) in the same geometry.
    public func predict(_ cases: [CaseInput], out: URL, keep: [Int] = [], saveProbabilities: Bool = false,
                        postprocessing: Postprocessing? = nil, format: MaskFormat = .nifti, log: (String) -> Void = { print($0) },
                        windowProgress: ((String, Int, Int) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try LabelTables.write(description.classNames, to: out)
        let probabilityFolder = out.appendingPathComponent("probabilities")
        if saveProbabilities { try FileManager.default.createDirectory(at: probabilityFolder, withIntermediateDirectories: true) }
        for (i, c) in cases.enumerated() {
            let start = Date()
            let (volumes, header) = try c.read(keep: keep)
            let result = try segment(volumes, wantProbabilities: saveProbabilities, postprocessing: postprocessing) { done, total in
                windowProgress?(c.name, done, total)
            }
            let target = try format.write(result.mask, name: c.name, out: out, header: header, description: description)
            if saveProbabilities, let probabilities = result.probabilities {
                try NIfTI.write(frames: probabilities, to: probabilityFolder.appendingPathComponent(c.name + description.fileEnding),
                                datatype: .float32, reference: header)
            }
            log(String(format: "[%d/%d] %@ -> %@ (%d run%@, %.1f s)", i + 1, cases.count, c.name, target.path, members.count,
                       members.count == 1 ? "" : "s", Date().timeIntervalSince(start)))
        }
    }
}
