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
    @Option(help: "Also write Concord's forward on one seeded patch-sized input (safetensors: input, output), to check the export against.")
    var reference: String?

    func run() throws {
        let kind = try ExportFormat.parse(format)
        let start = Date()
        let export = try RunExport(run: URL(fileURLWithPath: runFolder), checkpoint: checkpoint, head: head)
        let target = URL(fileURLWithPath: out)
        switch kind {
        case .torchscript: try export.writeTorchScript(to: target)
        case .monaiBundle: try export.writeMONAIBundle(to: target)
        }
        let elapsed = Date().timeIntervalSince(start)
        if let reference {
            let seconds = try export.writeReference(to: URL(fileURLWithPath: reference))
            print(String(format: "reference %@: Concord forward on one patch %.3f s (median of 3)", reference, seconds))
        }
        print(String(format: "exported head %@ of %@ to %@ (%.2f s)", export.head.name, runFolder, target.path, elapsed))
    }
}
