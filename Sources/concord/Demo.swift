import ArgumentParser
import Foundation
import Reports
import Segmentation
import Torch

/// `concord demo`: the end-to-end run a newcomer starts with.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Phantom -> train (CMC, 10 % labels) -> predict -> evaluate -> report, in one folder.",
        discussion: "Writes OUT/dataset, OUT/run, OUT/predictions, OUT/evaluation.json (+ .csv) and OUT/report.html."
    )

    @Option(help: "Output folder.") var out = "demo-out"
    @Option(help: ArgumentHelp("Method: \(MethodRegistry.names.joined(separator: ", ")).", discussion: MethodRegistry.helpText))
    var method = "cmc"
    @Option(help: "Fraction of training cases with labels.") var labeled = 0.1
    @Option(help: "Training iterations.") var iterations = 400
    @Option(help: "Time budget for training in minutes (training stops early when it is spent).") var minutes: Double = 8
    @Option(help: "Phantom cases with labels (train/val/test are split from them).") var cases = 40
    @Option(help: "Extra unlabelled phantom cases.") var unlabeled = 20
    @Option(help: "Phantom in-plane size (voxels).") var size = 48
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Device: \(DeviceSetting.choices).") var device = "cpu"
    @Option(help: "Precision of the networks: \(PrecisionSetting.choices).") var precision = "fp32"

    func run() throws {
        let start = Date()
        var demo = DemoPipeline(out: URL(fileURLWithPath: out))
        demo.method = method
        demo.labeledRatio = labeled
        demo.iterations = iterations
        demo.timeBudget = minutes * 60
        demo.cases = cases
        demo.unlabeledCases = unlabeled
        demo.size = size
        demo.seed = seed
        guard let deviceSetting = DeviceSetting(parsing: device) else { throw ValidationError("--device must be \(DeviceSetting.choices), got '\(device)'") }
        guard let precisionSetting = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices), got '\(precision)'") }
        demo.config.device = deviceSetting
        demo.config.precision = precisionSetting
        if size != 48 {
            let z = Swift.max(8, (size / 2) / 8 * 8), xy = Swift.max(8, size / 8 * 8)
            demo.config.patch = [z, xy, xy]
        }
        let result = try demo.runWithReport()
        print("")
        print("Dice on the \(result.report.cases.count) test cases (mean ± std):")
        for key in result.report.summary.keys.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
            let s = result.report.summary[key]!
            let name = Int(key).flatMap { result.classNames[$0] } ?? key
            print(String(format: "  %-4@ %.3f ± %.3f   HD95 %.2f mm", name as NSString, s.dice.mean ?? 0, s.dice.std ?? 0, s.hd95.mean ?? .nan))
        }
        print(String(format: "  mean foreground Dice %.3f", result.meanDice))
        print(String(format: "trained %d iterations%@; total %@", result.summary.iterations,
                     result.summary.stoppedByDeadline ? " (time budget reached)" as NSString : "" as NSString, formatDuration(Date().timeIntervalSince(start))))
        print("report: \(out)/report.html")
    }
}
