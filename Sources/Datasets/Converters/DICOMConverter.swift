import Foundation
import Volumes

/// What the dicom converter does with several image series in one case folder.
public enum DICOMSeriesMode: String, CaseIterable, Codable, Sendable {
    /// One series per case; several are an error that lists them.
    case one
    /// The series of a case are its channels, in SeriesNumber order; every case has as many.
    case channels
    /// Every series is a case of its own, named FOLDER_s<SeriesNumber>.
    case cases
}

/// Folders of DICOM series -> an unlabelled dataset (imagesUnlabeled/), through dcm2niix.
///
/// Source: one sub-folder per case (all DICOM files beneath it, recursively; the case is named
/// after the folder); when the source folder holds DICOM files itself, it is one case as a whole.
/// Files are grouped into series by SeriesInstanceUID; files that are not DICOM, and DICOM objects
/// without image geometry (DICOMDIR, reports, presentation states), are skipped and counted.
///
/// Each series is converted on its own: its files are linked into a temporary folder and
/// `dcm2niix -z y -b n -f series` writes one .nii.gz, which must be exactly one 3D file. Its
/// geometry is then verified against the DICOM headers (read by `DICOMHeader`): the grid implied
/// by ImagePositionPatient (slices sorted along the normal of ImageOrientationPatient, uniform
/// spacing), ImageOrientationPatient, PixelSpacing, Rows and Columns, turned from DICOM's LPS to
/// RAS by negating x and y, must be the NIfTI's grid: its affine, up to dcm2niix's reordering of
/// the voxel axes (flips and permutations), equal within 1e-3 mm at every corner of the volume.
/// Otherwise the conversion fails for that case. The verified file is copied as it is.
///
/// Channel names come from the DICOM Modality tag (CT -> "CT", which selects CT normalisation;
/// MR -> "MR") unless `channelNames` gives them. Every case must then have the same modality per
/// channel. The dataset has no labels: `labelNames` declares the classes (default one class,
/// "foreground") so that `concord check` accepts it and labels can be added later.
enum DICOMConverter {
    struct Slice { var file: URL; var rel: String; var header: DICOMHeader }

    struct Series {
        var uid: String
        var slices: [Slice]
        var number: Int? { slices.compactMap { $0.header.seriesNumber }.first }
        var modality: String? { slices.compactMap { $0.header.modality }.first }
        var seriesDescription: String? { slices.compactMap { $0.header.seriesDescription }.first }
        var summary: String {
            "series \(number.map(String.init) ?? "?") \"\(seriesDescription ?? "")\" (\(modality ?? "no modality"), \(ConverterSupport.plural(slices.count, "file")), UID \(uid))"
        }
    }

    /// The voxel grid a series' headers imply: shape (columns, rows, slices) and the RAS affine
    /// of voxel (column, row, slice) with slices sorted along the normal.
    struct Grid { var shape: [Int]; var affine: Affine }

