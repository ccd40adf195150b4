import CTorch

/// Dynamic loss scaling for float16 training, as `torch.amp.GradScaler` with its defaults.
///
/// float16 gradients underflow to zero below 6e-8; the loss is multiplied by `scale` before
/// backward so that small gradients stay representable, and the gradients are divided by it
/// before the optimizer step. A step whose gradients hold inf or NaN (the scale was too large) is
/// skipped and the scale multiplied by `backoffFactor`; after `growthInterval` consecutive finite
/// steps it is multiplied by `growthFactor`. Per step:
///
///     let loss = ...                       // inside Autocast.run(device:dtype: .float16)
///     try scaler.scale(loss).backward()
///     try scaler.step(optimizer)           // unscales, checks, steps unless non-finite
///     try scaler.update()
///
/// Finiteness is checked on the device for all gradients at once; the only host synchronisation
/// is reading that one flag in `step`.
public final class GradScaler {
    /// What a checkpoint saves to resume the scaling exactly.
    public struct State: Codable, Equatable, Sendable {
        public var scale: Double
        /// Consecutive finite steps since the last change of scale.
        public var growthTracker: Int
        public init(scale: Double, growthTracker: Int) {
            self.scale = scale
            self.growthTracker = growthTracker
        }
    }

    public private(set) var scale: Double
    public private(set) var growthTracker = 0
    public let growthFactor: Double
    public let backoffFactor: Double
    public let growthInterval: Int

    /// Whether the gradients of this step were unscaled, and whether they held inf or NaN.
    private var unscaled = false
    private var foundNonFinite: Bool?
    /// Whether the last `step` skipped the optimizer.
    public private(set) var lastStepSkipped = false

    public init(initialScale: Double = 65536, growthFactor: Double = 2, backoffFactor: Double = 0.5,
                growthInterval: Int = 2000) throws {
        guard initialScale > 0, initialScale.isFinite else { throw TorchError("GradScaler: initial scale must be positive and finite, got \(initialScale)") }
        guard growthFactor > 1 else { throw TorchError("GradScaler: growth factor must be > 1, got \(growthFactor)") }
        guard backoffFactor > 0, backoffFactor < 1 else { throw TorchError("GradScaler: backoff factor must be in (0, 1), got \(backoffFactor)") }
        guard growthInterval > 0 else { throw TorchError("GradScaler: growth interval must be positive, got \(growthInterval)") }
        self.scale = initialScale
        self.growthFactor = growthFactor
        self.backoffFactor = backoffFactor
        self.growthInterval = growthInterval
    }

    /// loss * scale, to back-propagate instead of the loss.
    /// A half-precision loss is promoted to float32 first (scale * loss could overflow float16).
    public func scale(_ loss: Tensor) throws -> Tensor {
        let wide = loss.dtype == .float16 || loss.dtype == .bfloat16 ? try loss.to(.float32) : loss
        return try wide * scale
    }

    /// Divides the gradients of `parameters` by the scale in place (once per step; for gradient
    /// clipping before `step`) and returns whether any of them holds inf or NaN.
    @discardableResult
    public func unscale(_ parameters: [Parameter]) throws -> Bool {
        if let found = foundNonFinite, unscaled { return found }
        let grads = try parameters.map { try $0.grad }
        let handles: [ct_tensor?] = grads.map { $0?.handle }
        var out: ct_tensor?
        try handles.withUnsafeBufferPointer { buffer in
            try check(ct_unscale_grads(buffer.baseAddress, Int32(buffer.count), 1 / scale, &out))
        }
        guard let out else { throw TorchError("libtorch returned no flag") }
        let flag = try Tensor.adopt(out)
        withExtendedLifetime(grads) {}
        let found = try flag.item() != 0
        unscaled = true
        foundNonFinite = found
        return found
    }

    /// Unscales the optimizer's gradients (unless `unscale` already did) and steps unless one of
    /// them is not finite. Returns whether the optimizer stepped.
    @discardableResult
    public func step(_ optimizer: Optimizer) throws -> Bool {
        let found = try unscale(optimizer.parameters)
        lastStepSkipped = found
        if !found { try optimizer.step() }
        return !found
    }

    /// Adjusts the scale after a step: backoff when it was skipped, growth after `growthInterval`
    /// finite steps in a row. Call once per iteration, after `step`.
    public func update() throws {
        guard let found = foundNonFinite else { throw TorchError("GradScaler.update called without step or unscale in this iteration") }
        if found {
            scale *= backoffFactor
            growthTracker = 0
        } else {
            growthTracker += 1
            if growthTracker == growthInterval {
                scale *= growthFactor
                growthTracker = 0
            }
        }
        unscaled = false
        foundNonFinite = nil
    }

    public var state: State { State(scale: scale, growthTracker: growthTracker) }

    public func load(_ state: State) throws {
        guard state.scale > 0, state.scale.isFinite else { throw TorchError("GradScaler state: scale must be positive and finite, got \(state.scale)") }
        guard state.growthTracker >= 0 else { throw TorchError("GradScaler state: negative growth tracker \(state.growthTracker)") }
        scale = state.scale
        growthTracker = state.growthTracker
        unscaled = false
        foundNonFinite = nil
    }
}
