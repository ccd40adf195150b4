import Foundation

/// Connected components of a binary 3D mask with full (26-) connectivity: two voxels belong to
/// one component when they share a face, an edge or a corner, as nnU-Net's "keep the largest
/// connected component" counts them.
public enum ConnectedComponents {
    /// Component index per voxel (-1 outside the mask) and each component's size, components
    /// numbered in the scan order of their first voxel (x fastest, then y, then z).
    /// `shape` = (nx, ny, nz); `mask[i]` is voxel (i % nx, (i / nx) % ny, i / (nx * ny)).
    public static func label(_ mask: [Bool], shape: [Int]) -> (labels: [Int32], sizes: [Int]) {
        precondition(shape.count == 3 && shape.reduce(1, *) == mask.count, "mask of \(mask.count) voxels does not fit shape \(shape)")
        let nx = shape[0], ny = shape[1], nz = shape[2]
        var labels = [Int32](repeating: -1, count: mask.count)
        var sizes: [Int] = []
        var stack: [Int] = []
        for start in mask.indices where mask[start] && labels[start] < 0 {
            let component = Int32(sizes.count)
            labels[start] = component
            stack.append(start)
            var size = 0
            while let i = stack.popLast() {
                size += 1
                let x = i % nx, y = (i / nx) % ny, z = i / (nx * ny)
                for dz in -1...1 {
                    let zz = z + dz
                    guard zz >= 0 && zz < nz else { continue }
                    for dy in -1...1 {
                        let yy = y + dy
                        guard yy >= 0 && yy < ny else { continue }
                        for dx in -1...1 {
                            let xx = x + dx
                            guard xx >= 0 && xx < nx else { continue }
                            let j = (zz * ny + yy) * nx + xx
                            if mask[j] && labels[j] < 0 { labels[j] = component; stack.append(j) }
                        }
                    }
                }
            }
            sizes.append(size)
        }
        return (labels, sizes)
    }

    /// The mask reduced to its largest component (on a tie, the one whose first voxel comes first
    /// in scan order); an empty mask stays empty.
    public static func largest(_ mask: [Bool], shape: [Int]) -> [Bool] {
        let (labels, sizes) = label(mask, shape: shape)
        guard let biggest = sizes.indices.max(by: { sizes[$0] < sizes[$1] || (sizes[$0] == sizes[$1] && $0 > $1) }) else { return mask }
        return labels.map { $0 == Int32(biggest) }
    }
}

/// nnU-Net's postprocessing of a label map: keep only the largest connected component (26-
/// connectivity) of the whole foreground, then, for each listed class, of that class; removed
/// voxels become background (0). Which of these steps apply is decided on cross-validation
/// (`PostprocessingDecision`) and stored as `postprocessing.json`.
public struct Postprocessing: Codable, Equatable, Sendable {
    public static let fileName = "postprocessing.json"

    /// Keep the largest connected component of all foreground classes taken together.
    public var wholeForeground: Bool
    /// Classes whose own largest connected component is kept (after the whole-foreground step).
    public var classes: [Int]
    /// Always 26 (face, edge and corner neighbours); stored so the file says what it means.
    public var connectivity: Int

    public init(wholeForeground: Bool = false, classes: [Int] = [], connectivity: Int = 26) {
        self.wholeForeground = wholeForeground; self.classes = classes.sorted(); self.connectivity = connectivity
    }

    public var isIdentity: Bool { !wholeForeground && classes.isEmpty }

    public var summary: String {
        var parts: [String] = []
        if wholeForeground { parts.append("largest foreground component") }
        if !classes.isEmpty { parts.append("largest component of class\(classes.count > 1 ? "es" : "") \(classes.map(String.init).joined(separator: ", "))") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", then ")
    }

    /// Applies the steps to a label map (class indices, `shape` = (nx, ny, nz)).
    public func apply(_ labels: [Int32], shape: [Int]) -> [Int32] {
        var out = labels
        if wholeForeground {
            let keep = ConnectedComponents.largest(out.map { $0 > 0 }, shape: shape)
            for i in out.indices where !keep[i] { out[i] = 0 }
        }
        for c in classes {
            let keep = ConnectedComponents.largest(out.map { $0 == Int32(c) }, shape: shape)
            for i in out.indices where out[i] == Int32(c) && !keep[i] { out[i] = 0 }
        }
        return out
    }

    /// Reads `postprocessing.json` (the file, or a folder holding it), checking its classes
    /// against the run's class count when given.
    public static func read(_ url: URL, numClasses: Int? = nil) throws -> Postprocessing {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? url.appendingPathComponent(fileName) : url
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw SegmentationError.invalidSettings(source: file.path, problem: "cannot read the postprocessing file")
        }
        // The file `concord cross-validate` writes (decision and evidence), or the bare steps.
        let p: Postprocessing
        if let decision = try? JSONDecoder().decode(PostprocessingDecision.self, from: data) {
            p = decision.postprocessing
        } else {
            do { p = try JSONDecoder().decode(Postprocessing.self, from: data) } catch {
                throw SegmentationError.invalidSettings(source: file.path, problem: "not a postprocessing file (\(error))")
            }
        }
        guard p.connectivity == 26 else {
            throw SegmentationError.invalidSettings(source: file.path, problem: "connectivity \(p.connectivity): only 26 is implemented")
        }
        if let numClasses, let bad = p.classes.first(where: { !(1..<numClasses).contains($0) }) {
            throw SegmentationError.invalidSettings(source: file.path, problem: "class \(bad) is not a foreground class of the runs (1...\(numClasses - 1))")
        }
        return p
    }
}
