import Foundation

/// HTML tables of an evaluation: per-class summary and (collapsible) per-case values.
enum MetricsTables {
    static func decimals(_ metric: String) -> Int { ReportEvaluation.distanceKeys.contains(metric) ? 2 : 3 }

    static let missingTitle = "missing: exactly one of prediction and reference is empty"

    static func classCell(_ key: String, _ names: [Int: String]) -> String {
        let name = ReportMarkup.escape(ReportMarkup.className(key, names))
        guard let label = Int(key), label > 0 else { return "<td class=\"name\">\(name)</td>" }
        return "<td class=\"name\"><span class=\"swatch\" style=\"background:\(ReportPalette.css(forClass: label))\"></span>\(name)</td>"
    }

    /// Per-class mean ± SD of every metric, with the number of cases with missing distances.
    static func summaryTable(_ evaluation: ReportEvaluation, classNames: [Int: String]) -> String {
        let stats = evaluation.statistics()
        var html = "<table class=\"metrics\"><thead><tr><th class=\"name\">Class</th><th>Cases</th>"
        for metric in ReportEvaluation.metricKeys {
            html += "<th>\(ReportMarkup.escape(ReportEvaluation.metricTitles[metric] ?? metric))</th>"
        }
        html += "<th>Missing distances</th></tr></thead><tbody>"
        for s in stats {
            html += "<tr>" + classCell(s.key, classNames) + "<td>\(s.cases)</td>"
            for metric in ReportEvaluation.metricKeys {
                let stat = s.metrics[metric]!
                guard let mean = stat.mean else {
                    html += "<td class=\"missing\" title=\"\(missingTitle)\">–</td>"
                    continue
                }
                let d = decimals(metric)
                var cell = "\(ReportMarkup.fixed(mean, d)) <span class=\"sd\">± \(ReportMarkup.fixed(stat.std, d))</span>"
                if stat.count < s.cases { cell += " <span class=\"n\" title=\"cases where the value is defined\">n=\(stat.count)</span>" }
                html += "<td>\(cell)</td>"
            }
            let missingClass = s.missingDistances > 0 ? " class=\"warn\"" : ""
            html += "<td\(missingClass)>\(s.missingDistances) of \(s.cases)</td></tr>"
        }
        html += "</tbody></table>"
        return html
    }

    /// One row per case and class; missing values as "–".
    static func caseTable(_ evaluation: ReportEvaluation, classNames: [Int: String]) -> String {
        let keys = evaluation.classKeys
        var html = "<table class=\"metrics per-case\"><thead><tr><th class=\"name\">Case</th><th class=\"name\">Class</th>"
        for metric in ReportEvaluation.metricKeys {
            html += "<th>\(ReportMarkup.escape(ReportEvaluation.metricTitles[metric] ?? metric))</th>"
        }
        html += "</tr></thead><tbody>"
        for c in evaluation.cases {
            let present = keys.filter { c.classes[$0] != nil }
            for (index, key) in present.enumerated() {
                let values = c.classes[key]!
                html += index == 0 ? "<tr class=\"first\"><td class=\"name case\" rowspan=\"\(present.count)\">\(ReportMarkup.escape(c.name))</td>" : "<tr>"
                html += classCell(key, classNames)
                for metric in ReportEvaluation.metricKeys {
                    if let value = values[metric] ?? nil {
                        let tint = metric == "dice" ? " class=\"\(diceClass(value))\"" : ""
                        html += "<td\(tint)>\(ReportMarkup.fixed(value, decimals(metric)))</td>"
                    } else {
                        html += "<td class=\"missing\" title=\"\(missingTitle)\">–</td>"
                    }
                }
                html += "</tr>"
            }
        }
        html += "</tbody></table>"
        return html
    }

    /// A mild tint for low Dice values in the per-case table.
    static func diceClass(_ value: Double) -> String {
        value < 0.5 ? "low" : value < 0.7 ? "mid" : "ok"
    }

    /// Small "LV 0.91 · Myo 0.80" chips of one case, for the slice section's headings.
    static func caseChips(_ evaluation: ReportEvaluation?, caseName: String, classNames: [Int: String]) -> String {
        guard let evaluation, let c = evaluation.cases.first(where: { $0.name == caseName }) else { return "" }
        var html = "<span class=\"chips\">"
        for key in c.classes.keys.sorted(by: ReportMarkup.classKeyOrder) {
            let dice = c.classes[key]?["dice"] ?? nil
            let color = Int(key).map { ReportPalette.css(forClass: $0) } ?? "#999"
            html += "<span class=\"chip\"><span class=\"swatch\" style=\"background:\(color)\"></span>"
            html += "\(ReportMarkup.escape(ReportMarkup.className(key, classNames))) <b>\(ReportMarkup.fixed(dice, 3))</b></span>"
        }
        return html + "<span class=\"chip-note\">Dice</span></span>"
    }
}
