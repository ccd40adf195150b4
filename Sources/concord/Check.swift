import ArgumentParser
import Datasets
import Foundation

/// `concord check DATASET`: every problem of a dataset folder at once.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a dataset folder and report every problem at once (exit code 1 on errors).",
        discussion: """
        Checks dataset.json, file names, missing channel files, unreadable NIfTI files, channels whose shapes
        disagree without overlapping affines, labels outside dataset.json's labels, NaN/Inf voxels and empty
        label maps (a warning).
        """
    )

    @Argument(help: "Dataset folder.") var dataset: String
    @Flag(help: "Print the problems as JSON.") var json = false

    func run() throws {
        let problems = DatasetValidator.validate(root: URL(fileURLWithPath: dataset))
        let errors = problems.filter { $0.severity == .error }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(data: try encoder.encode(problems), encoding: .utf8)!)
        } else {
            for p in problems { print(p.description) }
            print("\(dataset): \(errors.count) error(s), \(problems.count - errors.count) warning(s)")
        }
        if !errors.isEmpty { throw ExitCode(1) }
    }
}
