import ArgumentParser
import Torch

/// The `concord` command: one subcommand per task a user runs.
struct Concord: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "concord",
        abstract: "Semi-supervised multimodal 3D medical image segmentation (CMC, Semi-CML) on libtorch.",
        version: "concord \(version) (libtorch \(Runtime.libtorchVersion), mkldnn \(Runtime.mkldnnAvailable ? "yes" : "no"), cuda \(Runtime.cudaAvailable ? "yes" : "no"))",
        subcommands: [Synth.self, Check.self, Convert.self, Info.self, Plan.self, Train.self, Predict.self, CrossValidate.self, Evaluate.self, Report.self, Demo.self, Bench.self, Export.self]
    )
}
