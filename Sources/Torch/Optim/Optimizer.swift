/// Something that updates parameters from their gradients.
public protocol Optimizer: AnyObject {
    var parameters: [Parameter] { get }
    var learningRate: Double { get set }
    /// Steps taken so far.
    var stepCount: Int { get }
    func step() throws
    /// Per-parameter state by name ("0.exp_avg", ...) for checkpoints, plus the step count.
    func stateTensors() throws -> [(String, Tensor)]
    func loadState(_ state: [String: Tensor]) throws
}

extension Optimizer {
    public func zeroGrad() throws { for p in parameters { try p.value.zeroGrad() } }
}

/// Scales gradients so that their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_).
/// Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Parameter], maxNorm: Double) throws -> Double {
    try withNoGrad {
        let grads = try parameters.compactMap { try $0.grad }
        guard !grads.isEmpty else { return 0 }
        var total = 0.0
        for g in grads { total += try g.square().sum().item() }
        let norm = total.squareRoot()
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 { for g in grads { try g.mul_(coefficient) } }
        return norm
    }
}

/// Helpers shared by the optimizers' checkpoint code.
enum OptimizerState {
    static func stepTensor(_ step: Int) throws -> Tensor { try Tensor([Int64(step)], shape: []) }

    static func step(from state: [String: Tensor]) throws -> Int {
        guard let s = state["step"] else { throw TorchError("optimizer state has no 'step'") }
        return Int(try s.item())
    }

    static func buffer(_ state: [String: Tensor], _ key: String, like p: Parameter) throws -> Tensor {
        guard let t = state[key] else { throw TorchError("optimizer state lacks '\(key)'") }
        guard t.shape == p.value.shape else { throw TorchError("optimizer state '\(key)' has shape \(t.shape), parameter \(p.value.shape)") }
        return try t.to(p.value.device).clone()
    }
}