    /// Finds dcm2niix: the option, else PATH. Throws a clear error when it is missing.
    static func locateDcm2niix(_ option: String?) throws -> URL {
        let fm = FileManager.default
        if let path = option {
            guard fm.isExecutableFile(atPath: path) else {
                throw ConversionError(file: path, problem: "--dcm2niix: not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/dcm2niix"
            if fm.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        throw ConversionError(file: "dcm2niix", problem: "dcm2niix was not found on PATH; it converts DICOM to NIfTI for concord convert dicom. scripts/bootstrap installs it (Debian package dcm2niix: apt-get install dcm2niix), or pass --dcm2niix PATH")
    }

    /// A case name from a folder name: characters other than letters, digits, "-" and "_" become "_".
    static func caseName(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        let mapped = String(s.map { allowed.contains($0) ? $0 : "_" })
        return mapped.isEmpty ? "case" : mapped
    }

    static func plan(source: URL, options: ConversionOptions) throws -> ConversionPlan {
        let dcm2niix = try locateDcm2niix(options.dcm2niix)
        let fm = FileManager.default
        var notes: [String] = []
        var resourceForks = 0

        // Case folders: the sub-folders, or the source itself when it holds DICOM files directly.
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: source.path).filter { !$0.hasPrefix(".") }.sorted() } catch {
            throw ConversionError(file: source.path, problem: "cannot list the folder: \(error.localizedDescription)")
        }
        var subfolders: [URL] = [], looseFiles: [URL] = []
        for name in entries {
            let url = source.appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue { subfolders.append(url) } else { looseFiles.append(url) }
        }
        let looseDICOM = try looseFiles.contains { (try DICOMHeader.read($0, display: ConverterSupport.relative($0, to: source))) != nil }
        let caseFolders: [(name: String, url: URL)] = looseDICOM || subfolders.isEmpty
            ? [(caseName(source.lastPathComponent), source)]
            : subfolders.map { (caseName($0.lastPathComponent), $0) }
        if looseDICOM && !subfolders.isEmpty {
            notes.append("the source folder holds DICOM files itself: converted as one case (with its sub-folders)")
        }

        // Series per case folder.
        var skippedNonDICOM = 0, skippedNoGeometry = 0
        var found: [(name: String, folder: String, series: [Series])] = []
        for (name, folder) in caseFolders {
            var bySeries: [String: [Slice]] = [:]
            for file in try ConverterSupport.listFilesRecursively(folder, skipped: &resourceForks) {
                let rel = ConverterSupport.relative(file, to: source)
                guard let header = try DICOMHeader.read(file, display: rel) else { skippedNonDICOM += 1; continue }
                guard header.hasGeometry else { skippedNoGeometry += 1; continue }
                // Anonymised exports often blank SeriesInstanceUID (TotalSegmentator's example CT
                // does): such images form one series per folder and SeriesNumber, and dcm2niix's
                // own split (exactly one volume per series, checked below) guards the grouping.
                let uid = header.seriesInstanceUID.flatMap { $0.isEmpty ? nil : $0 }
                    ?? "(no SeriesInstanceUID, series number \(header.seriesNumber.map(String.init) ?? "-"))"
                bySeries[uid, default: []].append(Slice(file: file, rel: rel, header: header))
            }
            let series = bySeries.map { Series(uid: $0.key, slices: $0.value) }.sorted {
                ($0.number ?? Int.max, $0.seriesDescription ?? "", $0.uid) < ($1.number ?? Int.max, $1.seriesDescription ?? "", $1.uid)
            }
            if series.isEmpty {
                notes.append("\(ConverterSupport.relative(folder, to: source)): no DICOM image series, skipped")
                continue
            }
            found.append((name, ConverterSupport.relative(folder, to: source), series))
        }

        // Cases and channels according to the series mode.
        var outputCases: [(name: String, folder: String, channels: [Series])] = []
        switch options.seriesMode {
        case .one:
            for f in found {
                guard f.series.count == 1 else {
                    throw ConversionError(file: f.folder, problem: "\(f.series.count) image series in one case folder: \(f.series.map(\.summary).joined(separator: "; ")). Use --series channels (the series are the channels of the case) or --series cases (one case per series), or split the folder")
                }
                outputCases.append((f.name, f.folder, f.series))
            }
        case .channels:
            outputCases = found.map { ($0.name, $0.folder, $0.series) }
            if let first = outputCases.first, let bad = outputCases.first(where: { $0.channels.count != first.channels.count }) {
                throw ConversionError(file: bad.folder, problem: "\(bad.channels.count) series (\(bad.channels.map(\.summary).joined(separator: "; "))), but \(first.folder) has \(first.channels.count); with --series channels every case needs the same series")
            }
        case .cases:
            for f in found {
                var used = Set<String>()
                for (i, s) in f.series.enumerated() {
                    var name = f.series.count == 1 ? f.name : "\(f.name)_s\(s.number.map(String.init) ?? String(i + 1))"
                    if used.contains(name) { name += "_\(i + 1)" }
                    used.insert(name)
                    outputCases.append((name, f.folder, [s]))
                }
            }
        }
        guard let first = outputCases.first else {
            throw ConversionError(file: source.path, problem: "no DICOM image series found" + (skippedNonDICOM + skippedNoGeometry > 0 ? " (\(skippedNonDICOM) non-DICOM file(s), \(skippedNoGeometry) DICOM object(s) without image geometry skipped)" : ""))
        }
        let channelCount = first.channels.count

        // Channel names: given, or the Modality tags (the same in every case).
        var channelNames: [String]
        if let given = options.channelNames {
            guard given.count == channelCount else {
                throw ConversionError(file: source.path, problem: "--channel-names gives \(given.count) name(s) (\(given.joined(separator: ", "))), the cases have \(channelCount) channel(s)")
            }
            channelNames = given
        } else {
            let modalities = first.channels.map { $0.modality ?? "" }
            for c in outputCases {
                let m = c.channels.map { $0.modality ?? "" }
                guard m == modalities else {
                    throw ConversionError(file: c.folder, problem: "modalities \(m) differ from \(first.folder)'s \(modalities); convert them separately or name the channels with --channel-names")
                }
            }
            channelNames = []
            for m in modalities {
                let base = m.isEmpty ? "image" : m
                var name = base, k = 2
                while channelNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
                channelNames.append(name)
            }
        }
        let labels = options.labelNames ?? ["foreground"]
        guard !labels.isEmpty, !labels.contains("background"), Set(labels).count == labels.count else {
            throw ConversionError(file: source.path, problem: "--labels must name the classes 1, 2, ... once each (background is 0 and implied): \(labels)")
        }

        var cases: [PlannedCase] = []
        for c in outputCases {
            var sources: [String: String] = [:]
            for (i, s) in c.channels.enumerated() { sources["channel \(i) (\(s.summary))"] = c.folder }
            let channels = c.channels
            let display = c.folder
            cases.append(PlannedCase(name: c.name, labeled: false, channels: Array(0..<channels.count), sources: sources) { out in
                for (i, series) in channels.enumerated() {
                    let grid = try seriesGrid(series, folder: display)
                    try convertSeries(series, grid: grid, folder: display, dcm2niix: dcm2niix) { nifti in
                        try out.copyChannel(i, from: nifti)
                    }
                }
            })
        }
        notes.append("\(ConverterSupport.plural(cases.count, "case")) of \(ConverterSupport.plural(channelCount, "channel")) (\(channelNames.joined(separator: ", "))), unlabelled; labels declared: \(labels.joined(separator: ", "))")
        if skippedNonDICOM > 0 { notes.append("skipped \(ConverterSupport.plural(skippedNonDICOM, "file")) that are not DICOM") }
        if skippedNoGeometry > 0 { notes.append("skipped \(ConverterSupport.plural(skippedNoGeometry, "DICOM object")) without image geometry (DICOMDIR, reports, ...)") }
        if resourceForks > 0 { notes.append("skipped \(ConverterSupport.plural(resourceForks, "macOS resource-fork file")) (._*)") }

        let description = DatasetDescription(
            channelNames: channelNames,
            labels: [("background", 0)] + labels.enumerated().map { ($0.element, $0.offset + 1) },
            numTraining: 0, fileEnding: ".nii.gz", numUnlabeled: 0, pairing: .paired,
            name: source.lastPathComponent,
            description: "DICOM series converted by concord convert dicom (dcm2niix; geometry verified against the DICOM headers); no labels yet")
        return ConversionPlan(description: description, cases: cases, notes: notes)
    }

    // MARK: - Geometry from the DICOM headers

    static func seriesGrid(_ series: Series, folder: String) throws -> Grid {
        let slices = series.slices
        guard let first = slices.first, let iop = first.header.imageOrientation, let spacing = first.header.pixelSpacing,
              let rows = first.header.rows, let columns = first.header.columns else {
            throw ConversionError(file: folder, problem: "\(series.summary): no image geometry")
        }
        if let frames = slices.compactMap({ $0.header.numberOfFrames }).max(), frames > 1 {
            throw ConversionError(file: first.rel, problem: "multi-frame DICOM (NumberOfFrames = \(frames)) is not supported: its geometry is per frame in functional groups, which this converter does not verify")
        }
        for s in slices {
            guard let o = s.header.imageOrientation, zip(o, iop).allSatisfy({ abs($0 - $1) <= 1e-4 }) else {
                throw ConversionError(file: s.rel, problem: "ImageOrientationPatient \(s.header.imageOrientation ?? []) differs from \(first.rel)'s \(iop) within \(series.summary)")
            }
            guard s.header.rows == rows, s.header.columns == columns else {
                throw ConversionError(file: s.rel, problem: "\(s.header.rows ?? 0) x \(s.header.columns ?? 0) pixels differ from \(first.rel)'s \(rows) x \(columns) within one series")
            }
            guard let ps = s.header.pixelSpacing, zip(ps, spacing).allSatisfy({ abs($0 - $1) <= 1e-4 }) else {
                throw ConversionError(file: s.rel, problem: "PixelSpacing \(s.header.pixelSpacing ?? []) differs from \(first.rel)'s \(spacing) within one series")
            }
        }
        guard rows > 0, columns > 0, spacing.allSatisfy({ $0 > 0 }) else {
            throw ConversionError(file: first.rel, problem: "Rows/Columns \(rows) x \(columns) and PixelSpacing \(spacing) must be positive")
        }
        let r = Array(iop[0..<3]), c = Array(iop[3..<6])
        func dot(_ a: [Double], _ b: [Double]) -> Double { a[0] * b[0] + a[1] * b[1] + a[2] * b[2] }
        guard abs(dot(r, r) - 1) < 1e-3, abs(dot(c, c) - 1) < 1e-3, abs(dot(r, c)) < 1e-3 else {
            throw ConversionError(file: first.rel, problem: "ImageOrientationPatient \(iop) is not two orthogonal unit vectors")
        }
        let n = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]]
        let positioned = slices.compactMap { s in s.header.imagePosition.map { (s, $0, dot($0, n)) } }.sorted { $0.2 < $1.2 }
        guard positioned.count >= 2, let p0 = positioned.first, let pn = positioned.last else {
            throw ConversionError(file: first.rel, problem: "\(series.summary) has \(positioned.count) slice(s); a 3D volume needs at least 2")
        }
        let gaps = zip(positioned.dropFirst(), positioned).map { $0.2 - $1.2 }
        if let dup = gaps.firstIndex(where: { $0 < 1e-3 }) {
            let distinct = gaps.filter { $0 >= 1e-3 }.count + 1
            throw ConversionError(file: positioned[dup + 1].0.rel, problem: "\(series.summary): \(positioned.count) slices at only \(distinct) distinct positions (\(positioned[dup].0.rel) is at the same place): a series of several volumes (echoes, phases, time points) is not supported; split it")
        }
        let mean = (pn.2 - p0.2) / Double(positioned.count - 1)
        if let worst = gaps.max(by: { abs($0 - mean) < abs($1 - mean) }), abs(worst - mean) > max(1e-3, 0.01 * mean) {
            throw ConversionError(file: folder, problem: String(format: "%@: slice spacing varies (%.4g mm against a mean of %.4g mm); irregularly spaced slices do not form one grid", series.summary, worst, mean))
        }
        let slice = (0..<3).map { (pn.1[$0] - p0.1[$0]) / Double(positioned.count - 1) }
        // LPS: voxel (i = column, j = row, k = slice) -> p0 + i * dc * r + j * dr * c + k * slice.
        let dr = spacing[0], dc = spacing[1]
        var m = [Double](repeating: 0, count: 16)
        for a in 0..<3 {
            let sign: Double = a < 2 ? -1 : 1          // LPS -> RAS
            m[a * 4 + 0] = sign * r[a] * dc
            m[a * 4 + 1] = sign * c[a] * dr
            m[a * 4 + 2] = sign * slice[a]
            m[a * 4 + 3] = sign * p0.1[a]
        }
        m[15] = 1
        return Grid(shape: [columns, rows, positioned.count], affine: Affine(rowMajor: m))
    }

    /// Checks that a NIfTI grid is `grid` with its voxel axes possibly permuted and flipped: the
    /// corners of the two grids agree within `tolerance` mm. Returns the largest corner distance.
    static func verify(niftiShape: [Int], niftiAffine: Affine, against grid: Grid, tolerance: Double = 1e-3) -> (ok: Bool, distance: Double, detail: String) {
        guard let inv = grid.affine.inverse() else { return (false, .infinity, "the DICOM geometry is singular") }
        let m = inv * niftiAffine   // NIfTI voxel -> DICOM voxel
        var perm = [Int](repeating: -1, count: 3), signs = [Double](repeating: 0, count: 3)
        for col in 0..<3 {
            var best = 0
            for row in 0..<3 where abs(m[row, col]) > abs(m[best, col]) { best = row }
            perm[col] = best
            signs[col] = m[best, col] < 0 ? -1 : 1
        }
        guard Set(perm).count == 3 else {
            return (false, .infinity, "the NIfTI axes do not map onto distinct DICOM axes")
        }
        for a in 0..<3 where niftiShape[a] != grid.shape[perm[a]] {
            return (false, .infinity, "NIfTI shape \(niftiShape) is not a reordering of the DICOM grid's \(grid.shape) (columns, rows, slices)")
        }
        // The exact reordering: DICOM index along perm[a] = i_a, or (n - 1) - i_a when flipped.
        var p = [Double](repeating: 0, count: 16)
        for a in 0..<3 {
            p[perm[a] * 4 + a] = signs[a]
            if signs[a] < 0 { p[perm[a] * 4 + 3] = Double(grid.shape[perm[a]] - 1) }
        }
        p[15] = 1
        let expected = grid.affine * Affine(rowMajor: p)
        var worst = 0.0
        for corner in 0..<8 {
            let v = (0..<3).map { a in (corner >> a) & 1 == 0 ? 0.0 : Double(niftiShape[a] - 1) }
            let x = niftiAffine.apply(v), y = expected.apply(v)
            worst = max(worst, ((0..<3).reduce(0.0) { $0 + (x[$1] - y[$1]) * (x[$1] - y[$1]) }).squareRoot())
        }
        func rows(_ a: Affine) -> String {
            (0..<3).map { r in "[" + (0..<4).map { String(format: "%.4f", a[r, $0]) }.joined(separator: ", ") + "]" }.joined(separator: " ")
        }
        return (worst <= tolerance, worst, "NIfTI affine \(rows(niftiAffine)), expected from the DICOM headers \(rows(expected))")
    }

    // MARK: - dcm2niix

    /// Runs dcm2niix on one series (its files linked into a temporary folder), verifies the single
    /// NIfTI it writes, and hands it to `use` before the temporary folder is removed.
    static func convertSeries(_ series: Series, grid: Grid, folder: String, dcm2niix: URL, use: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let work = fm.temporaryDirectory.appendingPathComponent("concord-dicom-\(UUID().uuidString)")
        let input = work.appendingPathComponent("in"), output = work.appendingPathComponent("out")
        defer { try? fm.removeItem(at: work) }
        do {
            try fm.createDirectory(at: input, withIntermediateDirectories: true)
            try fm.createDirectory(at: output, withIntermediateDirectories: true)
            for (i, s) in series.slices.enumerated() {
                try fm.createSymbolicLink(at: input.appendingPathComponent(String(format: "%06d.dcm", i)), withDestinationURL: s.file)
            }
        } catch {
            throw ConversionError(file: work.path, problem: "cannot prepare a temporary folder for dcm2niix: \(error.localizedDescription)")
        }
        let process = Process()
        process.executableURL = dcm2niix
        process.arguments = ["-z", "y", "-b", "n", "-f", "series", "-o", output.path, input.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw ConversionError(file: dcm2niix.path, problem: "cannot run dcm2niix: \(error.localizedDescription)")
        }
        let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let tail = log.split(separator: "\n").suffix(8).joined(separator: "\n    ")
        guard process.terminationStatus == 0 else {
            throw ConversionError(file: folder, problem: "dcm2niix failed (exit \(process.terminationStatus)) on \(series.summary):\n    \(tail)")
        }
        let written = ((try? fm.contentsOfDirectory(atPath: output.path)) ?? []).filter { $0.hasSuffix(".nii.gz") || $0.hasSuffix(".nii") }.sorted()
        guard written.count == 1, let name = written.first, name.hasSuffix(".nii.gz") else {
            throw ConversionError(file: folder, problem: written.isEmpty
                ? "dcm2niix wrote no NIfTI for \(series.summary):\n    \(tail)"
                : "dcm2niix split \(series.summary) into \(written.count) files (\(written.joined(separator: ", "))): several echoes, gantry tilt or irregular slices; this converter needs one regular 3D volume per series")
        }
        let nifti = output.appendingPathComponent(name)
        let header: NIfTIHeader
        do { header = try NIfTI.readHeader(nifti) } catch {
            throw ConversionError(file: folder, problem: "dcm2niix's output for \(series.summary) cannot be read: \(error)")
        }
        guard header.frameCount == 1 else {
            throw ConversionError(file: folder, problem: "dcm2niix wrote a \(header.shape)-shaped image for \(series.summary); one 3D volume is needed")
        }
        let check = verify(niftiShape: header.spatialShape, niftiAffine: header.affine, against: grid)
        guard check.ok else {
            throw ConversionError(file: folder, problem: "\(series.summary): the NIfTI written by dcm2niix does not match the DICOM geometry" +
                (check.distance.isFinite ? String(format: " (corners %.4g mm apart, tolerance 1e-3 mm)", check.distance) : "") + ": \(check.detail)")
        }
        try use(nifti)
    }
}
