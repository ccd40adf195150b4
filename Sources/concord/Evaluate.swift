import Essentials
import ArgumentParser
import Foundation
import Datasets
import Metrics
import Segmentation
import Torch

/// `concord evaluate`: per case and class Dice, Jaccard, HD95, ASD, ASSD in mm.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare predicted masks with reference masks (Dice, Jaccard, HD95, HD, ASD, ASSD in mm), or evaluate a trained run on its test split.",
        discussion: """
        With --pred and --gt: files are matched by case name (file name without .nii/.nii.gz). Distances follow medpy 0.5.2
        (surface = mask minus its 6-connected erosion, exact Euclidean distances with the voxel spacing;
        ASSD pools both directions as medpy 0.5 does). Both masks empty: Dice 1, distances 0. One mask
        empty: Dice 0 and distances reported missing (null in JSON, empty in CSV) and counted.

        With --run: the run segments the cases of its split (splits.json; --split test or val) from its
        dataset and is scored against their labels in one process, once per misalignment level
        (--misalign-mm 0 2 4 8, with --misalign-deg giving each level's rotation) and for each --head
        (all heads come from one sliding-window pass). Equals concord predict (same --seed) followed
        by concord evaluate for every level and head; --json writes every result.
        """
    )

    @Option(help: "Folder of predicted masks.") var pred: String?
    @Option(help: "Folder of reference masks.") var gt: String?
    @Option(name: .customLong("run"), help: "Evaluate this trained run on its split instead (see below).") var runFolder: String?
    @Option(help: "--run: the split to evaluate, test or val.") var split = "test"
    @Option(help: "--run: the dataset folder (default: the one the run was trained on).") var dataset: String?
    @Option(help: "--run: checkpoint, best or last.") var checkpoint = "best"
    @Option(parsing: .upToNextOption, help: "--run: misalignment levels, max translation in mm of the non-reference channels.") var misalignMm: [Double] = [0]
    @Option(parsing: .upToNextOption, help: "--run: max rotation in degrees per level (default 0 for each).") var misalignDeg: [Double] = []
    @Option(help: "--run: seed of the simulated misalignment.") var seed: UInt64 = 0
    @Option(parsing: .upToNextOption, help: "--run: output heads by name, or 'all' (default: the method's final answer).") var head: [String] = []
    @Option(help: "Device for --run: \(DeviceSetting.choices).") var device = "cpu"
    @Option(help: "Precision of the networks: \(PrecisionSetting.choices) (default: the run's own).") var precision: String?

    func precisionOverride() throws -> PrecisionSetting? {
        guard let precision else { return nil }
        guard let value = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices), got '\(precision)'") }
        return value
    }
    @Option(help: "Labels to evaluate, comma separated (default: every non-zero value in the references).") var labels: String?
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write the per case/class CSV here.") var csv: String?
    @Flag(help: "Print the JSON report to standard output instead of the summary table.") var printJSON = false

    func run() throws {
        let labelList = try parsedLabels()
        if let runFolder {
            guard pred == nil, gt == nil else { throw ValidationError("--run evaluates a run; --pred/--gt compare folders: give one or the other") }
            return try evaluateRun(URL(fileURLWithPath: runFolder), labels: labelList)
        }
        guard let pred, let gt else { throw ValidationError("give --pred and --gt (folders of masks), or --run (a trained run)") }
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

    func parsedLabels() throws -> [Int]? {
        try labels.map { text -> [Int] in
            try text.split(separator: ",").map { part in
                guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--labels: '\(part)' is not an integer") }
                return v
            }
        }
    }

    func evaluateRun(_ run: URL, labels: [Int]?) throws {
        guard let setting = DeviceSetting(parsing: device) else { throw ValidationError("--device \(device): must be \(DeviceSetting.choices)") }
        let dev = try setting.resolve()
        guard csv == nil else { throw ValidationError("--csv is for --pred/--gt; with --run use --json") }
        guard misalignDeg.isEmpty || misalignDeg.count == misalignMm.count else {
            throw ValidationError("--misalign-deg gives \(misalignDeg.count) value(s) for \(misalignMm.count) --misalign-mm level(s)")
        }
        guard (misalignMm + misalignDeg).allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw ValidationError("misalignment levels must be >= 0") }
        let levels = misalignMm.indices.map { MisalignmentLevel(maxTranslationMM: misalignMm[$0], maxRotationDegrees: misalignDeg.isEmpty ? 0 : misalignDeg[$0]) }
        let predictor = try Predictor(run: run, checkpoint: checkpoint, device: dev, precision: try precisionOverride())
        let names = predictor.method.outputNames
        let heads: [Int] = try head == ["all"] ? Array(names.indices) : head.isEmpty ? [names.count - 1] : head.map { h in
            guard let i = names.firstIndex(of: h) else { throw ValidationError("--head \(h): this run's heads are \(names.joined(separator: ", ")) (or all)") }
            return i
        }
        let splits = try Splits.load(from: run.appendingPathComponent(Splits.fileName))
        let cases: [String]
        switch split {
        case "test": cases = splits.test
        case "val": cases = splits.val
        default: throw ValidationError("--split \(split): test or val")
        }
        guard !cases.isEmpty else { throw ValidationError("\(run.path): the \(split) split is empty") }
        let datasetURL = URL(fileURLWithPath: dataset ?? predictor.description.dataset)
        let results = try RunEvaluation.evaluate(predictor: predictor, dataset: datasetURL, cases: cases, heads: heads, levels: levels,
                                                 seed: seed, labels: labels, log: { if !printJSON { print($0) } })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(results)
        if let json { try AtomicFile.write(data, to: URL(fileURLWithPath: json)) }
        if printJSON { print(String(data: data, encoding: .utf8)!); return }
        for r in results {
            print(String(format: "\n%@ split, head %@, misalignment %g mm / %g deg (%d cases)", split, r.head,
                         r.misalignment.maxTranslationMM, r.misalignment.maxRotationDegrees, r.report.cases.count))
            print(EvaluationTable.render(r.report))
        }
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
