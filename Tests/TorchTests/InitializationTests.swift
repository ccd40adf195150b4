import XCTest
@testable import Torch

final class InitializationTests: XCTestCase {
    /// He (nnU-Net's InitWeights_He(1e-2)): N(0, 2 / (1 + 0.01^2) / fan_in), fan_in = weight dim 1
    /// x kernel volume (C_in * k^3 for a convolution, C_out * k^3 for a transposed one, as
    /// PyTorch's kaiming_normal_ computes it), biases zero, other layers untouched.
    func testHeInitialisationStatistics() throws {
        try Runtime.manualSeed(11)
        final class Pair: Module, @unchecked Sendable {
            let conv = try! Conv3d(16, 32, kernelSize: 3)
            let up = try! ConvTranspose3d(32, 8, kernelSize: 2, stride: 2)
            let norm = try! InstanceNorm(8)
        }
        let net = Pair()
        let normBefore = try net.norm.weight!.value.toArray(Float.self)
        XCTAssertEqual(try Initialization.he(net), 2)
        let gain2 = 2 / (1 + 1e-4)
        for (weight, bias, fanIn) in [(net.conv.weight, net.conv.bias, 16 * 27), (net.up.weight, net.up.bias, 8 * 8)] {
            let w = try weight.value.toArray(Float.self).map(Double.init)
            let mean = w.reduce(0, +) / Double(w.count)
            let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
            let expected = (gain2 / Double(fanIn)).squareRoot()
            // 13 824 (conv) and 2 048 (transposed) samples: the sample std is within 5 % of sigma.
            XCTAssertEqual(std, expected, accuracy: 0.05 * expected)
            XCTAssertEqual(mean, 0, accuracy: 0.1 * expected)
            XCTAssertEqual(try bias!.value.toArray(Float.self), [Float](repeating: 0, count: bias!.value.count))
        }
        XCTAssertEqual(try net.norm.weight!.value.toArray(Float.self), normBefore)
        // Same seed, same weights.
        try Runtime.manualSeed(11)
        let again = Pair()
        try Initialization.he(again)
        XCTAssertEqual(try again.conv.weight.value.toArray(Float.self), try net.conv.weight.value.toArray(Float.self))
    }
}
