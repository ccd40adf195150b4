import ArgumentParser
import Foundation
import Segmentation
import Torch

/// `concord cross-validate`: scores the fold runs of one configuration on their own validation
/// cases and decides the postprocessing.
struct CrossValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cross-validate",
        abstract: "Score fold runs on their validation cases and decide the postprocessing (largest connected components).",
        discussion: """
        Each run (trained with --fold k) segments the validation cases of its splits.json; Dice per class is pooled over
        all folds. Keeping the largest connected component (26-connectivity) of the whole foreground is kept when it
        raises the mean Dice over classes; then, per class, keeping that class's largest component is kept when it
        raises that class's Dice. The decision and its numbers are written as postprocessing.json (default: in the
        folder holding the runs, where concord predict finds it) and a table per fold and class is printed.
        """
    )

    @Option(name: .customLong("runs"), parsing: .upToNextOption, help: "Fold runs, or a folder whose subfolders are the fold runs.") var runFolders: [String]
    @Option(help: "Folder for postprocessing.json (default: the folder holding the runs).") var out: String?
    @Option(help: "Dataset folder (default: the one each run was trained on).") var dataset: String?
    @Option(help: "Checkpoint: best or last.") var checkpoint = "best"
    @Option(help: "Device: \(DeviceSetting.choices).") var device = "cpu"

    func run() throws {
        guard let setting = DeviceSetting(parsing: device) else { throw ValidationError("--device \(device): must be \(DeviceSetting.choices)") }
        let dev = try setting.resolve()
        let runs = try EnsemblePredictor.runFolders(runFolders.map { URL(fileURLWithPath: $0) })
        let folder: URL
        if let out {
            folder = URL(fileURLWithPath: out)
        } else {
            let parents = Set(runs.map { $0.standardizedFileURL.deletingLastPathComponent().path })
            guard parents.count == 1 else { throw ValidationError("the runs lie in different folders; say where postprocessing.json goes with --out") }
            folder = URL(fileURLWithPath: parents.first!)
        }
        let predictors = try runs.map { try Predictor(run: $0, checkpoint: checkpoint, device: dev) }
        let decision = try CrossValidation.run(predictors: predictors, dataset: dataset.map { URL(fileURLWithPath: $0) })
        let written = try CrossValidation.write(decision, to: folder)
        print(decision.table(classNames: predictors[0].description.classNames))
        print("wrote \(written.path)")
    }
}
