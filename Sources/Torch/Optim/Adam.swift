/// Adam and AdamW with torch.optim's update rules (no amsgrad):
///   Adam:  g <- g + wd * p                     AdamW: p <- p * (1 - lr * wd)
///   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
///   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public let beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    /// Decoupled weight decay (AdamW) instead of L2 added to the gradient.
    public let decoupledWeightDecay: Bool
    public private(set) var stepCount = 0
    private var expAvg: [Tensor?]
    private var expAvgSq: [Tensor?]

    public init(_ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                eps: Double = 1e-8, weightDecay: Double = 0, decoupledWeightDecay: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.decoupledWeightDecay = decoupledWeightDecay
        expAvg = Array(repeating: nil, count: parameters.count)
        expAvgSq = Array(repeating: nil, count: parameters.count)
    }

    /// AdamW (decoupled weight decay, default 0.01 as torch.optim.AdamW).
    public static func adamW(_ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                             eps: Double = 1e-8, weightDecay: Double = 0.01) -> Adam {
        Adam(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
             decoupledWeightDecay: true)
    }

    public func step() throws {
        stepCount += 1
        let t = Double(stepCount)
        let bias1 = 1 - Foundation.pow(beta1, t), bias2 = 1 - Foundation.pow(beta2, t)
        try withNoGrad {
            for (i, p) in parameters.enumerated() {
                guard !p.isFrozen, var g = try p.grad else { continue }
                if weightDecay != 0 {
                    if decoupledWeightDecay { try p.value.mul_(1 - learningRate * weightDecay) } else { g = try g + p.value * weightDecay }
                }
                if expAvg[i] == nil {
                    expAvg[i] = try Tensor.zeros(p.value.shape, dtype: p.value.dtype, device: p.value.device)
                    expAvgSq[i] = try Tensor.zeros(p.value.shape, dtype: p.value.dtype, device: p.value.device)
                }
                let m = expAvg[i]!, v = expAvgSq[i]!
                try m.lerp_(g, weight: 1 - beta1)
                try v.mul_(beta2)
                try v.addcmul_(g, g, value: 1 - beta2)
                let denominator = try v.sqrt() / bias2.squareRoot() + eps
                try p.value.addcdiv_(m, denominator, value: -learningRate / bias1)
            }
        }
    }

    public func stateTensors() throws -> [(String, Tensor)] {
        var out = [("step", try OptimizerState.stepTensor(stepCount))]
        for i in parameters.indices {
            if let m = expAvg[i], let v = expAvgSq[i] { out += [("\(i).exp_avg", m), ("\(i).exp_avg_sq", v)] }
        }
        return out
    }

    public func loadState(_ state: [String: Tensor]) throws {
        let step = try OptimizerState.step(from: state)
        var m: [Tensor?] = [], v: [Tensor?] = []
        for (i, p) in parameters.enumerated() {
            if state["\(i).exp_avg"] != nil {
                m.append(try OptimizerState.buffer(state, "\(i).exp_avg", like: p))
                v.append(try OptimizerState.buffer(state, "\(i).exp_avg_sq", like: p))
            } else { m.append(nil); v.append(nil) }
        }
        expAvg = m; expAvgSq = v; stepCount = step
    }
}

import Foundation
