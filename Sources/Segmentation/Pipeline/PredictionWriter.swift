import Essentials
import Foundation
import Torch
import Volumes

/// One case's input files, one slot per channel of the run (nil = absent).
public struct CaseInput: Sendable {
    public var name: String
    public var channels: [URL?]
    public init(name: String, channels: [URL?]) { self.name = name; self.channels = channels }
}

extension CaseInput {
    /// Reads the channels (only those in `keep`, unless empty) and the header of the reference
    /// channel (the first present one), whose geometry every output of the case takes.
    public func read(keep: [Int] = []) throws -> (CaseVolumes, NIfTIHeader) {
        var volumes: [Volume?] = []
        var reference: NIfTIHeader? = nil
        for (m, url) in channels.enumerated() {
            guard let url, keep.isEmpty || keep.contains(m) else { volumes.append(nil); continue }
            let image = try NIfTI.read(url)
            if reference == nil { reference = image.header }
            volumes.append(image.volume)
        }
        guard let header = reference else { throw SegmentationError.incompatibleData("\(name): none of the requested channels is present") }
        return (CaseVolumes(name: name, channels: volumes), header)
    }
}

/// The file format of predicted masks.
public enum MaskFormat: String, CaseIterable, Sendable {
    /// NIfTI in the dataset's file ending, with the header of the case's reference channel.
    case nifti
    /// 3D Slicer's segmentation file: named, coloured segments (`NRRDSegmentation`).
    case segNRRD = "seg.nrrd"

    public static var choices: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Writes `mask` (labels) for case `name` into `out`; returns the file.
    func write(_ mask: Volume, name: String, out: URL, header: NIfTIHeader, description: RunDescription) throws -> URL {
        switch self {
        case .nifti:
            let target = out.appendingPathComponent(name + description.fileEnding)
            try NIfTI.write(mask, to: target, datatype: .uint8, reference: header)
            return target
        case .segNRRD:
            let target = out.appendingPathComponent(name + ".seg.nrrd")
            let segments = description.classNames.filter { $0.key > 0 }.sorted { $0.key < $1.key }.map { label, className in
                let (r, g, b) = LabelTables.color(ofLabel: label)
                return NRRDSegment(label: label, name: className, color: (Double(r) / 255, Double(g) / 255, Double(b) / 255))
            }
            try NRRDSegmentation.write(mask, segments: segments, to: target)
            return target
        }
    }
}

extension Predictor {
    /// Segments `cases` and writes `out/CASE<ending>` (uint8) with the header of each case's
    /// reference channel (the first present), so the mask opens aligned with the input, plus the
    /// label colour tables (`LabelTables`) beside them.
    /// `keep` restricts the channels used (empty = all); misalignment is simulated on the
    /// non-reference channels when a maximum is given.
    public func predict(_ cases: [CaseInput], out: URL, keep: [Int] = [], misalignMM: Double = 0, misalignDegrees: Double = 0,
                        seed: UInt64 = 0, format: MaskFormat = .nifti, log: (String) -> Void = { print($0) },
                        windowProgress: ((String, Int, Int) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // Label names and colours for viewers (3D Slicer, ITK-SNAP), once per output folder.
        try LabelTables.write(description.classNames, to: out)
        var rng = CaseVolumes.misalignmentGenerator(seed: seed)
        for (i, c) in cases.enumerated() {
            let start = Date()
            var (volumes, header) = try c.read(keep: keep)
            if misalignMM > 0 || misalignDegrees > 0 {
                volumes = try volumes.withSimulatedMisalignment(maxTranslationMM: misalignMM, maxRotationDegrees: misalignDegrees, rng: &rng).volumes
            }
            let mask = try segment(volumes) { done, total in windowProgress?(c.name, done, total) }
            let target = try format.write(mask, name: c.name, out: out, header: header, description: description)
            log(String(format: "[%d/%d] %@ -> %@ (%.1f s)", i + 1, cases.count, c.name, target.path, Date().timeIntervalSince(start)))
        }
    }
}
