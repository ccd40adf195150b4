import Essentials
import Foundation
import Segmentation

extension DemoPipeline {
    /// `concord demo`: the pipeline (phantom, training, prediction, evaluation), then its HTML
    /// report at OUT/report.html.
    public func runWithReport(log: @escaping (String) -> Void = { print($0) }) throws -> Result {
        let result = try run(log: log)
        log("writing the report")
        let html = try RunReport.build(run: result.run, evaluation: result.evaluation, predictions: result.predictions,
                                       dataset: result.dataset, title: result.title)
        try AtomicFile.write(Data(html.utf8), to: reportURL)
        return result
    }

    /// Where `runWithReport` writes the report.
    public var reportURL: URL { out.appendingPathComponent("report.html") }
}
