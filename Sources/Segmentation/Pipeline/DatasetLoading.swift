import Datasets
import Essentials
import Foundation
import Torch
import Volumes

/// From a dataset folder to the trainer's prepared cases: layout, splits (reused from the run
/// when resuming), NIfTI reading on all cores, the preprocessing plan (statistics over the
/// training cases), and the plan applied to every case.
public enum DatasetLoading {
    /// Reads one case's channels (nil where absent) and, when asked, its label. Label values not
    /// declared in dataset.json are an error naming the file.
    public static func read(_ c: DatasetCase, withLabel: Bool, allowedLabels: Set<Int>) throws -> CaseVolumes {
        let channels = try c.channels.map { try $0.map { try NIfTI.read($0).volume } }
        var label: Volume? = nil
        if withLabel, let url = c.label {
            let v = try NIfTI.read(url).volume
            var seen = Set<Int>()
            for x in v.voxels {
                let k = Int(x.rounded())
                guard x.isFinite, Float(k) == x else { throw SegmentationError.invalidLabels(file: url.path, problem: "label voxel value \(x) is not an integer") }
                seen.insert(k)
            }
            let undeclared = seen.subtracting(allowedLabels).sorted()
            if !undeclared.isEmpty {
                throw SegmentationError.invalidLabels(file: url.path, problem: "label value(s) \(undeclared) are not declared in dataset.json (declared: \(allowedLabels.sorted()))")
            }
            label = v
        }
        return CaseVolumes(name: c.name, channels: channels, label: label)
    }

    public struct Loaded {
        public var data: TrainingData
        public var description: RunDescription
        public var splits: Splits
        public var layout: DatasetLayout
    }

    /// Which cases a run trains on: the fraction-based splits (`Splits.make`), or fold `fold` of
    /// `count` cross-validation folds fixed in the dataset folder (nil fold = all cases).
    public enum SplitChoice: Sendable, Equatable {
        case fractions
        case crossValidation(count: Int, fold: Int?)
    }

