import Foundation
import Essentials
import Volumes

/// The source formats `concord convert` reads.
public enum ConversionFormat: String, CaseIterable, Codable, Sendable {
    /// AMOS22 (CT + MR abdominal organs) -> an unpaired CT/MR dataset.
    case amos
    /// MS-CMRSeg 2019 (bSSFP C0 + LGE + T2 cardiac MR) -> a paired, not co-registered dataset.
    case mscmrseg
    /// Medical Segmentation Decathlon Task01_BrainTumour (4D NIfTI) -> one 3D file per channel.
    case msdBrain = "msd-brain"
    /// Folders of DICOM series -> an unlabelled dataset, through dcm2niix.
    case dicom
}

/// A problem with the source data (or the destination), naming the file or folder.
public struct ConversionError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    public var file: String
    public var problem: String
    public init(file: String, problem: String) { self.file = file; self.problem = problem }
    public var description: String { "\(file): \(problem)" }
    public var errorDescription: String? { description }
}

/// Every error of a conversion at once (one per bad case or file). No dataset.json is written then.
public struct ConversionFailure: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var errors: [ConversionError]
    public var output: String
    public init(errors: [ConversionError], output: String) { self.errors = errors; self.output = output }
    public var description: String {
        var s = "conversion failed with \(errors.count) error\(errors.count == 1 ? "" : "s")"
        for e in errors { s += "\n  " + e.description }
        s += "\n(no dataset.json was written to \(output); fix the source and run again with --overwrite)"
        return s
    }
    public var errorDescription: String? { description }
}

/// Settings of a conversion. Each format uses the fields that concern it (see `DatasetConverter`)
/// and rejects settings that make no sense for it.
public struct ConversionOptions: Sendable {
    /// Replace a dataset already in the destination (its dataset.json, conversion.json, imagesTr,
    /// labelsTr, imagesUnlabeled, imagesTs, labelsTs; other files are left alone).
    public var overwrite = false
    /// Cases converted at once (each holds its volumes in memory).
    public var threads = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
    /// Run `DatasetValidator` on the result.
    public var validate = true
    /// amos: which modalities ("ct", "mr"); mscmrseg: which sequences ("C0", "LGE", "T2"). nil = all.
    public var modalities: [String]? = nil
    /// amos: labelled validation cases (imagesVa + labelsVa) join imagesTr.
    public var includeValidation = true
    /// amos, msd-brain: imagesTs cases become imagesUnlabeled.
    public var includeTest = true
    /// mscmrseg: the sequence whose grid (channel 0) and manual mask (the label) the cases use.
    public var reference: String? = nil
    /// dicom: channel names (one per channel), instead of the DICOM Modality tag.
    public var channelNames: [String]? = nil
    /// dicom: what to do with several series in one case folder.
    public var seriesMode: DICOMSeriesMode = .one
    /// dicom: class names for label values 1, 2, ... (the dataset has no labels yet).
    public var labelNames: [String]? = nil
    /// dicom: the dcm2niix executable (nil: looked up on PATH).
    public var dcm2niix: String? = nil

    public init() {}
}

/// What a conversion did.
public struct ConversionSummary: Sendable {
    public var output: URL
    public var description: DatasetDescription
    public var labeled: [String]
    public var unlabeled: [String]
    /// Decisions and skipped files worth telling the user.
    public var notes: [String]
    /// `DatasetValidator`'s findings on the written dataset (empty when not validated or clean).
    public var problems: [DatasetProblem]
    public var validated: Bool
}

/// Progress of a conversion: `done` of `total` cases finished, the last one `caseName`.
public struct ConversionProgress: Sendable {
    public var done: Int
    public var total: Int
    public var caseName: String
}

