/// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, with
/// torch.optim.SGD's update rule:
///   g <- g + wd * p;  b <- momentum * b + (1 - dampening) * g  (b <- g on the first step)
///   g <- g + momentum * b if nesterov else b;  p <- p - lr * g
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public let momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool
    public private(set) var stepCount = 0
    private var momentumBuffers: [Tensor?]

    public init(_ parameters: [Parameter], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false) throws {
        if nesterov && (momentum <= 0 || dampening != 0) { throw TorchError("Nesterov momentum needs momentum > 0 and zero dampening") }
        self.parameters = parameters
        self.learningRate = learningRate; self.momentum = momentum; self.dampening = dampening
        self.weightDecay = weightDecay; self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() throws {
        try withNoGrad {
            for (i, p) in parameters.enumerated() {
                guard !p.isFrozen, var g = try p.grad else { continue }
                if weightDecay != 0 { g = try g + p.value * weightDecay }
                if momentum != 0 {
                    if let b = momentumBuffers[i] {
                        try b.mul_(momentum)
                        try b.add_(g, alpha: 1 - dampening)
                    } else {
                        momentumBuffers[i] = try g.clone()
                    }
                    let b = momentumBuffers[i]!
                    g = nesterov ? try g + b * momentum : b
                }
                try p.value.add_(g, alpha: -learningRate)
            }
        }
        stepCount += 1
    }

    public func stateTensors() throws -> [(String, Tensor)] {
        var out = [("step", try OptimizerState.stepTensor(stepCount))]
        for (i, b) in momentumBuffers.enumerated() { if let b { out.append(("\(i).momentum_buffer", b)) } }
        return out
    }

    public func loadState(_ state: [String: Tensor]) throws {
        let step = try OptimizerState.step(from: state)
        var buffers: [Tensor?] = []
        for (i, p) in parameters.enumerated() {
            buffers.append(state["\(i).momentum_buffer"] == nil ? nil : try OptimizerState.buffer(state, "\(i).momentum_buffer", like: p))
        }
        momentumBuffers = buffers
        stepCount = step
    }
}
