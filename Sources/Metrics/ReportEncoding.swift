import Foundation

public extension EvaluationReport {
    /// JSON with sorted keys (deterministic output): `{"cases":[{"case":…,"classes":{"1":{…}}}],
    /// "summary":{"1":{…}}}`. Missing distances and undefined summary values are `null`.
    func jsonData(prettyPrinted: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = prettyPrinted ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Reads a report written by `jsonData()`.
    static func decode(from data: Data) throws -> EvaluationReport {
        try JSONDecoder().decode(EvaluationReport.self, from: data)
    }

    /// One row per case × class (cases in report order, classes numerically), with a header:
    /// `case,class,dice,jaccard,hd95,hd,asd,assd,prediction_empty,reference_empty`.
    /// Missing distances are empty fields; flags are `true`/`false`; fields are quoted as RFC 4180 needs.
    func csv() -> String {
        var lines = ["case,class,dice,jaccard,hd95,hd,asd,assd,prediction_empty,reference_empty"]
        for evaluation in cases {
            for key in evaluation.classes.keys.sorted(by: classKeyPrecedes) {
                let m = evaluation.classes[key]!
                let fields = [csvField(evaluation.caseName), csvField(key), csvNumber(m.dice), csvNumber(m.jaccard),
                              csvNumber(m.hd95), csvNumber(m.hd), csvNumber(m.asd), csvNumber(m.assd),
                              String(m.predictionEmpty), String(m.referenceEmpty)]
                lines.append(fields.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One row per class (numerically ordered) with the counts and mean/std/count of every metric:
    /// `class,cases,empty_prediction,empty_reference,both_empty,missing_distances,dice_mean,dice_std,dice_count,…`.
    func summaryCSV() -> String {
        let metrics = ["dice", "jaccard", "hd95", "hd", "asd", "assd"]
        var header = ["class", "cases", "empty_prediction", "empty_reference", "both_empty", "missing_distances"]
        for name in metrics { header += ["\(name)_mean", "\(name)_std", "\(name)_count"] }
        var lines = [header.joined(separator: ",")]
        for key in summary.keys.sorted(by: classKeyPrecedes) {
            let s = summary[key]!
            var fields = [csvField(key), String(s.cases), String(s.emptyPrediction), String(s.emptyReference),
                          String(s.bothEmpty), String(s.missingDistances)]
            for m in [s.dice, s.jaccard, s.hd95, s.hd, s.asd, s.assd] {
                fields += [csvNumber(m.mean), csvNumber(m.std), String(m.count)]
            }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Shortest round-tripping decimal form; empty for a missing value.
private func csvNumber(_ value: Double?) -> String {
    guard let value else { return "" }
    return "\(value)"
}

/// Quotes a field containing a comma, quote or line break (doubling inner quotes).
private func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