/// `conversion.json`, written next to dataset.json: where every case came from.
public struct ConversionRecord: Codable, Equatable, Sendable {
    public struct CaseRecord: Codable, Equatable, Sendable {
        public var name: String
        /// "labeled" (imagesTr + labelsTr) or "unlabeled" (imagesUnlabeled).
        public var group: String
        /// Channel indices written.
        public var channels: [Int]
        /// Role ("CT", "C0", "label", "series 3", ...) -> source path relative to the source folder.
        public var sources: [String: String]
    }
    public var format: String
    public var source: String
    public var notes: [String]
    public var cases: [CaseRecord]
    public static let fileName = "conversion.json"
}

/// The entry point: `DatasetConverter.convert(.amos, source: ..., output: ...)`.
public enum DatasetConverter {
    /// Converts `source` (laid out as the original distribution of `format`) into a Concord dataset
    /// folder at `output`: scans the source first (missing, duplicate or misnamed files throw before
    /// anything is written), then converts every case in parallel (each case reads and checks its
    /// files before writing any), then writes `conversion.json` and `dataset.json` last (a failed or
    /// interrupted conversion leaves no dataset.json), then validates the result as `concord check`
    /// does. Throws `ConversionError` for unusable sources, options or destinations and
    /// `ConversionFailure` listing every bad case; file paths in errors are full paths.
    public static func convert(_ format: ConversionFormat, source: URL, output: URL, options: ConversionOptions = ConversionOptions(),
                               progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionSummary {
        let source = source.standardizedFileURL, output = output.standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDir), isDir.boolValue else {
            throw ConversionError(file: source.path, problem: "the source folder does not exist (or is not a folder)")
        }
        try checkOptions(format, options)
        do {
            let plan: ConversionPlan
            switch format {
            case .amos: plan = try AMOSConverter.plan(source: source, options: options)
            case .mscmrseg: plan = try MSCMRSegConverter.plan(source: source, options: options)
            case .msdBrain: plan = try MSDConverter.plan(source: source, options: options)
            case .dicom: plan = try DICOMConverter.plan(source: source, options: options)
            }
            return try execute(plan, format: format, source: source, output: output, options: options, progress: progress)
        } catch let e as ConversionError {
            throw absolute(e, source: source)
        } catch var e as ConversionFailure {
            e.errors = e.errors.map { absolute($0, source: source) }
            throw e
        }
    }

    /// The error with its file as a full path when it names a file of the source folder (the
    /// converters name files relative to the source).
    static func absolute(_ e: ConversionError, source: URL) -> ConversionError {
        guard !e.file.hasPrefix("/"), !e.file.isEmpty, FileManager.default.fileExists(atPath: source.appendingPathComponent(e.file).path) else { return e }
        return ConversionError(file: source.appendingPathComponent(e.file).path, problem: e.problem)
    }

    /// Refuses settings that the format does not use (rather than ignoring them silently).
    static func checkOptions(_ format: ConversionFormat, _ options: ConversionOptions) throws {
        var unused: [String] = []
        if format != .mscmrseg && options.reference != nil { unused.append("--reference (mscmrseg only)") }
        if format != .amos && format != .mscmrseg && options.modalities != nil { unused.append("--modalities (amos, mscmrseg)") }
        if format != .amos && !options.includeValidation { unused.append("--no-include-validation (amos only)") }
        if format != .amos && format != .msdBrain && !options.includeTest { unused.append("--no-include-test (amos, msd-brain)") }
        if format != .dicom {
            if options.channelNames != nil { unused.append("--channel-names (dicom only)") }
            if options.seriesMode != .one { unused.append("--series (dicom only)") }
            if options.labelNames != nil { unused.append("--labels (dicom only)") }
            if options.dcm2niix != nil { unused.append("--dcm2niix (dicom only)") }
        }
        if !unused.isEmpty {
            throw ConversionError(file: format.rawValue, problem: "option\(unused.count == 1 ? "" : "s") not used by this format: \(unused.joined(separator: ", "))")
        }
        guard options.threads >= 1 else { throw ConversionError(file: format.rawValue, problem: "threads must be at least 1, got \(options.threads)") }
    }

