import Datasets
import Foundation
import Torch
import Volumes

/// Assembles `concord report`'s page for a run: its log, config, an evaluation and slice overlays
/// of a few predicted cases (images and references from the run's dataset).
public enum RunReport {
    public static func build(run: URL, evaluation: URL?, predictions: URL?, dataset: URL?, maxCases: Int = 3,
                             title: String? = nil) throws -> String {
        let description = try RunDescription.read(from: run)
        let log = ReportBuilder.parseLog(contentsOf: run.appendingPathComponent("log.jsonl"))
        let config = try? String(contentsOf: run.appendingPathComponent("config.yaml"), encoding: .utf8)
        let evaluationData = try evaluation.map { url -> Data in
            guard let d = FileManager.default.contents(atPath: url.path) else { throw SegmentationError.invalidRun(path: url.path, problem: "cannot read") }
            return d
        }
        var cases: [ReportCase] = []
        if let predictions {
            let layout = try DatasetLayout.load(root: dataset ?? URL(fileURLWithPath: description.dataset))
            let predicted = try FolderEvaluation.niftiFiles(in: predictions)
            for name in predicted.keys.sorted().prefix(maxCases) {
                guard let c = layout.case(named: name) else { continue }
                var images: [(modality: String, volume: Volume)] = []
                for (m, url) in c.channels.enumerated() {
                    if let url { images.append((description.modalityNames[m], try NIfTI.read(url).volume)) }
                }
                let reference = try c.label.map { try NIfTI.read($0).volume }
                cases.append(ReportCase(name: name, images: images, reference: reference, prediction: try NIfTI.read(predicted[name]!).volume))
            }
        }
        let subtitle = "\(description.config.method) on \(URL(fileURLWithPath: description.dataset).lastPathComponent), "
            + "\(description.modalityNames.joined(separator: " + ")), labelled ratio \(description.config.labeledRatio), "
            + "\(description.config.iterations) iterations, seed \(description.config.seed)"
        return try ReportBuilder.html(title: title ?? "Concord run \(run.lastPathComponent)", subtitle: subtitle, configText: config,
                                      logLines: log, evaluation: evaluationData, classNames: description.classNames, cases: cases)
    }
}
