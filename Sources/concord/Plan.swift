import ArgumentParser
import Datasets
import Foundation
import Segmentation

/// `concord plan`: fingerprint a dataset and fit a configuration to the machine.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fingerprint a dataset and plan spacing, patch, network and batch sizes fitted to a memory/time budget.",
        discussion: """
        Writes DATA/plans.json (one entry per method and device) and prints each choice with its reason.
        On the CPU every candidate's peak memory (Concord's allocator) and step time are measured by running
        training steps of the method (all its networks); on CUDA the peak is estimated from a CPU measurement.
        concord train uses the plan when no patch or widths are given.
        """
    )

    @Argument(help: "Dataset folder.") var dataset: String
    @Option(help: "Device to plan for: cpu or cuda.") var device = "cpu"
    @Option(help: "Memory budget in GB (default: a quarter of physical memory on the CPU, 8 on CUDA).") var memoryGb: Double?
    @Option(help: "Time budget per training iteration in seconds (CPU only).") var secondsPerIteration: Double?
    @Option(help: "Method to plan for.") var method = "cmc"

    func run() throws {
        guard device == "cpu" || device == "cuda" else { throw ValidationError("--device \(device): must be cpu or cuda") }
        if secondsPerIteration != nil && device != "cpu" { throw ValidationError("--seconds-per-iteration applies to --device cpu") }
        if let memoryGb, !(memoryGb > 0) { throw ValidationError("--memory-gb \(memoryGb): must be > 0") }
        if let s = secondsPerIteration, !(s > 0) { throw ValidationError("--seconds-per-iteration \(s): must be > 0") }
        var budget = ExperimentPlanner.defaultBudget(device: device)
        if let memoryGb { budget.memoryBytes = Int(memoryGb * 1e9) }
        budget.secondsPerIteration = secondsPerIteration
        let (planned, fingerprint) = try ExperimentPlanner.planForTraining(dataset: URL(fileURLWithPath: dataset), method: method,
                                                                         device: device, budget: budget) { print($0) }
        print(ExperimentPlanner.table(planned, fingerprint: fingerprint))
        print("written: \(DatasetPlans.url(dataset: URL(fileURLWithPath: dataset)).path)")
    }
}