    /// The entries of a dataset folder a conversion owns (replaced by `overwrite`).
    public static let ownedEntries = ["dataset.json", ConversionRecord.fileName, DatasetLayout.imagesTr, DatasetLayout.labelsTr,
                                      DatasetLayout.imagesUnlabeled, DatasetLayout.imagesTs, DatasetLayout.labelsTs]

    static func execute(_ plan: ConversionPlan, format: ConversionFormat, source: URL, output: URL, options: ConversionOptions,
                        progress: ((ConversionProgress) -> Void)?) throws -> ConversionSummary {
        guard !plan.cases.isEmpty else {
            throw ConversionError(file: source.path, problem: "no case found to convert" + (plan.notes.isEmpty ? "" : " (\(plan.notes.joined(separator: "; ")))"))
        }
        var names = Set<String>()
        for c in plan.cases where !names.insert(c.name).inserted {
            throw ConversionError(file: source.path, problem: "two source cases map to the output case name \(c.name)")
        }
        try prepareOutput(output, source: source, overwrite: options.overwrite)
        let fm = FileManager.default
        if plan.cases.contains(where: { $0.labeled }) {
            try fm.createDirectory(at: output.appendingPathComponent(DatasetLayout.imagesTr), withIntermediateDirectories: true)
            try fm.createDirectory(at: output.appendingPathComponent(DatasetLayout.labelsTr), withIntermediateDirectories: true)
        }
        if plan.cases.contains(where: { !$0.labeled }) {
            try fm.createDirectory(at: output.appendingPathComponent(DatasetLayout.imagesUnlabeled), withIntermediateDirectories: true)
        }

        // Write the cases in parallel; every failure is kept.
        let cases = plan.cases
        var done = 0
        let errors = Parallel.map(count: cases.count, workers: options.threads, { i -> [ConversionError] in
            let c = cases[i]
            do {
                try c.write(CaseOutput(root: output, name: c.name, labeled: c.labeled))
                return []
            } catch let e as ConversionError {
                return [e]
            } catch let e as NIfTIError {
                return [ConversionError(file: e.file, problem: "\(e.field): \(e.problem)")]
            } catch {
                return [ConversionError(file: c.sources.values.sorted().first ?? c.name, problem: "\(error)")]
            }
        }, completed: { i, _ in
            done += 1
            progress?(ConversionProgress(done: done, total: cases.count, caseName: cases[i].name))
        })
        let allErrors = errors.flatMap { $0 }
        if !allErrors.isEmpty { throw ConversionFailure(errors: allErrors, output: output.path) }

        let record = ConversionRecord(
            format: format.rawValue, source: source.path, notes: plan.notes,
            cases: cases.map { ConversionRecord.CaseRecord(name: $0.name, group: $0.labeled ? "labeled" : "unlabeled",
                                                           channels: $0.channels, sources: $0.sources) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(record), to: output.appendingPathComponent(ConversionRecord.fileName))

        var description = plan.description
        description.numTraining = cases.filter { $0.labeled }.count
        description.numUnlabeled = cases.filter { !$0.labeled }.count
        let channelCount = description.channelNames.count
        if description.pairing == .unpaired {
            description.channelsPresent = Dictionary(uniqueKeysWithValues: cases.map { ($0.name, $0.channels) })
        } else {
            let incomplete = cases.filter { $0.channels != Array(0..<channelCount) }
            description.channelsPresent = incomplete.isEmpty ? nil : Dictionary(uniqueKeysWithValues: incomplete.map { ($0.name, $0.channels) })
        }
        try description.save(to: output.appendingPathComponent("dataset.json"))

        let problems = options.validate ? DatasetValidator.validate(root: output, threads: options.threads) : []
        return ConversionSummary(output: output, description: description,
                                 labeled: cases.filter { $0.labeled }.map(\.name).sorted(),
                                 unlabeled: cases.filter { !$0.labeled }.map(\.name).sorted(),
                                 notes: plan.notes, problems: problems, validated: options.validate)
    }

    /// Refuses a non-empty destination unless `overwrite` (which removes only `ownedEntries`), and a
    /// destination that is, holds or lies inside the source.
    static func prepareOutput(_ output: URL, source: URL, overwrite: Bool) throws {
        let fm = FileManager.default
        let out = output.resolvingSymlinksInPath().path, src = source.resolvingSymlinksInPath().path
        if out == src || out.hasPrefix(src + "/") || src.hasPrefix(out + "/") {
            throw ConversionError(file: output.path, problem: "the destination must lie outside the source folder \(source.path) (and not contain it)")
        }
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: output.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConversionError(file: output.path, problem: "the destination exists and is not a folder") }
            let entries = (try? fm.contentsOfDirectory(atPath: output.path)) ?? []
            if !entries.isEmpty {
                guard overwrite else {
                    throw ConversionError(file: output.path, problem: "the destination is not empty (\(entries.sorted().prefix(5).joined(separator: ", "))\(entries.count > 5 ? ", ..." : "")); choose an empty folder or pass --overwrite to replace the dataset in it")
                }
                for e in ownedEntries where entries.contains(e) {
                    try fm.removeItem(at: output.appendingPathComponent(e))
                }
            }
        } else {
            try fm.createDirectory(at: output, withIntermediateDirectories: true)
        }
    }
}

