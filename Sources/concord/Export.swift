import ArgumentParser
import Foundation
import Segmentation
import Torch

/// `concord export`: a trained run in a form other tools load without Concord.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a trained run as a TorchScript module or a MONAI bundle.",
        discussion: """
        torchscript: one file loadable with torch.jit.load in plain PyTorch. forward(x) takes x = (B, C, spatial...)
        with the head's input channels (see its concord.json extra file) after Concord's preprocessing, and returns
        logits (log-probabilities for averaged heads). monai-bundle: a folder in MONAI's bundle layout with that
        module as models/model.ts and the preprocessing and sliding window as MONAI transforms.
        """
    )

    @Argument(help: "A run folder written by concord train.") var runFolder: String
    @Option(help: "torchscript or monai-bundle.") var format: String = "torchscript"
    @Option(help: "Output file (torchscript) or folder (monai-bundle).") var out: String
    @Option(help: "Prediction head by name (default: the method's final answer, as concord predict).") var head: String?
    @Option(help: "Checkpoint: best or last.") var checkpoint = "best"

    func run() throws {
        guard let kind = ExportFormat(rawValue: format) else {
            throw ValidationError("--format \(format): unknown format; use one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let start = Date()
        let export = try RunExport(run: URL(fileURLWithPath: runFolder), checkpoint: checkpoint, head: head)
        let target = URL(fileURLWithPath: out)
        switch kind {
        case .torchscript: try export.writeTorchScript(to: target)
        case .monaiBundle: try export.writeMONAIBundle(to: target)
        }
        print(String(format: "exported head %@ of %@ to %@ (%.2f s)", export.head.name, runFolder, target.path, Date().timeIntervalSince(start)))
    }
}
