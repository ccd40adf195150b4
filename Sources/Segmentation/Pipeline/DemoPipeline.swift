import Essentials
import Datasets
import Foundation
import Metrics
import Torch
import Volumes

/// `concord demo` end to end: synthesise the phantom, train (CMC at 10 % labels by default),
/// predict the test split, evaluate. Everything lands in one folder:
///
///     OUT/dataset/  OUT/run/  OUT/predictions/  OUT/evaluation.json  OUT/evaluation.csv
///
/// The HTML report (OUT/report.html) is written by the Reports module's
/// `DemoPipeline.runWithReport`, which runs this and then the report (Segmentation does not
/// depend on Reports).
public struct DemoPipeline {
    public var out: URL
    public var method = "cmc"
    public var labeledRatio = 0.1
    public var cases = 40
    public var unlabeledCases = 20
    public var size = 48
    public var seed: UInt64 = 0
    public var iterations = 400
    public var timeBudget: TimeInterval? = nil
    public var config = DemoPipeline.defaultConfig()

    public init(out: URL) { self.out = out }

    /// The demo's network and schedule: a 4-stage U-Net (8-16-32-64) on whole 24x48x48 volumes, which
    /// trains to a useful model in minutes on two cores.
    public static func defaultConfig() -> TrainingConfig {
        var c = TrainingConfig()
        c.patch = [24, 48, 48]
        c.unet = UNetConfig(widths: [8, 16, 32, 64])
        c.labeledBatch = 2
        c.unlabeledBatch = 2
        c.learningRate = 3e-3
        c.validationInterval = 100
        c.checkpointInterval = 100
        c.logInterval = 20
        return c
    }

    public struct Result {
        public var report: EvaluationReport
        public var summary: TrainingSummary
        public var classNames: [Int: String]
        /// The folders and files the run wrote (inputs of the report).
        public var dataset: URL
        public var run: URL
        public var predictions: URL
        public var evaluation: URL
        public var title: String
        /// Mean over foreground classes of the mean Dice over test cases.
        public var meanDice: Double {
            let means = report.summary.values.compactMap(\.dice.mean)
            return means.isEmpty ? 0 : means.reduce(0, +) / Double(means.count)
        }
    }

    public func run(log: @escaping (String) -> Void = { print($0) }) throws -> Result {
        let fm = FileManager.default
        let dataset = out.appendingPathComponent("dataset"), run = out.appendingPathComponent("run")
        let predictions = out.appendingPathComponent("predictions")
        for folder in [run, predictions] where fm.fileExists(atPath: folder.path) { try fm.removeItem(at: folder) }

        log("1/4 synthesising the phantom: \(cases) labelled + \(unlabeledCases) unlabelled cases, \(size) voxels in-plane")
        var phantom = PhantomConfig()
        phantom.size = size
        try Phantom.writeDataset(to: dataset, cases: cases, unlabeledCases: unlabeledCases, seed: seed, config: phantom, overwrite: true)

        log("2/4 training \(method) at \(Int(labeledRatio * 100)) % labels")
        var settings = config
        settings.method = method
        settings.labeledRatio = labeledRatio
        settings.iterations = iterations
        settings.seed = seed
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        let loaded = try DatasetLoading.load(dataset: dataset, config: settings, run: run, log: log)
        try loaded.description.write(to: run)
        let trainer = try Trainer(config: settings, data: loaded.data, run: run, resume: false, output: log)
        let summary = try trainer.train(deadline: timeBudget.map { Date().addingTimeInterval($0) })

        log("3/4 predicting the \(loaded.splits.test.count) test cases")
        let predictor = try Predictor(run: run, device: try settings.device.resolve())
        let tests = loaded.splits.test.compactMap { loaded.layout.case(named: $0) }
        try predictor.predict(tests.map { CaseInput(name: $0.name, channels: $0.channels) }, out: predictions, log: log)

        log("4/4 evaluating")
        let references = out.appendingPathComponent("references")
        if fm.fileExists(atPath: references.path) { try fm.removeItem(at: references) }
        try fm.createDirectory(at: references, withIntermediateDirectories: true)
        for c in tests { if let label = c.label { try fm.copyItem(at: label, to: references.appendingPathComponent(label.lastPathComponent)) } }
        let labels = Array(1..<loaded.data.numClasses)
        let report = try FolderEvaluation.evaluate(predictions: predictions, references: references, labels: labels)
        try AtomicFile.write(try report.jsonData(), to: out.appendingPathComponent("evaluation.json"))
        try AtomicFile.write(Data(report.csv().utf8), to: out.appendingPathComponent("evaluation.csv"))

        return Result(report: report, summary: summary, classNames: loaded.description.classNames, dataset: dataset, run: run,
                      predictions: predictions, evaluation: out.appendingPathComponent("evaluation.json"),
                      title: "Concord demo: \(method) on the phantom")
    }
}