// MARK: - Plans (what each format produces)

/// One output case: its name, group, channels and how to write its files.
struct PlannedCase: @unchecked Sendable {
    var name: String
    var labeled: Bool
    /// Channel indices written (sorted).
    var channels: [Int]
    /// Role -> source path relative to the source folder (for conversion.json).
    var sources: [String: String]
    /// Reads the source files, checks them, writes the output files.
    var write: (CaseOutput) throws -> Void
}

/// Everything a format's scan found: the cases to write and the description (numTraining,
/// numUnlabeled and channels_present are filled in when the cases are written).
struct ConversionPlan {
    var description: DatasetDescription
    var cases: [PlannedCase]
    var notes: [String]
}

/// Where one case's files go, and the writing rules every format shares.
struct CaseOutput {
    var root: URL
    var name: String
    var labeled: Bool

    var imageFolder: String { labeled ? DatasetLayout.imagesTr : DatasetLayout.imagesUnlabeled }

    func channelURL(_ channel: Int) -> URL {
        root.appendingPathComponent(DatasetLayout.channelPath(folder: imageFolder, caseName: name, channel: channel, fileEnding: ".nii.gz"))
    }

    var labelURL: URL { root.appendingPathComponent("\(DatasetLayout.labelsTr)/\(name).nii.gz") }

    /// Writes a channel with `header`'s geometry (qform/sform kept), in the source's datatype when it
    /// holds the values exactly, else the smallest of int16/int32 that does, else float32.
    func writeChannel(_ channel: Int, _ volume: Volume, header: NIfTIHeader, sourceFile: String) throws {
        guard let datatype = ConverterSupport.storageType(volume, source: header.datatype) else {
            throw ConversionError(file: sourceFile, problem: "the image holds NaN or infinite voxels")
        }
        try NIfTI.write(volume, to: channelURL(channel), datatype: datatype, reference: header)
    }

    /// Writes the label map (uint8) with the geometry of channel 0's header.
    func writeLabel(_ volume: Volume, imageHeader: NIfTIHeader) throws {
        precondition(labeled, "writeLabel on an unlabelled case")
        try NIfTI.write(volume, to: labelURL, datatype: .uint8, reference: imageHeader)
    }

    /// Copies a finished NIfTI file (already .nii.gz) into place atomically.
    func copyChannel(_ channel: Int, from file: URL) throws {
        try AtomicFile.write(try Data(contentsOf: file), to: channelURL(channel))
    }
}

// MARK: - Shared checks