    /// Prepares everything `concord train` needs. `run` receives splits.json (reused if present).
    /// `targetSpacing` (i, j, k), when given (a dataset plan's), replaces the median spacing of the
    /// preprocessing statistics.
    public static func load(dataset: URL, config: TrainingConfig, run: URL, split: SplitChoice = .fractions,
                            targetSpacing: [Double]? = nil, log: (String) -> Void) throws -> Loaded {
        let layout = try DatasetLayout.load(root: dataset)
        let modalityNames = try layout.description.orderedChannelNames()
        let labelNames = try layout.description.orderedLabelNames()
        let paired = layout.description.pairing == .paired
        let splitsURL = run.appendingPathComponent(Splits.fileName)
        let splits: Splits
        if FileManager.default.fileExists(atPath: splitsURL.path) {
            splits = try Splits.load(from: splitsURL)
            let problems = splits.problems(layout: layout)
            if !problems.isEmpty { throw SegmentationError.invalidDataset(path: splitsURL.path, problem: problems.joined(separator: "; ")) }
            log("splits: reusing \(splitsURL.path)")
        } else {
            for name in config.labeledRatioPerModality.keys where !modalityNames.contains(name) {
                throw SegmentationError.config("labeledRatioPerModality names '\(name)', which is not a channel of \(dataset.path) (channels: \(modalityNames.joined(separator: ", ")))")
            }
            switch split {
            case .fractions:
                splits = try Splits.make(layout: layout, seed: config.seed, labeledRatio: config.labeledRatio,
                                         labeledRatios: config.labeledRatioPerModality)
            case .crossValidation(let count, let fold):
                let folds = try CrossValidationFolds.fixed(layout: layout, count: count)
                log("folds: \(count) folds from \(CrossValidationFolds.url(dataset: dataset).path); training on \(fold.map { "fold \($0)" } ?? "all cases")")
                splits = try Splits.make(layout: layout, folds: folds, fold: fold, seed: config.seed, labeledRatio: config.labeledRatio,
                                         labeledRatios: config.labeledRatioPerModality)
            }
            try splits.save(to: splitsURL)
        }
        log("splits: \(splits.labeled.count) labelled + \(splits.unlabeled.count) unlabelled training cases, \(splits.val.count) validation, \(splits.test.count) test"
            + (splits.labeledRatios.map { r in " (labelled ratio per modality: " + r.keys.sorted().map { "\($0) \(r[$0]!)" }.joined(separator: ", ") + ")" } ?? ""))
        let allowed = Set(labelNames.indices)
        func cases(_ names: [String]) throws -> [DatasetCase] {
            try names.map { name in
                guard let c = layout.case(named: name) else { throw SegmentationError.invalidDataset(path: dataset.path, problem: "splits.json names case \(name), which is not in the dataset") }
                return c
            }
        }
        let started = Date()
        let labeledCases = try cases(splits.labeled), unlabeledCases = try cases(splits.unlabeled), validationCases = try cases(splits.val)
        // A resumed run keeps its plan (run.json); a new one measures it on the training cases.
        let plan: PreprocessingPlan
        if let existing = try? RunDescription.read(from: run), existing.dataset == dataset.path {
            plan = existing.plan
            log("plan: reusing \(RunDescription.url(in: run).path)")
        } else {
            let training = try Parallel.map(labeledCases) { try read($0, withLabel: true, allowedLabels: allowed) }
                + Parallel.map(unlabeledCases) { try read($0, withLabel: false, allowedLabels: allowed) }
            var made = try PreprocessingPlan.make(cases: training, channelNames: modalityNames)
            if let targetSpacing { made.targetSpacing = targetSpacing }
            plan = made
        }
        log("plan: target spacing \(plan.targetSpacing.map { String(format: "%.3g", $0) }.joined(separator: " x ")) mm, normalisation \(plan.normalization.map(describe).joined(separator: ", "))")
        let cache = PreparedCaseCache(folder: run.appendingPathComponent("preprocessed"), plan: plan)
        func prepare(_ list: [DatasetCase], keepLabel: Bool) throws -> [PreparedCase] {
            try Parallel.map(list) { c in
                if let hit = try cache.load(c.name, withLabel: keepLabel) { return hit }
                let p = try plan.apply(try read(c, withLabel: keepLabel, allowedLabels: allowed))
                let prepared = try PreparedCase(name: p.name, channels: p.channels, present: p.present, label: keepLabel ? p.label : nil)
                try cache.save(prepared)
                return prepared
            }
        }
        let data = TrainingData(modalityNames: modalityNames, numClasses: labelNames.count, paired: paired,
                                labeled: try prepare(labeledCases, keepLabel: true), unlabeled: try prepare(unlabeledCases, keepLabel: false),
                                validation: try prepare(validationCases, keepLabel: true), spacing: plan.targetSpacing.reversed())
        log(String(format: "%d cases ready in %.1f s (cache: %@)", labeledCases.count + unlabeledCases.count + validationCases.count,
                   Date().timeIntervalSince(started), cache.folder.path))
        let description = RunDescription(
            concordVersion: ConcordVersion.string, dataset: dataset.path, modalityNames: modalityNames,
            classNames: Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($0.offset, $0.element) }),
            paired: paired, fileEnding: layout.description.fileEnding, plan: plan, config: config)
        return Loaded(data: data, description: description, splits: splits, layout: layout)
    }

    static func describe(_ n: ChannelNormalization) -> String {
        switch n {
        case .ct(let lo, let hi, let mean, let std): return String(format: "CT(clip %.0f..%.0f, mean %.1f, std %.1f)", lo, hi, mean, std)
        case .zscore(let nonZero): return nonZero ? "z-score (non-zero)" : "z-score"
        case .none: return "none"
        }
    }
}

/// Preprocessed cases saved in the run (safetensors: images, label, presence), keyed by a hash
/// of the preprocessing plan, so a resumed run does not preprocess again.
struct PreparedCaseCache {
    let folder: URL
    let planHash: String

    init(folder: URL, plan: PreprocessingPlan) {
        self.folder = folder
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? encoder.encode(plan)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        planHash = String(hash, radix: 16)
    }

    func url(_ name: String) -> URL { folder.appendingPathComponent("\(name).safetensors") }

    func load(_ name: String, withLabel: Bool) throws -> PreparedCase? {
        guard FileManager.default.fileExists(atPath: url(name).path),
              let file = try? Safetensors.read(url(name)), file.metadata["plan"] == planHash else { return nil }
        let tensors = file.dictionary
        guard let images = tensors["images"], let present = file.metadata["present"] else { return nil }
        if withLabel && tensors["label"] == nil { return nil }
        return PreparedCase(name: name, images: images, label: withLabel ? tensors["label"] : nil,
                            present: present.split(separator: ",").map { $0 == "1" })
    }

    func save(_ c: PreparedCase) throws {
        var tensors: [(String, Tensor)] = [("images", c.images)]
        if let label = c.label { tensors.append(("label", label)) }
        try Safetensors.write(tensors, metadata: ["plan": planHash, "present": c.present.map { $0 ? "1" : "0" }.joined(separator: ",")],
                              to: url(c.name))
    }
}

/// Concord's version, recorded in runs.
public enum ConcordVersion {
    public static let string = "0.1.0"
}
