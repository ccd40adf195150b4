import Foundation

/// Weight initialisation schemes applied to a built module.
public enum Initialization {
    /// nnU-Net's `InitWeights_He(1e-2)`: every convolution and transposed convolution weight drawn
    /// from N(0, gain^2 / fan_in) with gain = sqrt(2 / (1 + a^2)) (PyTorch's `kaiming_normal_` with
    /// `a` = the LeakyReLU slope, mode fan_in), every such bias set to zero. fan_in is computed the
    /// way PyTorch computes it from the weight tensor: dim 1 times the kernel volume, i.e.
    /// C_in/groups * k^d for a convolution and C_out/groups * k^d for a transposed one.
    ///
    /// Why it matters here: PyTorch's default (kaiming_uniform with a = sqrt(5), variance
    /// 1 / (3 fan_in)) makes the upsampled decoder path enter each decoder stage about 3x weaker
    /// than the skip connection beside it; with a narrow full-resolution stage (8 channels) some
    /// seeds then end with every channel switched off at the left ventricle (BENCHMARKS.md).
    /// Returns the number of layers initialised.
    @discardableResult
    public static func he(_ module: Module, negativeSlope: Double = 1e-2) throws -> Int {
        let gain = (2 / (1 + negativeSlope * negativeSlope)).squareRoot()
        var count = 0
        try withNoGrad {
            for (_, m) in module.namedModules() {
                let weight: Parameter, bias: Parameter?
                if let conv = m as? ConvNd { weight = conv.weight; bias = conv.bias }
                else if let conv = m as? ConvTransposeNd { weight = conv.weight; bias = conv.bias }
                else { continue }
                let shape = weight.value.shape
                let fanIn = shape.dropFirst().reduce(1, *)
                let std = gain / Double(Swift.max(fanIn, 1)).squareRoot()
                try weight.value.copy_(Tensor.randn(shape, dtype: weight.value.dtype, device: weight.value.device) * std)
                try bias?.value.fill_(0)
                count += 1
            }
        }
        return count
    }
}
