import ArgumentParser
import Essentials
import Foundation
import Segmentation
import Torch
import Volumes
import Metrics

/// Peak resident memory of this process so far, in MB (getrusage's ru_maxrss is in KB on Linux).
func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// `concord bench`: speed measurements quoted in BENCHMARKS.md.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Concord's speed (results go in BENCHMARKS.md).",
        subcommands: [TrainStep.self, CMCStep.self, Conv.self, NIfTIRead.self, SurfaceMetrics.self, SlidingWindow.self]
    )

    struct TrainStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-step",
            abstract: "Time one training step (forward, Dice+CE loss, backward, Adam) of a 3D U-Net.",
            discussion: "--encoder vit swaps the U-Net encoder for a ViT-3D (--vit small: embed 48, depth 2, 4 heads, patch 8; --vit sam-med3d: SAM-Med3D's vit_b, for GPUs); --frozen freezes its backbone as after loading pretrained weights."
        )

        @Option(help: "Cubic patch size.") var size = 64
        @Option(help: "Batch size.") var batch = 2
        @Option(help: "Input channels.") var channels = 2
        @Option(help: "Output classes.") var classes = 4
        @Option(help: "Stage widths, comma separated.") var widths = "16,32,64,128,256"
        @Option(help: "Timed steps (after warm-up).") var steps = 5
        @Option(help: "Warm-up steps.") var warmup = 2
        @Option(help: "Device: cpu, cuda, auto.") var device = "cpu"
        @Option(help: "Encoder: unet or vit.") var encoder = "unet"
        @Option(help: "ViT preset with --encoder vit: small or sam-med3d.") var vit = "small"
        @Flag(help: "Freeze the ViT backbone (patch embedding, attention, MLPs), as after loading pretrained weights.") var frozen = false
        @Flag(help: "Deep supervision (auxiliary decoder heads, weighted Dice+CE).") var deepSupervision = false
        @Option(help: "Precision of the network: \(PrecisionSetting.choices).") var precision = "fp32"
        @Flag(help: "Channels-last (NDHWC) weights and inputs.") var channelsLast = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let dev = Device(parsing: device) else { throw ValidationError("unknown device \(device)") }
            let w = widths.split(separator: ",").compactMap { Int($0) }
            guard let kind = EncoderKind(rawValue: encoder) else { throw ValidationError("--encoder: unet or vit") }
            var config = UNetConfig(widths: w, deepSupervision: deepSupervision, encoder: kind)
            switch vit {
            case "small": config.vit = .small(imageSize: size)
            case "sam-med3d": config.vit = ViTConfig()
            default: throw ValidationError("--vit: small or sam-med3d")
            }
            try Runtime.manualSeed(0)
            let net = try UNet(inChannels: channels, numClasses: classes, config: config)
            if frozen, let v = net.encoder as? ViTUNetEncoder { v.vit.freezeBackbone() }
            try net.to(dev)
            guard let precisionSetting = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices)") }
            net.mixedPrecision = try precisionSetting.policy(on: dev)
            if channelsLast { try net.convert(to: .channelsLast3d) }
            let optimizer = Adam(net.trainableParameters(), learningRate: 1e-3)
            var x = try Tensor.randn([batch, channels, size, size, size], device: dev)
            if channelsLast { x = try x.contiguous(memoryFormat: .channelsLast3d) }
            let y = try Tensor.randint(0, classes, shape: [batch, size, size, size]).to(dev)
            var times: [Double] = []
            for i in 0..<(warmup + steps) {
                let start = DispatchTime.now()
                try optimizer.zeroGrad()
                let loss = deepSupervision ? try DiceCELoss()(outputs: net.outputs(x), target: y) : try F.crossEntropy(net(x), target: y)
                try loss.backward()
                try optimizer.step()
                _ = try loss.item()  // synchronises with the device
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if i >= warmup { times.append(seconds) }
            }
            times.sort()
            let median = times[times.count / 2]
            let encoderText = kind == .vit ? ", ViT encoder (\(vit)\(frozen ? ", frozen" : ""))" : ""
            let summary = "train step, U-Net \(w)\(encoderText)\(deepSupervision ? ", deep supervision" : ""), \(precision)\(channelsLast ? ", channels-last" : ""), batch \(batch)x\(channels)x\(size)^3, \(Runtime.threads) threads, \(dev): median \(String(format: "%.3f", median)) s (min \(String(format: "%.3f", times.first!)), max \(String(format: "%.3f", times.last!))) over \(steps) steps; \(net.parameterCount) parameters (\(net.trainableParameters().reduce(0) { $0 + $1.value.count }) trainable); libtorch \(Runtime.libtorchVersion)"
            if json {
                let object: [String: Any] = ["median_s": median, "min_s": times.first!, "max_s": times.last!, "threads": Runtime.threads,
                                             "size": size, "batch": batch, "channels": channels, "device": dev.description,
                                             "precision": precision, "channels_last": channelsLast, "libtorch": Runtime.libtorchVersion,
                                             "peak_rss_mb": peakResidentMB()]
                print(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
            } else {
                print(summary + String(format: "; peak RSS %.0f MB", peakResidentMB()))
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
        @Option(help: "Stage widths, comma separated.") var widths = "16,32,64,128,256"
        @Option(help: "Timed steps (after warm-up).") var steps = 5
        @Option(help: "Warm-up steps.") var warmup = 2
        @Option(help: "Device: \(DeviceSetting.choices).") var device = "cpu"
        @Option(help: "Precision of the networks: \(PrecisionSetting.choices).") var precision = "fp32"
        @Flag(help: "Channels-last (NDHWC) weights and inputs.") var channelsLast = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let dev = try DeviceSetting(parsing: device)?.resolve() else { throw ValidationError("--device must be \(DeviceSetting.choices)") }
            guard let precisionSetting = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices)") }
            let w = widths.split(separator: ",").compactMap { Int($0) }
            try Runtime.manualSeed(0)
            let method = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: classes, unet: UNetConfig(widths: w))),
                                   modalityNames: ["a", "b"])
            try method.model.to(dev)
            if channelsLast { try method.model.convert(to: .channelsLast3d) }
            method.model.setMixedPrecision(try precisionSetting.policy(on: dev))
            let scaler = precisionSetting == .fp16 ? try GradScaler() : nil
            let optimizer = Adam(method.trainableParameters, learningRate: 1e-3)
            let shape = [batch, 1, size, size, size]
            func image() throws -> Tensor {
                let x = try Tensor.randn(shape).to(dev)
                return channelsLast ? try x.contiguous(memoryFormat: .channelsLast3d) : x
            }
            let batchData = TrainingBatch(labeledImages: [try image(), try image()],
                                          labels: Array(repeating: try Tensor.randint(0, classes, shape: [batch, size, size, size]).to(dev), count: 2),
                                          unlabeledImages: [try image(), try image()])
            var times: [Double] = []
            for i in 0..<(warmup + steps) {
                if i == warmup { try Runtime.resetPeakMemory(on: dev) }
                let start = DispatchTime.now()
                try optimizer.zeroGrad()
                let terms = try method.losses(batchData, progress: TrainingProgress(step: 1, totalSteps: 1))
                if let scaler {
                    try scaler.scale(terms.total).backward()
                    try scaler.step(optimizer)
                    try scaler.update()
                } else {
                    try terms.total.backward()
                    try optimizer.step()
                }
                _ = try terms.total.item()  // synchronises with the device
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if i >= warmup { times.append(seconds) }
            }
            times.sort()
            let median = times[times.count / 2]
            let peakMB = Double(try Runtime.memory(on: dev).peak) / 1_048_576
            if json {
                let object: [String: Any] = ["model": "cmc", "median_s": median, "min_s": times.first!, "max_s": times.last!,
                                             "threads": Runtime.threads, "size": size, "batch": batch, "widths": w, "device": dev.description,
                                             "precision": precision, "channels_last": channelsLast, "peak_device_mb": peakMB,
                                             "peak_rss_mb": peakResidentMB(), "libtorch": Runtime.libtorchVersion]
                print(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
            } else {
                print("CMC step, 2 modalities, batch \(batch)+\(batch) x 1 x \(size)^3, widths \(w), \(dev), \(precision)\(channelsLast ? ", channels-last" : ""), \(Runtime.threads) threads, libtorch \(Runtime.libtorchVersion): median \(String(format: "%.3f", median)) s (min \(String(format: "%.3f", times.first!)), max \(String(format: "%.3f", times.last!))); \(method.model.parameterCount) parameters; peak tensors \(String(format: "%.0f", peakMB)) MB, peak RSS \(String(format: "%.0f", peakResidentMB())) MB")
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

    /// Reading a .nii.gz: the time of NIfTI.read (gunzip, convert to float32, scaling).
    struct NIfTIRead: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nifti",
            abstract: "Time reading a NIfTI file (with --make, first write a 256x256x128 int16 .nii.gz test file)."
        )
        @Argument(help: "The file.") var file: String
        @Flag(help: "Write the test file first: 256x256x128 int16, smooth anatomy-like content plus noise.") var make = false
        @Option(help: "Repetitions.") var repeats = 5

        func run() throws {
            let url = URL(fileURLWithPath: file)
            if make {
                var rng = SeededGenerator(seed: 1, stream: [])
                let (nx, ny, nz) = (256, 256, 128)
                var voxels = [Float](repeating: 0, count: nx * ny * nz)
                for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
                    let x = Double(i - 128) / 100, y = Double(j - 128) / 90, z = Double(k - 64) / 60
                    let body = x * x + y * y + z * z < 1 ? 400 + 300 * sin(Double(i) / 9) * cos(Double(j) / 11) : -1000
                    voxels[i + nx * (j + ny * k)] = Float((body + 40 * (rng.unit() - 0.5)).rounded())
                } } }
                try NIfTI.write(Volume(shape: [nx, ny, nz], voxels: voxels, spacing: [0.8, 0.8, 2.5]), to: url, datatype: .int16)
            }
            var times: [Double] = []
            for _ in 0..<(repeats + 1) {
                let start = DispatchTime.now()
                let image = try NIfTI.read(url)
                precondition(image.volume.count > 0)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            }
            times.removeFirst()
            times.sort()
            print(String(format: "NIfTI.read %@: median %.4f s (min %.4f) over %d reads; peak RSS %.0f MB", url.lastPathComponent,
                         times[times.count / 2], times[0], repeats, peakResidentMB()))
        }
    }

    /// HD95/ASD/ASSD on two large masks (spheres), the workload of medpy/MONAI in benchmarks/python/metrics.py.
    struct SurfaceMetrics: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "metrics",
            abstract: "Time Dice, HD95, HD, ASD, ASSD on two 256x256x128 sphere masks (radius 40 and 42, offset (3,-2,1), spacing 0.8x0.8x2.5)."
        )
        @Option(help: "Repetitions.") var repeats = 5

        func run() throws {
            let (nx, ny, nz) = (256, 256, 128)
            var a = [UInt8](repeating: 0, count: nx * ny * nz), b = a
            for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
                let (x, y, z) = (Double(i - 128), Double(j - 128), Double(k - 64))
                if x * x + y * y + z * z <= 40 * 40 { a[i + nx * (j + ny * k)] = 1 }
                let (u, v, w) = (x - 3, y + 2, z - 1)
                if u * u + v * v + w * w <= 42 * 42 { b[i + nx * (j + ny * k)] = 1 }
            } } }
            var times: [Double] = []
            var result: BinaryMetrics? = nil
            for _ in 0..<repeats {
                let start = DispatchTime.now()
                result = SegmentationMetrics.binary(prediction: a, reference: b, shape: [nx, ny, nz], spacing: [0.8, 0.8, 2.5])
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            }
            times.sort()
            let r = result!
            print(String(format: "metrics 256x256x128: median %.4f s; dice %.6f hd95 %.6f hd %.6f asd %.6f assd %.6f", times[times.count / 2],
                         r.dice, r.hd95 ?? .nan, r.hd ?? .nan, r.asd ?? .nan, r.assd ?? .nan) + String(format: "; peak RSS %.0f MB", peakResidentMB()))
        }
    }

    /// Sliding-window inference of a U-Net on a two-channel volume; writes the input, weights and
    /// output so benchmarks/python/sliding_window.py can run MONAI on the same and compare.
    struct SlidingWindow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sliding-window",
            abstract: "Time sliding-window inference (Gaussian blending) of a U-Net on a 2-channel volume."
        )
        @Option(help: "Volume size D,H,W.") var size = "96,192,192"
        @Option(help: "Window size (cubic).") var patch = 64
        @Option(help: "Overlap.") var overlap = 0.5
        @Option(help: "Windows per batch.") var windowBatch = 2
        @Option(help: "Blending: gaussian (sigma 0.125 x window) or constant.") var blend = "gaussian"
        @Option(help: "Folder to write input.f32, output.f32 and weights.safetensors for the Python side.") var export: String?
        @Option(help: "Device: \(DeviceSetting.choices).") var device = "cpu"

        func run() throws {
            let dims = size.split(separator: ",").compactMap { Int($0) }
            guard dims.count == 3 else { throw ValidationError("--size wants D,H,W") }
            guard let dev = try DeviceSetting(parsing: device)?.resolve() else { throw ValidationError("--device must be \(DeviceSetting.choices)") }
            try Runtime.manualSeed(0)
            let net = try UNet(inChannels: 2, numClasses: 4, config: UNetConfig(widths: [16, 32, 64, 128, 256]))
            try net.to(dev)
            net.eval()
            let x = try Tensor.randn([2] + dims)
            let inference = SlidingWindowInference(patch: [patch, patch, patch], overlap: overlap, windowBatch: windowBatch,
                                                   sigmaScale: blend == "constant" ? 0 : 0.125, device: dev)
            try Runtime.resetPeakMemory(on: dev)
            let start = DispatchTime.now()
            let (out, placement) = try inference.runWithPlacement(images: x, present: [true, true]) { windows in
                [try F.softmax(net(Tensor.cat(windows.map { $0! }, dim: 1)), dim: 1)]
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let voxels = Double(dims.reduce(1, *))
            let deviceText = dev == .cpu ? "" : String(format: " on %@ (stitching in %@ memory), peak device %.0f MB", dev.description,
                                                       placement.rawValue, Double(try Runtime.memory(on: dev).peak) / 1_048_576)
            print(String(format: "sliding window %@ (2 ch), window %d^3, overlap %.2f, batch %d%@: %.2f s, %.3g voxels/s; peak RSS %.0f MB", size,
                         patch, overlap, windowBatch, deviceText, seconds, voxels / seconds, peakResidentMB()))
            if let export {
                let folder = URL(fileURLWithPath: export)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try net.save(to: folder.appendingPathComponent("weights.safetensors"))
                try Data(try x.toArray(Float.self).withUnsafeBytes { Data($0) }).write(to: folder.appendingPathComponent("input.f32"))
                try Data(try out[0]!.toArray(Float.self).withUnsafeBytes { Data($0) }).write(to: folder.appendingPathComponent("output.f32"))
                print("exported to \(export)")
            }
        }
    }
}
