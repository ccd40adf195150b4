import CTorch

/// Automatic mixed precision regions, as `torch.autocast`: inside `Autocast.run`, libtorch runs
/// the ops that profit from it (convolutions, matmuls, linear layers) in the lower precision and
/// keeps the ops whose numerics need it (softmax, losses, reductions) in float32, casting inputs
/// as each op requires. Outside the region nothing changes. The state is per thread and regions
/// nest; the previous state is restored when `body` returns or throws.
///
/// Supported: the CPU in bfloat16; CUDA in bfloat16 or float16 (float16 wants a `GradScaler`).
public enum Autocast {
    public static func run<T>(device: Device, dtype: DType, _ body: () throws -> T) throws -> T {
        let dev = device.code.0
        var previousEnabled: Int32 = 0, previousDType: Int32 = 0
        try check(ct_autocast_enter(dev, dtype.rawValue, &previousEnabled, &previousDType))
        let result: T
        do {
            result = try body()
        } catch {
            _ = try? check(ct_autocast_exit(dev, previousEnabled, previousDType))
            throw error
        }
        try check(ct_autocast_exit(dev, previousEnabled, previousDType))
        return result
    }

    /// Whether autocast is on for `device`'s type in this thread, and in which dtype.
    public static func state(device: Device) throws -> (enabled: Bool, dtype: DType) {
        var enabled: Int32 = 0, code: Int32 = 0
        try check(ct_autocast_state(device.code.0, &enabled, &code))
        guard let dtype = DType(rawValue: code) else { throw TorchError("autocast reports unknown dtype code \(code)") }
        return (enabled != 0, dtype)
    }
}

extension Module {
    /// Converts every 4-D and 5-D parameter and buffer to `memoryFormat` in place (as PyTorch's
    /// `module.to(memory_format=...)`): convolution weights in channels-last let oneDNN and cuDNN
    /// skip the layout conversions of every call. Values, requires-grad flags and the Parameter
    /// objects optimizers hold are kept; accumulated gradients are dropped.
    public func convert(to memoryFormat: MemoryFormat) throws {
        let rank = memoryFormat == .channelsLast ? 4 : memoryFormat == .channelsLast3d ? 5 : nil
        for p in parameters() where rank == nil || p.value.rank == rank {
            let converted = try p.value.detached().contiguous(memoryFormat: memoryFormat)
            try converted.requiresGrad(!p.isFrozen)
            p.value = converted
        }
        for (_, b) in namedBuffers() where rank == nil || b.value.rank == rank {
            b.value = try b.value.contiguous(memoryFormat: memoryFormat)
        }
    }
}
