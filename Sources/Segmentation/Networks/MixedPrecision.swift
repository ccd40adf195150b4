import Torch

/// Mixed precision for the networks' forward passes: the convolutions and matmuls inside a
/// network run under libtorch's autocast in `dtype` (bfloat16 or float16), and every tensor a
/// network returns (logits, deep-supervision logits, bottleneck features) is float32 again.
///
/// Why at the network boundary rather than around a whole training step: the losses (softmax,
/// Dice, the InfoNCE terms, PReL's pseudo-labels, mean teacher's consistency) contain
/// exponentials, normalisations and large sums whose numerics need float32, and under autocast a
/// matmul inside a loss (CSC's 2C x 2C similarity, MIA's C x C attention) would drop to 16 bits.
/// With the region closed at the network's output, everything a method computes from the outputs
/// runs in float32 without any loss having to know about precision. Gradients flow through the
/// casts as usual.
public struct MixedPrecision: Sendable, Equatable {
    public var device: Device
    public var dtype: DType

    public init(device: Device, dtype: DType) { self.device = device; self.dtype = dtype }
}

/// `precision`: the arithmetic of the networks' forward passes (training and prediction).
public enum PrecisionSetting: String, SettingChoice {
    /// float32 throughout (the default).
    case fp32
    /// bfloat16 autocast inside the networks: CPU (fast with AVX-512 BF16) and CUDA.
    case bf16
    /// float16 autocast inside the networks, with dynamic loss scaling: CUDA only.
    case fp16

    /// The autocast policy for `device`, nil for fp32; an error for fp16 on the CPU.
    public func policy(on device: Device) throws -> MixedPrecision? {
        switch self {
        case .fp32: return nil
        case .bf16: return MixedPrecision(device: device, dtype: .bfloat16)
        case .fp16:
            guard case .cuda = device else {
                throw SegmentationError.config("precision fp16 needs a CUDA device (dynamic loss scaling for float16 is a GPU technique); use bf16 on the CPU")
            }
            return MixedPrecision(device: device, dtype: .float16)
        }
    }
}

/// `lossScaling`.
public enum LossScalingSetting: String, SettingChoice {
    case auto, dynamic, none

    /// Whether a run in `precision` scales its loss.
    public func enabled(for precision: PrecisionSetting) -> Bool {
        switch self {
        case .auto: return precision == .fp16
        case .dynamic: return true
        case .none: return false
        }
    }
}

/// A network whose forward pass honours a mixed-precision policy (U-Net, CMC).
public protocol MixedPrecisionNetwork: AnyObject {
    var mixedPrecision: MixedPrecision? { get set }
}

extension MixedPrecisionNetwork {
    /// Runs `body` under the policy (if any) and widens what it returns to float32.
    func forwardInPrecision<T>(_ body: () throws -> T, widen: (T) throws -> T) throws -> T {
        guard let policy = mixedPrecision else { return try body() }
        let narrow = try Autocast.run(device: policy.device, dtype: policy.dtype, body)
        return try widen(narrow)
    }
}

extension Tensor {
    /// float32 when the tensor is a 16-bit float, else itself (no copy).
    func widenedToFloat32() throws -> Tensor {
        dtype == .bfloat16 || dtype == .float16 ? try to(.float32) : self
    }
}

extension Module {
    /// Sets `policy` on every network in this module tree (a method's `model`); nil turns mixed
    /// precision off. A network a method builds later from one of these (the PReL teacher) takes
    /// the policy of the network it copies.
    public func setMixedPrecision(_ policy: MixedPrecision?) {
        for (_, module) in namedModules() {
            (module as? MixedPrecisionNetwork)?.mixedPrecision = policy
        }
    }
}
