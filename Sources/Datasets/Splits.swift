import Foundation
import Essentials

/// Errors making or reading splits.
public struct SplitsError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Which case is used for what, saved as `splits.json`.
///
/// The labelled cases (those with a label file) are shuffled with the seed (Concord's own
/// generator) and cut into `test` (testFraction of them, rounded), `val` (valFraction) and `train`
/// (the rest, at least one). Of `train`, the first max(1, round(labeledRatio * |train|)) in
/// shuffled order keep their labels (`labeled`); the others are used without labels and, with
/// every case of imagesUnlabeled/, form `unlabeled`.
///
/// Deterministic per seed and case list (names are sorted first, so directory order does not
/// matter). For one seed, test and val do not depend on the labelled ratio, and a larger ratio
/// labels a superset of the cases a smaller one labels. Lists are stored sorted.
public struct Splits: Codable, Equatable, Sendable {
    public static let fileName = "splits.json"

    public var seed: UInt64
    public var valFraction: Double
    public var testFraction: Double
    public var labeledRatio: Double
    /// Labelled-folder cases used for training (labeled + those whose labels are withheld).
    public var train: [String]
    public var val: [String]
    public var test: [String]
    /// Training cases that keep their labels (a subset of train).
    public var labeled: [String]
    /// Training cases without labels: train minus labeled, plus all imagesUnlabeled cases.
    public var unlabeled: [String]

    public init(seed: UInt64, valFraction: Double, testFraction: Double, labeledRatio: Double,
                train: [String], val: [String], test: [String], labeled: [String], unlabeled: [String]) {
        self.seed = seed
        self.valFraction = valFraction
        self.testFraction = testFraction
        self.labeledRatio = labeledRatio
        self.train = train
        self.val = val
        self.test = test
        self.labeled = labeled
        self.unlabeled = unlabeled
    }

    /// Labelled ratio per stratum (e.g. per modality of an unpaired dataset), when splits were
    /// made stratified; nil otherwise.
    public var labeledRatios: [String: Double]?

    /// The cross-validation fold these splits were made for (`CrossValidationFolds`): k, or -1 for
    /// "all" (every labelled case trains); nil for the fraction-based splits.
    public var fold: Int?

    /// Makes splits from case names.
    ///
    /// With `strata` (case -> group, e.g. its modality in an unpaired dataset), each group is
    /// split on its own (test, val, train, labelled subset, each at least one training case) with
    /// `labeledRatios[group]`, else `labeledRatio`, so "10 % labelled" means 10 % of the CT cases
    /// and 10 % of the MR cases rather than 10 % of the pooled list. Without strata the result is
    /// the unstratified one (unchanged for existing runs).
    public static func make(labeledCases: [String], unlabeledCases: [String] = [], seed: UInt64,
                            valFraction: Double = 0.1, testFraction: Double = 0.2, labeledRatio: Double,
                            strata: [String: String] = [:], labeledRatios: [String: Double] = [:]) throws -> Splits {
        guard !strata.isEmpty else {
            return try unstratified(labeledCases: labeledCases, unlabeledCases: unlabeledCases, seed: seed, stream: [],
                                    valFraction: valFraction, testFraction: testFraction, labeledRatio: labeledRatio)
        }
        let groups = Dictionary(grouping: Array(Set(labeledCases)), by: { strata[$0] ?? "" })
        for (group, ratio) in labeledRatios where !groups.keys.contains(group) {
            throw SplitsError("labelled ratio given for '\(group)' (\(ratio)), but no labelled case belongs to it; groups: \(groups.keys.sorted().joined(separator: ", "))")
        }
        var parts: [Splits] = []
        for (index, group) in groups.keys.sorted().enumerated() {
            // Each group's shuffle has its own stream, so adding a group never reshuffles another.
            parts.append(try unstratified(labeledCases: groups[group]!, unlabeledCases: [], seed: seed, stream: [UInt64(index + 1)],
                                          valFraction: valFraction, testFraction: testFraction,
                                          labeledRatio: labeledRatios[group] ?? labeledRatio))
        }
        let extra = Array(Set(unlabeledCases))
        if let both = Set(labeledCases).intersection(extra).sorted().first {
            throw SplitsError("case \(both) is listed both as labelled and as unlabelled")
        }
        var out = Splits(seed: seed, valFraction: valFraction, testFraction: testFraction, labeledRatio: labeledRatio,
                         train: parts.flatMap(\.train).sorted(), val: parts.flatMap(\.val).sorted(), test: parts.flatMap(\.test).sorted(),
                         labeled: parts.flatMap(\.labeled).sorted(), unlabeled: (parts.flatMap(\.unlabeled) + extra).sorted())
        out.labeledRatios = Dictionary(uniqueKeysWithValues: groups.keys.map { ($0, labeledRatios[$0] ?? labeledRatio) })
        return out
    }

