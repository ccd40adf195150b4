import Essentials
import Foundation

/// Cross-validation folds of a dataset's labelled cases, fixed in the dataset folder on first use
/// (`DATA/splits_final.json`), so every run of every method sees the same folds.
///
/// The labelled cases (names sorted, then shuffled with Concord's generator under a fixed seed)
/// are dealt round-robin into `count` folds; an unpaired dataset deals each modality (stratum) on
/// its own, continuing where the previous stratum stopped, so every fold holds about the same
/// share of each modality and the fold sizes differ by at most one.
public struct CrossValidationFolds: Codable, Equatable, Sendable {
    public static let fileName = "splits_final.json"

    /// One fold: its validation cases; the training part is every other labelled case.
    public struct Fold: Codable, Equatable, Sendable {
        public var train: [String]
        public var val: [String]
    }

    public var seed: UInt64
    public var folds: [Fold]

    public var count: Int { folds.count }

    /// Deals `cases` into `count` folds (stratified by `strata`: case -> group, when given).
    public static func make(cases: [String], count: Int, seed: UInt64 = 12345, strata: [String: String] = [:]) throws -> CrossValidationFolds {
        let names = Array(Set(cases)).sorted()
        guard count >= 2 else { throw SplitsError("--folds \(count): cross-validation needs at least 2 folds") }
        guard names.count >= count else {
            throw SplitsError("\(count) folds need at least \(count) labelled cases; the dataset has \(names.count)")
        }
        var val = [[String]](repeating: [], count: count)
        var next = 0
        let groups = Dictionary(grouping: names, by: { strata[$0] ?? "" })
        for (index, group) in groups.keys.sorted().enumerated() {
            var members = groups[group]!.sorted()
            var rng = SeededGenerator(seed: seed, stream: [0x464F_4C44_53, UInt64(index)])   // "FOLDS"
            rng.shuffle(&members)
            for name in members { val[next].append(name); next = (next + 1) % count }
        }
        let all = Set(names)
        return CrossValidationFolds(seed: seed, folds: val.map { v in
            Fold(train: all.subtracting(v).sorted(), val: v.sorted())
        })
    }

    /// Every inconsistency: overlapping validation parts, a case missing from all, a training part
    /// that is not the complement of its validation part.
    public func problems(cases: [String]? = nil) -> [String] {
        var out: [String] = []
        let vals = folds.flatMap(\.val)
        if Set(vals).count != vals.count { out.append("a case is in the validation part of more than one fold") }
        let all = Set(vals)
        for (k, f) in folds.enumerated() {
            if Set(f.train).union(f.val) != all || !Set(f.train).isDisjoint(with: f.val) {
                out.append("fold \(k): train and val are not a partition of the labelled cases")
            }
        }
        if let cases {
            let given = Set(cases)
            if let c = given.subtracting(all).sorted().first { out.append("labelled case \(c) is in no fold (delete the file to make folds again)") }
            if let c = all.subtracting(given).sorted().first { out.append("case \(c) is not a labelled case of the dataset") }
        }
        return out
    }

    public static func url(dataset: URL) -> URL { dataset.appendingPathComponent(fileName) }

    /// The dataset's folds: read from `DATA/splits_final.json` (checked against the dataset and
    /// `count`), else made and saved there.
    public static func fixed(layout: DatasetLayout, count: Int) throws -> CrossValidationFolds {
        let url = url(dataset: layout.root)
        let names = layout.labeled.map(\.name)
        if FileManager.default.fileExists(atPath: url.path) {
            let folds: CrossValidationFolds
            do { folds = try JSONDecoder().decode(CrossValidationFolds.self, from: Data(contentsOf: url)) } catch {
                throw SplitsError("\(url.path): not a valid folds file: \(error)")
            }
            guard folds.count == count else {
                throw SplitsError("\(url.path) holds \(folds.count) folds, but --folds \(count) was asked for; use --folds \(folds.count) or move the file away")
            }
            if let p = folds.problems(cases: names).first { throw SplitsError("\(url.path): \(p)") }
            return folds
        }
        let strata = try Splits.modalityStrata(layout)
        let folds = try make(cases: names, count: count, strata: strata)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(folds), to: url)
        return folds
    }
}

extension Splits {
    /// Splits of cross-validation fold `fold` (nil = train on every labelled case, no validation):
    /// val = the fold's validation part, no test part; the labelled subset is chosen within the
    /// training part (per modality for unpaired data, with `labeledRatios[modality]` else
    /// `labeledRatio`); the other training cases and every imagesUnlabeled case are unlabelled.
    public static func make(layout: DatasetLayout, folds: CrossValidationFolds, fold: Int?, seed: UInt64, labeledRatio: Double,
                            labeledRatios: [String: Double] = [:]) throws -> Splits {
        let train: [String], val: [String]
        if let fold {
            guard folds.folds.indices.contains(fold) else { throw SplitsError("--fold \(fold): the dataset has folds 0...\(folds.count - 1)") }
            (train, val) = (folds.folds[fold].train, folds.folds[fold].val)
        } else {
            (train, val) = (layout.labeled.map(\.name).sorted(), [])
        }
        let strata = try modalityStrata(layout, labeledRatios: labeledRatios)
        // The labelled subset: the stratified split with no val/test part, over the training part.
        let inner = try make(labeledCases: train, unlabeledCases: layout.unlabeled.map(\.name), seed: seed, valFraction: 0, testFraction: 0,
                             labeledRatio: labeledRatio, strata: strata.filter { train.contains($0.key) }, labeledRatios: labeledRatios)
        var out = Splits(seed: seed, valFraction: 0, testFraction: 0, labeledRatio: labeledRatio, train: inner.train, val: val.sorted(), test: [],
                         labeled: inner.labeled, unlabeled: inner.unlabeled)
        out.labeledRatios = inner.labeledRatios
        out.fold = fold ?? -1
        return out
    }
}
