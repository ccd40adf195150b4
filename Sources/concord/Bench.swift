import ArgumentParser
import Foundation
import Segmentation
import Torch

/// `concord bench`: speed measurements quoted in BENCHMARKS.md.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Concord's speed (results go in BENCHMARKS.md).",
        subcommands: [TrainStep.self, CMCStep.self, Conv.self]
    )

    struct TrainStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-step",
            abstract: "Time one training step (forward, Dice+CE loss, backward, Adam) of a 3D U-Net."
        )

        @Option(help: "Cubic patch size.") var size = 64
        @Option(help: "Batch size.") var batch = 2
        @Option(help: "Input channels.") var channels = 2
        @Option(help: "Output classes.") var classes = 4
        @Option(help: "Stage widths, comma separated.") var widths = "16,32,64,128,256"
        @Option(help: "Timed steps (after warm-up).") var steps = 5
        @Option(help: "Warm-up steps.") var warmup = 2
        @Option(help: "Device: cpu, cuda, auto.") var device = "cpu"
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let dev = Device(parsing: device) else { throw ValidationError("unknown device \(device)") }
            let w = widths.split(separator: ",").compactMap { Int($0) }
            try Runtime.manualSeed(0)
            let net = try UNet(inChannels: channels, numClasses: classes, config: UNetConfig(widths: w))
            try net.to(dev)
            let optimizer = Adam(net.trainableParameters(), learningRate: 1e-3)
            let x = try Tensor.randn([batch, channels, size, size, size], device: dev)
            let y = try Tensor.randint(0, classes, shape: [batch, size, size, size]).to(dev)
            var times: [Double] = []
            for i in 0..<(warmup + steps) {
                let start = DispatchTime.now()
                try optimizer.zeroGrad()
                let logits = try net(x)
                let loss = try F.crossEntropy(logits, target: y)
                try loss.backward()
                try optimizer.step()
                _ = try loss.item()  // synchronises with the device
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if i >= warmup { times.append(seconds) }
            }
            times.sort()
            let median = times[times.count / 2]
            let summary = "train step, U-Net \(w), batch \(batch)x\(channels)x\(size)^3, \(Runtime.threads) threads, \(dev): median \(String(format: "%.3f", median)) s (min \(String(format: "%.3f", times.first!)), max \(String(format: "%.3f", times.last!))) over \(steps) steps; \(net.parameterCount) parameters; libtorch \(Runtime.libtorchVersion)"
            if json {
                let object: [String: Any] = ["median_s": median, "min_s": times.first!, "max_s": times.last!, "threads": Runtime.threads,
                                             "size": size, "batch": batch, "channels": channels, "device": dev.description]
                print(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
            } else {
                print(summary)
            }
        }
    }

    /// CMC's full training step: 2 modalities, labelled + unlabelled batch, L_sup + CSC + CAC.
    struct CMCStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cmc-step",
            abstract: "Time one CMC training step (2 modalities, batch B labelled + B unlabelled, Dice+CE, CSC, CAC, Adam)."
        )

        @Option(help: "Cubic patch size.") var size = 64
        @Option(help: "Labelled (and unlabelled) batch size.") var batch = 2
        @Option(help: "Output classes.") var classes = 4
        @Option(help: "Timed steps (after warm-up).") var steps = 5
        @Option(help: "Warm-up steps.") var warmup = 2
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            try Runtime.manualSeed(0)
            let method = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: classes)), modalityNames: ["a", "b"])
            let optimizer = Adam(method.trainableParameters, learningRate: 1e-3)
            let shape = [batch, 1, size, size, size]
            let batchData = TrainingBatch(labeledImages: [try Tensor.randn(shape), try Tensor.randn(shape)],
                                          labels: Array(repeating: try Tensor.randint(0, classes, shape: [batch, size, size, size]), count: 2),
                                          unlabeledImages: [try Tensor.randn(shape), try Tensor.randn(shape)])
            var times: [Double] = []
            for i in 0..<(warmup + steps) {
                let start = DispatchTime.now()
                try optimizer.zeroGrad()
                let terms = try method.losses(batchData, progress: TrainingProgress(step: 1, totalSteps: 1))
                try terms.total.backward()
                try optimizer.step()
                _ = try terms.total.item()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if i >= warmup { times.append(seconds) }
            }
            times.sort()
            let median = times[times.count / 2]
            if json {
                let object: [String: Any] = ["model": "cmc", "median_s": median, "min_s": times.first!, "max_s": times.last!,
                                             "threads": Runtime.threads, "size": size, "batch": batch]
                print(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
            } else {
                print("CMC step, 2 modalities, batch \(batch)+\(batch) x 1 x \(size)^3, \(Runtime.threads) threads: median \(String(format: "%.3f", median)) s (min \(String(format: "%.3f", times.first!)), max \(String(format: "%.3f", times.last!))); \(method.model.parameterCount) parameters")
            }
        }
    }

    /// The conv3d throughput this machine reaches, the reference for the GFLOP/s of a training step.
    struct Conv: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Measure conv3d forward throughput (GFLOP/s).")
        @Option(help: "Cubic input size.") var size = 64
        @Option(help: "Channels in and out.") var channels = 32
        @Option(help: "Batch size.") var batch = 2
        @Option(help: "Repetitions.") var repeats = 5

        func run() throws {
            let x = try Tensor.randn([batch, channels, size, size, size])
            let w = try Tensor.randn([channels, channels, 3, 3, 3])
            var best = Double.infinity
            try withNoGrad {
                for _ in 0..<(repeats + 1) {
                    let start = DispatchTime.now()
                    _ = try F.conv(x, weight: w, padding: [1]).sum().item()
                    best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
                }
            }
            let flops = 2.0 * Double(batch * channels * channels * 27) * Double(size * size * size)
            print(String(format: "conv3d %dx%dx%d^3 -> %d, 3^3 kernel, %d threads: best %.3f s, %.1f GFLOP/s",
                         batch, channels, size, channels, Runtime.threads, best, flops / best / 1e9))
        }
    }
}