    static func unstratified(labeledCases: [String], unlabeledCases: [String], seed: UInt64, stream: [UInt64],
                             valFraction: Double, testFraction: Double, labeledRatio: Double) throws -> Splits {
        guard valFraction.isFinite, testFraction.isFinite, valFraction >= 0, testFraction >= 0, valFraction + testFraction < 1 else {
            throw SplitsError("val fraction \(valFraction) and test fraction \(testFraction) must be >= 0 and sum to less than 1")
        }
        guard labeledRatio.isFinite, labeledRatio > 0, labeledRatio <= 1 else {
            throw SplitsError("labelled ratio \(labeledRatio) must be in (0, 1] (e.g. 0.1 = 10% of the training cases keep their labels)")
        }
        var names = Array(Set(labeledCases)).sorted()
        let extra = Array(Set(unlabeledCases)).sorted()
        guard !names.isEmpty else { throw SplitsError("no labelled cases: at least one case with a label is needed") }
        if let both = Set(names).intersection(extra).sorted().first {
            throw SplitsError("case \(both) is listed both as labelled and as unlabelled")
        }
        let n = names.count
        var nTest = Int((testFraction * Double(n)).rounded())
        var nVal = Int((valFraction * Double(n)).rounded())
        while n - nTest - nVal < 1 {
            if nVal > 0 { nVal -= 1 } else { nTest -= 1 }
        }
        var rng = SeededGenerator(seed: seed, stream: [0x5350_4C49_5453] + stream)   // "SPLITS"
        rng.shuffle(&names)
        let test = Array(names[0..<nTest])
        let val = Array(names[nTest..<(nTest + nVal)])
        let train = Array(names[(nTest + nVal)...])
        let k = min(train.count, max(1, Int((labeledRatio * Double(train.count)).rounded())))
        let labeled = Array(train[0..<k])
        let hidden = Array(train[k...])
        return Splits(seed: seed, valFraction: valFraction, testFraction: testFraction, labeledRatio: labeledRatio,
                      train: train.sorted(), val: val.sorted(), test: test.sorted(), labeled: labeled.sorted(),
                      unlabeled: (hidden + extra).sorted())
    }

    /// The stratum of each labelled case: its modality (first present channel's name) in an unpaired
    /// dataset, none in a paired one, where per-modality labelled ratios are an error.
    static func modalityStrata(_ layout: DatasetLayout, labeledRatios: [String: Double] = [:]) throws -> [String: String] {
        guard layout.description.pairing == .unpaired else {
            guard labeledRatios.isEmpty else {
                throw SplitsError("per-modality labelled ratios apply to unpaired datasets (each case one modality); this dataset is paired")
            }
            return [:]
        }
        let names = try layout.description.orderedChannelNames()
        return Dictionary(layout.labeled.map { c in (c.name, c.presentChannels.first.map { names[$0] } ?? "") }, uniquingKeysWith: { a, _ in a })
    }

    /// Makes splits for a dataset folder's layout (labelled cases from imagesTr + labelsTr,
    /// unlabelled ones from imagesUnlabeled).
    /// An unpaired dataset is stratified by modality (each case's first channel name), with
    /// `labeledRatios` keyed by channel name (e.g. ["CT": 0.1, "MR": 0.2]).
    public static func make(layout: DatasetLayout, seed: UInt64, valFraction: Double = 0.1, testFraction: Double = 0.2,
                            labeledRatio: Double, labeledRatios: [String: Double] = [:]) throws -> Splits {
        let strata = try modalityStrata(layout, labeledRatios: labeledRatios)
        return try make(labeledCases: layout.labeled.map(\.name), unlabeledCases: layout.unlabeled.map(\.name), seed: seed,
                        valFraction: valFraction, testFraction: testFraction, labeledRatio: labeledRatio,
                        strata: strata, labeledRatios: labeledRatios)
    }

    /// Every inconsistency (overlaps between the groups, labelled cases outside train); with a
    /// layout, also names that are not in it or in the wrong group.
    public func problems(layout: DatasetLayout? = nil) -> [String] {
        var out: [String] = []
        let groups: [(String, [String])] = [("train", train), ("val", val), ("test", test)]
        for (name, list) in groups + [("labeled", labeled), ("unlabeled", unlabeled)] where Set(list).count != list.count {
            out.append("\(name) lists a case twice")
        }
        for a in 0..<groups.count {
            for b in (a + 1)..<groups.count {
                let common = Set(groups[a].1).intersection(groups[b].1)
                if let c = common.sorted().first { out.append("case \(c) is in both \(groups[a].0) and \(groups[b].0)") }
            }
        }
        if let c = Set(labeled).subtracting(train).sorted().first { out.append("labelled case \(c) is not in train") }
        if let c = Set(labeled).intersection(unlabeled).sorted().first { out.append("case \(c) is both labelled and unlabelled") }
        if let c = Set(unlabeled).intersection(val + test).sorted().first { out.append("evaluation case \(c) is also used as unlabelled training data") }
        if labeled.isEmpty { out.append("no labelled training case") }
        if let layout = layout {
            let withLabels = Set(layout.labeled.map(\.name)), withoutLabels = Set(layout.unlabeled.map(\.name))
            for c in (train + val + test).sorted() where !withLabels.contains(c) {
                out.append("case \(c) is not a labelled case of the dataset")
            }
            for c in unlabeled.sorted() where !withLabels.contains(c) && !withoutLabels.contains(c) {
                out.append("unlabelled case \(c) is not in the dataset")
            }
        }
        return out
    }

    /// Writes `splits.json` atomically (temporary file + rename). `url` is a folder or the file.
    public func save(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: Splits.fileURL(url))
    }

    /// Reads `splits.json` (`url` a folder or the file) and checks it is consistent.
    public static func load(from url: URL) throws -> Splits {
        let file = fileURL(url)
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw SplitsError("\(file.path): cannot read: \(error.localizedDescription)")
        }
        let splits: Splits
        do { splits = try JSONDecoder().decode(Splits.self, from: data) } catch let e as DecodingError {
            throw SplitsError("\(file.path): not a valid splits file: \(DatasetDescription.explain(e))")
        }
        if let p = splits.problems().first { throw SplitsError("\(file.path): \(p)") }
        return splits
    }

    static func fileURL(_ url: URL) -> URL {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
            ? url.appendingPathComponent(fileName) : url
    }
}
