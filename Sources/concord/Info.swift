import ArgumentParser
import Foundation
import Torch
import Volumes

/// `concord info FILE`: what a NIfTI file holds. `concord info --devices`: the libtorch in use, its
/// devices and precision modes.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a NIfTI file's shape, spacing, affine, datatype and intensity statistics, or (--devices) "
            + "the libtorch in use, its devices and precision modes."
    )

    @Argument(help: "A .nii or .nii.gz file.") var file: String?
    @Flag(help: "Print JSON (keys: shape, spacing, affine, datatype, min, max, mean).") var json = false
    @Flag(help: "Show the libtorch in use, whether CUDA was loaded (and why not), the devices and precision modes.")
    var devices = false

    func validate() throws {
        if devices && file != nil { throw ValidationError("give either a FILE or --devices, not both") }
        if !devices && file == nil { throw ValidationError("give a .nii/.nii.gz FILE (or --devices)") }
        if devices && json { throw ValidationError("--json applies to a FILE, not to --devices") }
    }

    func run() throws {
        guard let file else { return try printDevices() }
        let image = try NIfTI.read(URL(fileURLWithPath: file))
        let info = image.info()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(data: try encoder.encode(info), encoding: .utf8)!)
            return
        }
        print("file      \(file)")
        print("format    NIfTI-\(image.header.version), \(image.header.byteOrder == .little ? "little" : "big")-endian")
        print("shape     \(info.shape.map(String.init).joined(separator: " x "))")
        print("spacing   \(info.spacing.map { String(format: "%.4g", $0) }.joined(separator: " x ")) mm")
        print("datatype  \(info.datatype)\(image.header.scaling.flatMap { $0.slope == 1 && $0.inter == 0 ? nil : String(format: " (scaled: slope %g, inter %g)", $0.slope, $0.inter) } ?? "")")
        print("affine    (\(image.header.affineSource))")
        for row in info.affine { print("          " + row.map { String(format: "%10.4f", $0) }.joined(separator: " ")) }
        print(String(format: "intensity min %g  max %g  mean %g", info.min, info.max, info.mean))
        if image.hasNonFinite { print("warning   the image holds NaN or Inf voxels") }
    }
}

extension Info {
    func printDevices() throws {
        func precisions(_ device: Device) -> String {
            Runtime.precisions(on: device).map { $0 == .float32 ? "fp32" : $0 == .bfloat16 ? "bf16" : "fp16" }.joined(separator: ", ")
        }
        print("libtorch  \(Runtime.libtorchVersion) (\(Runtime.libtorchPath.isEmpty ? "location unknown" : Runtime.libtorchPath))")
        print("cpu       \(ProcessInfo.processInfo.activeProcessorCount) cores; MKLDNN \(Runtime.mkldnnAvailable ? "yes" : "no"); "
              + "native bf16 \(Runtime.cpuBFloat16Supported ? "yes" : "no"); precision modes: \(precisions(.cpu))")
        print("cuda      \(Runtime.cudaStatus)")
        let count = Runtime.cudaDeviceCount
        if Runtime.cudaLoaded {
            print("          \(count) CUDA device\(count == 1 ? "" : "s")")
        }
        for index in 0..<count {
            let info = try Runtime.cudaDeviceInfo(index)
            let gib = String(format: "%.1f", Double(info.totalBytes) / 1_073_741_824)
            print("cuda:\(index)    \(info.name), \(gib) GiB; precision modes: \(precisions(.cuda(index)))")
        }
    }
}
