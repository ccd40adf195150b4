import ArgumentParser
import Foundation
import Metrics
import Segmentation
import Torch

/// `concord evaluate`: per case and class Dice, Jaccard, HD95, ASD, ASSD in mm.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare predicted masks with reference masks (Dice, Jaccard, HD95, HD, ASD, ASSD in mm).",
        discussion: """
        Files are matched by case name (file name without .nii/.nii.gz). Distances follow medpy 0.5.2
        (surface = mask minus its 6-connected erosion, exact Euclidean distances with the voxel spacing;
        ASSD pools both directions as medpy 0.5 does). Both masks empty: Dice 1, distances 0. One mask
        empty: Dice 0 and distances reported missing (null in JSON, empty in CSV) and counted.
        """
    )

    @Option(help: "Folder of predicted masks.") var pred: String
    @Option(help: "Folder of reference masks.") var gt: String
    @Option(help: "Labels to evaluate, comma separated (default: every non-zero value in the references).") var labels: String?
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write the per case/class CSV here.") var csv: String?
    @Flag(help: "Print the JSON report to standard output instead of the summary table.") var printJSON = false

    func run() throws {
        let labelList = try labels.map { text -> [Int] in
            try text.split(separator: ",").map { part in
                guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--labels: '\(part)' is not an integer") }
                return v
            }
        }
        let report = try FolderEvaluation.evaluate(predictions: URL(fileURLWithPath: pred), references: URL(fileURLWithPath: gt),
                                                   labels: labelList) { name, i, n in
            if !printJSON { FileHandle.standardError.write(Data("\r[\(i)/\(n)] \(name)        ".utf8)) }
        }
        if !printJSON { FileHandle.standardError.write(Data("\n".utf8)) }
        if let json { try AtomicFile.write(try report.jsonData(), to: URL(fileURLWithPath: json)) }
        if let csv { try AtomicFile.write(Data(report.csv().utf8), to: URL(fileURLWithPath: csv)) }
        if printJSON { print(String(data: try report.jsonData(), encoding: .utf8)!); return }
        print(EvaluationTable.render(report))
    }
}

/// A plain-text summary table: per class mean +- std of each metric and the missing counts.
enum EvaluationTable {
    static func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: Swift.max(0, width - s.count))
        return left ? fill + s : s + fill
    }

    static func render(_ report: EvaluationReport) -> String {
        func cell(_ s: MetricSummary) -> String {
            guard let m = s.mean else { return "-" }
            return String(format: "%.3f ± %.3f", m, s.std ?? 0)
        }
        var lines = ["class  cases  Dice             Jaccard          HD95 (mm)        ASD (mm)         ASSD (mm)        missing"]
        for key in report.summary.keys.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
            let s = report.summary[key]!
            let cells = [cell(s.dice), cell(s.jaccard), cell(s.hd95), cell(s.asd), cell(s.assd)].map { pad($0, 15) }
            lines.append(pad(key, 5) + "  " + pad("\(s.cases)", 5, left: true) + "  " + cells.joined(separator: "  ") + "  \(s.missingDistances)")
        }
        return lines.joined(separator: "\n")
    }
}
