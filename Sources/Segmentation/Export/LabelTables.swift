import Essentials
import Foundation
import Torch

/// The dataset's labels as colour tables viewers read, written beside predicted masks so a mask
/// opens with named, coloured segments: a 3D Slicer colour table (`labels.ctbl`) and an ITK-SNAP
/// label description file (`labels.itksnap.txt`).
public enum LabelTables {
    public static let slicerFile = "labels.ctbl"
    public static let itkSnapFile = "labels.itksnap.txt"

    /// Colours for labels 1, 2, 3, ... (cycled): the colour-blind-safe palette Concord's reports
    /// draw masks with; background is black and transparent.
    static let palette: [(UInt8, UInt8, UInt8)] = [
        (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (204, 121, 167),
        (213, 94, 0), (0, 114, 178), (148, 103, 189), (140, 86, 75), (23, 190, 207),
    ]

    public static func color(ofLabel label: Int) -> (UInt8, UInt8, UInt8) {
        label <= 0 ? (0, 0, 0) : palette[(label - 1) % palette.count]
    }

    /// 3D Slicer's colour table format: `index name R G B A` per line (0-255), names without
    /// spaces, `#` comment lines.
    public static func slicerColorTable(_ classNames: [Int: String]) -> String {
        var lines = ["# Concord label colour table (3D Slicer): index name R G B A"]
        for (index, name) in classNames.sorted(by: { $0.key < $1.key }) {
            let (r, g, b) = color(ofLabel: index)
            let token = name.split(whereSeparator: { $0.isWhitespace }).joined(separator: "_")
            lines.append("\(index) \(token.isEmpty ? "label_\(index)" : token) \(r) \(g) \(b) \(index == 0 ? 0 : 255)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// ITK-SNAP's label description format: index, R, G, B, opacity (0-1), label visibility, mesh
    /// visibility, quoted name.
    public static func itkSnapLabelDescription(_ classNames: [Int: String]) -> String {
        var lines = [
            "################################################",
            "# ITK-SnAP Label Description File (written by Concord)",
            "# Columns = Index, Red, Green, Blue, Opacity, Label visibility, Mesh visibility, Label",
            "################################################",
        ]
        for (index, name) in classNames.sorted(by: { $0.key < $1.key }) {
            let (r, g, b) = color(ofLabel: index)
            let visible = index == 0 ? 0 : 1
            let quoted = name.replacingOccurrences(of: "\"", with: "'")
            lines.append(String(format: "%5d %5d %4d %4d %8.2f %2d %2d    \"%@\"", index, Int(r), Int(g), Int(b),
                                Double(visible), visible, visible, quoted))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes both tables into `folder` (atomically, replacing older ones).
    public static func write(_ classNames: [Int: String], to folder: URL) throws {
        try AtomicFile.write(Data(slicerColorTable(classNames).utf8), to: folder.appendingPathComponent(slicerFile))
        try AtomicFile.write(Data(itkSnapLabelDescription(classNames).utf8), to: folder.appendingPathComponent(itkSnapFile))
    }
}
