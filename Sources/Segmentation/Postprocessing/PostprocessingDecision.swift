import Foundation

/// Dice of one class in one case: 2|P ∩ T| / (|P| + |T|), 1 when both are empty (as
/// `SegmentationMetrics` scores it).
public func classDice(_ prediction: [Int32], _ truth: [Int32], label: Int32) -> Double {
    var both = 0, p = 0, t = 0
    for i in prediction.indices {
        let a = prediction[i] == label, b = truth[i] == label
        if a { p += 1 }
        if b { t += 1 }
        if a && b { both += 1 }
    }
    return p + t == 0 ? 1 : 2 * Double(both) / Double(p + t)
}

/// The cross-validated choice of postprocessing and the numbers it was made on.
///
/// The rule (nnU-Net's): starting from no postprocessing, (1) keeping the largest foreground
/// component is kept when it raises the mean over classes of the mean cross-validation Dice
/// (every validation case of every fold pooled); (2) then, on top of that, keeping the largest
/// component of class c is kept when it raises class c's mean Dice (the step only turns class c
/// voxels into background, so no other class's Dice changes and this equals raising the mean
/// over classes). Ties keep the simpler choice (no step).
public struct PostprocessingDecision: Codable, Equatable, Sendable {
    /// One option tried: the per-class mean Dice without it (the decision so far) and with it.
    public struct Trial: Codable, Equatable, Sendable {
        public var option: String
        public var before: [String: Double]
        public var after: [String: Double]
        public var kept: Bool
    }
    /// One fold run's validation cases: per-class mean Dice without and with the chosen postprocessing.
    public struct FoldSummary: Codable, Equatable, Sendable {
        public var run: String
        public var fold: Int?
        public var cases: [String]
        public var before: [String: Double]
        public var after: [String: Double]
    }

    public var postprocessing: Postprocessing
    public var classes: [Int]
    public var trials: [Trial]
    public var folds: [FoldSummary]
    /// Every validation case pooled: per-class mean Dice without and with the chosen postprocessing.
    public var before: [String: Double]
    public var after: [String: Double]

    static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
    static func keyed(_ d: [Int: Double]) -> [String: Double] { Dictionary(uniqueKeysWithValues: d.map { (String($0.key), $0.value) }) }

    /// The rule above, with `meanDice(p)` the per-class mean cross-validation Dice under
    /// postprocessing `p` (a closure, so the rule can be checked on hand-made numbers).
    public static func choose(classes: [Int], meanDice: (Postprocessing) throws -> [Int: Double]) rethrows -> (Postprocessing, [Trial]) {
        var chosen = Postprocessing()
        var trials: [Trial] = []
        var current = try meanDice(chosen)
        var candidate = chosen
        candidate.wholeForeground = true
        let withForeground = try meanDice(candidate)
        let foregroundHelps = mean(classes.map { withForeground[$0] ?? 0 }) > mean(classes.map { current[$0] ?? 0 })
        trials.append(Trial(option: "largest foreground component", before: keyed(current), after: keyed(withForeground), kept: foregroundHelps))
        if foregroundHelps { chosen = candidate; current = withForeground }
        for c in classes {
            var candidate = chosen
            candidate.classes = (chosen.classes + [c]).sorted()
            let with = try meanDice(candidate)
            let helps = (with[c] ?? 0) > (current[c] ?? 0)
            trials.append(Trial(option: "largest component of class \(c)", before: keyed(current), after: keyed(with), kept: helps))
            if helps { chosen = candidate; current = with }
        }
        return (chosen, trials)
    }

    /// One validation case of one fold run: its predicted and reference label maps.
    public struct ValidationCase {
        public var run: String
        public var fold: Int?
        public var name: String
        public var shape: [Int]
        public var prediction: [Int32]
        public var truth: [Int32]
        public init(run: String, fold: Int?, name: String, shape: [Int], prediction: [Int32], truth: [Int32]) {
            self.run = run; self.fold = fold; self.name = name; self.shape = shape; self.prediction = prediction; self.truth = truth
        }
    }

    /// Decides on the predictions of every fold's validation cases (`classes`: the foreground classes).
    public static func decide(cases: [ValidationCase], classes: [Int]) -> PostprocessingDecision {
        func perCase(_ p: Postprocessing) -> [[Int: Double]] {
            cases.map { c in
                let labels = p.isIdentity ? c.prediction : p.apply(c.prediction, shape: c.shape)
                return Dictionary(uniqueKeysWithValues: classes.map { ($0, classDice(labels, c.truth, label: Int32($0))) })
            }
        }
        func pooled(_ dice: [[Int: Double]], _ which: [Int]) -> [Int: Double] {
            Dictionary(uniqueKeysWithValues: classes.map { k in (k, mean(which.map { dice[$0][k]! })) })
        }
        let all = Array(cases.indices)
        let (chosen, trials) = choose(classes: classes) { pooled(perCase($0), all) }
        let before = perCase(Postprocessing()), after = perCase(chosen)
        var runs: [String] = []
        for c in cases where !runs.contains(c.run) { runs.append(c.run) }
        let folds = runs.map { run -> FoldSummary in
            let members = cases.indices.filter { cases[$0].run == run }
            return FoldSummary(run: run, fold: cases[members[0]].fold, cases: members.map { cases[$0].name },
                               before: keyed(pooled(before, members)), after: keyed(pooled(after, members)))
        }
        return PostprocessingDecision(postprocessing: chosen, classes: classes, trials: trials, folds: folds,
                                      before: keyed(pooled(before, all)), after: keyed(pooled(after, all)))
    }

    /// The summary table: per fold and pooled, each class's mean Dice without and with the chosen
    /// postprocessing, then the options tried.
    public func table(classNames: [Int: String] = [:]) -> String {
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        let header = ["fold", "cases"] + classes.map { "\(classNames[$0] ?? String($0)) (without -> with)" } + ["mean (without -> with)"]
        func row(_ name: String, _ n: Int, _ b: [String: Double], _ a: [String: Double]) -> [String] {
            let cells = classes.map { String(format: "%.4f -> %.4f", b[String($0)] ?? .nan, a[String($0)] ?? .nan) }
            let mb = Self.mean(classes.map { b[String($0)] ?? 0 }), ma = Self.mean(classes.map { a[String($0)] ?? 0 })
            return [name, String(n)] + cells + [String(format: "%.4f -> %.4f", mb, ma)]
        }
        var rows = [header]
        for f in folds { rows.append(row(f.fold.map { "fold \($0)" } ?? URL(fileURLWithPath: f.run).lastPathComponent, f.cases.count, f.before, f.after)) }
        rows.append(row("all", folds.reduce(0) { $0 + $1.cases.count }, before, after))
        let widths = header.indices.map { i in rows.map { $0[i].count }.max()! }
        var lines = rows.map { r in r.indices.map { pad(r[$0], widths[$0]) }.joined(separator: "  ") }
        lines.append("")
        for t in trials {
            let b = Self.mean(classes.map { t.before[String($0)] ?? 0 }), a = Self.mean(classes.map { t.after[String($0)] ?? 0 })
            lines.append(String(format: "%@: mean Dice %.4f -> %.4f (%+.5f): %@", t.option, b, a, a - b, t.kept ? "kept" : "not kept"))
        }
        lines.append("postprocessing: \(postprocessing.summary)")
        return lines.joined(separator: "\n")
    }
}
