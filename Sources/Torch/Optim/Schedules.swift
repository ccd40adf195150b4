import Foundation

/// A learning rate as a function of the optimizer step (0-based).
public protocol LearningRateSchedule: Sendable {
    func rate(at step: Int) -> Double
}

/// Constant rate.
public struct ConstantLR: LearningRateSchedule {
    public let base: Double
    public init(_ base: Double) { self.base = base }
    public func rate(at step: Int) -> Double { base }
}

/// nnU-Net's polynomial decay: base * (1 - step / total)^power.
public struct PolyLR: LearningRateSchedule {
    public let base: Double, totalSteps: Int, power: Double
    public init(base: Double, totalSteps: Int, power: Double = 0.9) { self.base = base; self.totalSteps = totalSteps; self.power = power }
    public func rate(at step: Int) -> Double {
        let progress = min(Double(step) / Double(max(totalSteps, 1)), 1)
        return base * pow(1 - progress, power)
    }
}

/// Linear warm-up from 0 to `base` over `warmupSteps`, then cosine decay to `minimum` at `totalSteps`.
public struct WarmupCosineLR: LearningRateSchedule {
    public let base: Double, warmupSteps: Int, totalSteps: Int, minimum: Double
    public init(base: Double, warmupSteps: Int, totalSteps: Int, minimum: Double = 0) {
        self.base = base; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.minimum = minimum
    }
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return base * Double(step + 1) / Double(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = min(Double(step - warmupSteps) / Double(span), 1)
        return minimum + 0.5 * (base - minimum) * (1 + cos(Double.pi * progress))
    }
}

/// Linear warm-up from 0 to the schedule's starting rate over `warmupSteps`, then `schedule`
/// evaluated from its own step 0 (so a poly decay built over the remaining steps decays from the
/// end of the warm-up to the end of training): rate(s) = after.rate(0) (s + 1) / warmupSteps for
/// s < warmupSteps, else after.rate(s - warmupSteps). Same warm-up formula as `WarmupCosineLR`.
public struct LinearWarmupLR: LearningRateSchedule {
    public let warmupSteps: Int
    public let after: LearningRateSchedule
    public init(warmupSteps: Int, then after: LearningRateSchedule) { self.warmupSteps = warmupSteps; self.after = after }
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return after.rate(at: 0) * Double(step + 1) / Double(warmupSteps) }
        return after.rate(at: step - warmupSteps)
    }
}
