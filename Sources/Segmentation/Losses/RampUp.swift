import Foundation

/// Weight schedules for unsupervised terms.
public enum RampUp {
    /// The sigmoid-shaped ramp of Laine & Aila used by CMC, mean teacher and Semi-CML:
    /// w(t) = exp(-5 (1 - t)^2) for t in [0, 1], where t = (step - start) / length clamped to [0, 1];
    /// 0 before `start`.
    public static func sigmoid(step: Int, start: Int = 0, length: Int) -> Double {
        if step < start { return 0 }
        guard length > 0 else { return 1 }
        let t = Swift.min(Swift.max(Double(step - start) / Double(length), 0), 1)
        return exp(-5 * (1 - t) * (1 - t))
    }

    /// Linear ramp from 0 to 1 over `length` steps after `start`.
    public static func linear(step: Int, start: Int = 0, length: Int) -> Double {
        guard length > 0 else { return step >= start ? 1 : 0 }
        return Swift.min(Swift.max(Double(step - start) / Double(length), 0), 1)
    }

    /// Cosine ramp-down from 1 to 0 over `length` steps after `start`.
    public static func cosineDown(step: Int, start: Int = 0, length: Int) -> Double {
        let t = linear(step: step, start: start, length: length)
        return 0.5 * (cos(Double.pi * t) + 1)
    }
}