enum ConverterSupport {
    /// The datatype to store `volume` in: `source` when it is an integer type holding every value
    /// exactly, else int16 or int32 when the values are integers that fit, else float32. nil when a
    /// voxel is NaN or infinite.
    static func storageType(_ volume: Volume, source: NIfTIDataType) -> NIfTIDataType? {
        var lo = Float.infinity, hi = -Float.infinity
        var integral = true
        for x in volume.voxels {
            guard x.isFinite else { return nil }
            if x < lo { lo = x }
            if x > hi { hi = x }
            if integral && x != x.rounded() { integral = false }
        }
        guard integral else { return .float32 }
        for type in [source, .int16, .int32] where type.isInteger {
            if let range = type.integerRange, Double(lo) >= range.lowerBound, Double(hi) <= range.upperBound { return type }
        }
        return .float32
    }

    /// Checks a label map against its image: same shape, same world grid (corners within 1 % of the
    /// smallest voxel, at least 1e-3 mm: what `concord check` tolerates).
    static func checkLabelGrid(label: Volume, labelFile: String, image: Volume, imageFile: String) throws {
        guard label.shape == image.shape else {
            throw ConversionError(file: labelFile, problem: "label shape \(label.shape) differs from its image's \(image.shape) (\(imageFile))")
        }
        guard DatasetValidator.sameGeometry(label, image) else {
            throw ConversionError(file: labelFile, problem: String(format: "label affine differs from its image's (%@) by up to %.4g mm; the label must lie on the image's grid", imageFile, DatasetValidator.maxCornerDistance(label, image)))
        }
    }

    /// Maps label values through `mapping` (source value -> output value); any other value, or a
    /// value that is not a finite integer, is an error naming the file, the value and a voxel.
    static func remapLabels(_ volume: Volume, file: String, mapping: [Int: Int], expected: String) throws -> Volume {
        var out = volume
        // A lookup table for the (small, non-negative) source values; the dictionary otherwise.
        let maxKey = mapping.keys.max() ?? 0
        let table: [Int]? = (mapping.keys.min() ?? 0) >= 0 && maxKey <= 65535
            ? (0...maxKey).map { mapping[$0] ?? -1 } : nil
        for n in volume.voxels.indices {
            let x = volume.voxels[n]
            if let table = table, x >= 0, x <= Float(maxKey), x == x.rounded(), table[Int(x)] >= 0 {
                out.voxels[n] = Float(table[Int(x)])
                continue
            }
            guard x.isFinite, x == x.rounded(), abs(x) < 1e9, let mapped = mapping[Int(x)] else {
                let nx = volume.shape[0], ny = volume.shape[1]
                let count = volume.voxels.reduce(0) { $0 + (($1 == x || ($1.isNaN && x.isNaN)) ? 1 : 0) }
                throw ConversionError(file: file, problem: "label value \(x) at voxel (\(n % nx), \((n / nx) % ny), \(n / (nx * ny))) (\(count) voxel\(count == 1 ? "" : "s")) is not one of \(expected)")
            }
            out.voxels[n] = Float(mapped)
        }
        return out
    }

    /// Reads a NIfTI file that must be 3D, turning the reader's error into a ConversionError.
    static func read3D(_ url: URL, display: String) throws -> NIfTIImage {
        let image = try readAny(url, display: display)
        guard image.frameCount == 1 else {
            throw ConversionError(file: display, problem: "a 3D image is needed, the file has \(image.frameCount) frames (dim \(image.header.shape))")
        }
        return image
    }

    static func readAny(_ url: URL, display: String) throws -> NIfTIImage {
        do { return try NIfTI.read(url) } catch let e as NIfTIError {
            throw ConversionError(file: display, problem: "cannot read: \(e.field): \(e.problem)")
        } catch {
            throw ConversionError(file: display, problem: "cannot read: \(error)")
        }
    }

