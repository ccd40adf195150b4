/// Exponential moving average of a module's weights into a teacher of the same architecture
/// (mean teacher): teacher <- d * teacher + (1 - d) * student, with the ramped decay
/// d = min(1 - 1 / (step + 1), decay) so early teachers follow the student closely.
/// Floating-point buffers are averaged the same way; integer buffers are copied.
public struct ExponentialMovingAverage: Sendable {
    public let decay: Double

    public init(decay: Double = 0.99) { self.decay = decay }

    public func effectiveDecay(step: Int) -> Double { Swift.min(1 - 1 / Double(step + 1), decay) }

    /// Updates `teacher` in place. Both modules must have the same parameter paths and shapes.
    public func update(teacher: Module, student: Module, step: Int) throws {
        let d = effectiveDecay(step: step)
        let tp = teacher.namedParameters(), sp = student.namedParameters()
        let tb = teacher.namedBuffers(), sb = student.namedBuffers()
        guard tp.map(\.0) == sp.map(\.0), tb.map(\.0) == sb.map(\.0) else {
            throw TorchError("EMA: teacher and student have different parameters")
        }
        try withNoGrad {
            for ((_, t), (_, s)) in zip(tp, sp) { try t.value.lerp_(s.value, weight: 1 - d) }
            for ((_, t), (_, s)) in zip(tb, sb) {
                if t.value.dtype.isFloatingPoint { try t.value.lerp_(s.value, weight: 1 - d) } else { try t.value.copy_(s.value) }
            }
        }
    }
}
