import ArgumentParser
import Foundation
import Volumes

/// `concord info FILE`: what a NIfTI file holds.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a NIfTI file's shape, spacing, affine, datatype and intensity statistics."
    )

    @Argument(help: "A .nii or .nii.gz file.") var file: String
    @Flag(help: "Print JSON (keys: shape, spacing, affine, datatype, min, max, mean).") var json = false

    func run() throws {
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