    /// What folder scans skipped: macOS resource forks ("._*") and files that are not NIfTI.
    final class Skipped {
        var resourceForks = 0
        var ignored: [String] = []
        func notes() -> [String] {
            var out: [String] = []
            if resourceForks > 0 { out.append("skipped \(plural(resourceForks, "macOS resource-fork file")) (._*)") }
            if !ignored.isEmpty { out.append("ignored \(plural(ignored.count, "file")) that are not NIfTI: \(ignored.prefix(5).joined(separator: ", "))\(ignored.count > 5 ? ", ..." : "")") }
            return out
        }
    }

    /// The NIfTI files of `source/folder`: stem -> file name (empty when the folder does not exist).
    /// Names starting with "." are skipped ("._" ones counted), other non-NIfTI names recorded;
    /// `check` may reject a stem (throwing). A stem found twice (x.nii and x.nii.gz) is an error.
    static func scanNIfTI(_ source: URL, _ folder: String, skipped: Skipped, check: (String, String) throws -> Void = { _, _ in }) throws -> [String: String] {
        guard let names = try listFiles(source.appendingPathComponent(folder), skipped: &skipped.resourceForks) else { return [:] }
        var out: [String: String] = [:]
        for name in names {
            guard let stem = niftiStem(name) else { skipped.ignored.append("\(folder)/\(name)"); continue }
            try check(stem, "\(folder)/\(name)")
            if let other = out[stem] {
                throw ConversionError(file: "\(folder)/\(name)", problem: "case \(stem) appears twice (also \(folder)/\(other))")
            }
            out[stem] = name
        }
        return out
    }

    /// Visible regular files of a folder (names starting with "." skipped: macOS resource forks
    /// "._x", .DS_Store), sorted; nil when the folder does not exist. `skipped` counts "._" files.
    static func listFiles(_ dir: URL, skipped: inout Int) throws -> [String]? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) else { return nil }
        guard isDir.boolValue else { throw ConversionError(file: dir.path, problem: "expected a folder, found a file") }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir.path) } catch {
            throw ConversionError(file: dir.path, problem: "cannot list the folder: \(error.localizedDescription)")
        }
        var out: [String] = []
        for name in names {
            if name.hasPrefix("._") { skipped += 1; continue }
            if name.hasPrefix(".") { continue }
            var sub: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &sub), !sub.boolValue {
                out.append(name)
            }
        }
        return out.sorted()
    }

    /// Every visible regular file under `dir` (recursively, hidden files and folders skipped),
    /// sorted by path; `skipped` counts "._" files.
    static func listFilesRecursively(_ dir: URL, skipped: inout Int) throws -> [URL] {
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey], options: []) else {
            throw ConversionError(file: dir.path, problem: "cannot list the folder")
        }
        var out: [URL] = []
        for case let url as URL in e {
            let name = url.lastPathComponent
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isDirectoryKey])
            if name.hasPrefix(".") {
                if name.hasPrefix("._") && values?.isRegularFile == true { skipped += 1 }
                if values?.isDirectory == true { e.skipDescendants() }
                continue
            }
            if values?.isRegularFile == true { out.append(url.standardizedFileURL) }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// The NIfTI stem of a file name ("x.nii.gz" / "x.nii" -> "x"), nil for other names.
    static func niftiStem(_ name: String) -> String? {
        for ending in [".nii.gz", ".nii"] where name.lowercased().hasSuffix(ending) && name.count > ending.count {
            return String(name.dropLast(ending.count))
        }
        return nil
    }

    /// `url`'s path relative to `root` (the full path when it is not inside).
    static func relative(_ url: URL, to root: URL) -> String {
        let r = root.standardizedFileURL.path, p = url.standardizedFileURL.path
        return p.hasPrefix(r + "/") ? String(p.dropFirst(r.count + 1)) : p
    }

    /// Parses a comma-separated list, trimmed, empty entries dropped.
    static func list(_ s: String) -> [String] {
        s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
}
