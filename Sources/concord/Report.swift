import Essentials
import ArgumentParser
import Foundation
import Reports
import Segmentation
import Torch

/// `concord report`: one self-contained HTML page per run.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an HTML report of a run: training curves, metrics, slice overlays (self-contained, offline)."
    )

    @Option(name: .customLong("run"), help: "A run folder.") var runFolder: String
    @Option(help: "Evaluation JSON written by concord evaluate.") var eval: String?
    @Option(help: "Folder of predicted masks (for slice overlays).") var pred: String?
    @Option(help: "Dataset folder of the images and references (default: the run's dataset).") var dataset: String?
    @Option(help: "Cases shown as slice overlays.") var cases = 3
    @Option(help: "Output HTML file.") var out: String

    func run() throws {
        let html = try RunReport.build(run: URL(fileURLWithPath: runFolder), evaluation: eval.map { URL(fileURLWithPath: $0) },
                                       predictions: pred.map { URL(fileURLWithPath: $0) }, dataset: dataset.map { URL(fileURLWithPath: $0) },
                                       maxCases: cases)
        try AtomicFile.write(Data(html.utf8), to: URL(fileURLWithPath: out))
        print("report written to \(out)")
    }
}
