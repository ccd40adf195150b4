import Foundation
import Torch

/// What one candidate configuration cost when a few training steps of it ran.
public struct StepMeasurement: Codable, Sendable, Equatable {
    /// Peak bytes of tensors during the steps, above what was alive before the method was built
    /// (Concord's CPU allocator on the CPU).
    public var peakBytes: Int
    /// Wall time of the last step (the first one warms caches up and is not timed).
    public var secondsPerIteration: Double
    /// Parameters of all the method's networks.
    public var parameters: Int
}

/// Runs training steps of a configuration on synthetic tensors of its patch and batch sizes and
/// measures them: the method's full loss (every network it has: CMC's branches, Semi-CML's pair,
/// CPS's two networks), backward, and an optimizer step, so gradients and optimizer state count.
public enum PlanMeasurement {
    /// `steps` >= 2 steps; the peak covers all of them, the time is the last one's.
    public static func measure(config: TrainingConfig, modalityNames: [String], numClasses: Int, paired: Bool,
                               device: Device, steps: Int = 2) throws -> StepMeasurement {
        guard device == .cpu else {
            throw SegmentationError.config("measuring peak memory needs Concord's CPU allocator statistics; on \(device) the planner estimates instead")
        }
        Runtime.installCachingAllocator()
        let before = Runtime.memory.live
        Runtime.resetPeakMemory()
        var seconds = 0.0
        var parameters = 0
        try withExtendedLifetime(()) {
            let method = try MethodRegistry.make(config: config, modalityNames: modalityNames, numClasses: numClasses)
            method.model.train()
            parameters = method.model.parameterCount
            let optimizer = try Trainer.makeOptimizer(config, method.trainableParameters)
            let patch = config.volumePatch
            let m = modalityNames.count
            for step in 0..<Swift.max(steps, 2) {
                let labels = try (0..<(paired ? 1 : m)).map { _ in try Tensor.randint(0, numClasses, shape: [config.labeledBatch] + patch) }
                let batch = TrainingBatch(
                    labeledImages: try (0..<m).map { _ in try Tensor.randn([config.labeledBatch, 1] + patch) },
                    labels: (0..<m).map { labels[paired ? 0 : $0] },
                    unlabeledImages: method.usesUnlabeledData && config.unlabeledBatch > 0
                        ? try (0..<m).map { _ in try Tensor.randn([config.unlabeledBatch, 1] + patch) } : [],
                    paired: paired)
                let start = Date()
                try optimizer.zeroGrad()
                let progress = TrainingProgress(step: step, totalSteps: config.iterations)
                let terms = try method.losses(batch, progress: progress)
                try terms.total.backward()
                try optimizer.step()
                try method.afterOptimizerStep(progress: progress)
                _ = try terms.total.item() as Double
                seconds = Date().timeIntervalSince(start)
            }
        }
        return StepMeasurement(peakBytes: Swift.max(0, Runtime.memory.peak - before), secondsPerIteration: seconds, parameters: parameters)
    }
}
