import ArgumentParser
import Foundation
import Segmentation
import Torch

/// `concord demo`: the end-to-end run a newcomer starts with.
///
/// Until the phantom pipeline lands this trains a small 3D U-Net on a generated two-channel
/// volume (a noisy sphere and shell) and prints the loss falling, which proves the build, libtorch
/// and autograd work on this machine.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the built-in demo end to end.")

    @Option(help: "Output folder.") var out = "demo-out"
    @Option(help: "Training iterations.") var iterations = 40
    @Option(help: "Cubic volume size.") var size = 32
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        try Runtime.manualSeed(seed)
        let n = size
        // Label: 1 inside a sphere of radius n/4, 2 in a shell up to n/3; two noisy channels.
        var label = [Int64](repeating: 0, count: n * n * n)
        var image = [Float](repeating: 0, count: 2 * n * n * n)
        let c = Double(n - 1) / 2
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let r = ((Double(x) - c) * (Double(x) - c) + (Double(y) - c) * (Double(y) - c) + (Double(z) - c) * (Double(z) - c)).squareRoot()
            let i = (z * n + y) * n + x
            label[i] = r < Double(n) / 4 ? 1 : (r < Double(n) / 3 ? 2 : 0)
            image[i] = label[i] == 1 ? 1 : 0
            image[n * n * n + i] = label[i] == 2 ? 1 : 0
        } } }
        let x = try Tensor(image, shape: [1, 2, n, n, n]) + Tensor.randn([1, 2, n, n, n]) * 0.5
        let y = try Tensor(label, shape: [1, n, n, n])
        let net = try UNet(inChannels: 2, numClasses: 3, config: UNetConfig(widths: [8, 16, 32]))
        let optimizer = Adam(net.trainableParameters(), learningRate: 3e-3)
        let start = Date()
        for it in 1...iterations {
            try optimizer.zeroGrad()
            let loss = try F.crossEntropy(net(x), target: y)
            try loss.backward()
            try optimizer.step()
            if it == 1 || it % 10 == 0 || it == iterations {
                print(String(format: "iteration %4d/%d  loss %.4f  %.1f s", it, iterations, try loss.item(), Date().timeIntervalSince(start)))
            }
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try net.save(to: URL(fileURLWithPath: out).appendingPathComponent("demo-unet.safetensors"))
        print("weights written to \(out)/demo-unet.safetensors")
    }
}
