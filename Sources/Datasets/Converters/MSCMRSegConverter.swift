import Foundation
import Volumes

/// MS-CMRSeg 2019 (multi-sequence cardiac MR: bSSFP "C0", LGE, T2) -> a paired dataset whose
/// channels are the three sequences of one patient, NOT co-registered (different shapes, slices
/// and affines; Concord's loader resamples every channel onto channel 0's grid through the affines).
///
/// Source: files found recursively by name, whatever the sub-folders (the original distribution
/// spreads them over `c0t2lge/`, `c0gt/`, `lgegt/`, `t2gt/`): `patient{N}_C0.nii.gz`,
/// `patient{N}_LGE.nii.gz`, `patient{N}_T2.nii.gz` and the manual masks
/// `patient{N}_C0_manual.nii.gz`, `..._LGE_manual...`, `..._T2_manual...` (case of C0/LGE/T2 and
/// "manual" ignored; `._*` files skipped).
///
/// The reference sequence (`reference`, default C0) becomes channel 0 and its manual mask the case
/// label, so the label lies on channel 0's grid; the other selected sequences follow in the order
/// C0, LGE, T2. Patients without the reference's manual mask go to imagesUnlabeled; the other
/// sequences' masks are not used (they are on other grids; convert again with another reference to
/// use them). Label values 200 (LV myocardium) -> 1 "myocardium", 500 (LV blood pool) -> 2 "LV",
/// 600 (RV blood pool) -> 3 "RV"; any other value is an error naming the file and the value.
///
/// A patient lacking a sequence keeps the others and `channels_present` lists what it has (the
/// loader then uses its first present channel as the grid; CMC skips the missing branch). A
/// labelled case always has its reference image, since its label is that image's mask.
enum MSCMRSegConverter {
    enum Sequence: String, CaseIterable {
        case c0 = "C0", lge = "LGE", t2 = "T2"
        var channelName: String {
            switch self {
            case .c0: return "bSSFP"
            case .lge: return "LGE"
            case .t2: return "T2"
            }
        }
        init?(name: String) {
            guard let s = Sequence.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
            self = s
        }
    }

    /// Source label value -> Concord label value.
    static let labelMapping = [0: 0, 200: 1, 500: 2, 600: 3]
    static let labelNames = ["background", "myocardium", "LV", "RV"]

    /// A parsed file name: patient number, sequence, manual mask or image.
    static func parse(_ fileName: String) -> (patient: Int, sequence: Sequence, manual: Bool)? {
        guard let stem = ConverterSupport.niftiStem(fileName) else { return nil }
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || (parts.count == 3 && parts[2].lowercased() == "manual") else { return nil }
        let p = parts[0].lowercased()
        guard p.hasPrefix("patient") else { return nil }
        let digits = p.dropFirst(7)
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }), let n = Int(digits),
              let sequence = Sequence(name: parts[1]) else { return nil }
        return (n, sequence, parts.count == 3)
    }

    static func plan(source: URL, options: ConversionOptions) throws -> ConversionPlan {
        var reference = Sequence.c0
        if let r = options.reference {
            guard let s = Sequence(name: r) else {
                throw ConversionError(file: source.path, problem: "unknown reference sequence \"\(r)\" (use C0, LGE or T2)")
            }
            reference = s
        }
        var selected = Sequence.allCases
        if let list = options.modalities {
            var chosen: [Sequence] = []
            for m in list {
                guard let s = Sequence(name: m) else {
                    throw ConversionError(file: source.path, problem: "unknown MS-CMRSeg sequence \"\(m)\" (use C0, LGE, T2)")
                }
                if !chosen.contains(s) { chosen.append(s) }
            }
            guard chosen.contains(reference) else {
                throw ConversionError(file: source.path, problem: "--modalities \(chosen.map(\.rawValue).joined(separator: ",")) leaves out the reference sequence \(reference.rawValue)")
            }
            selected = Sequence.allCases.filter { chosen.contains($0) }
        }
        let order = [reference] + selected.filter { $0 != reference }

        var resourceForks = 0
        let files = try ConverterSupport.listFilesRecursively(source, skipped: &resourceForks)
        struct Patient { var images: [Sequence: String] = [:]; var manuals: [Sequence: String] = [:] }
        var patients: [Int: Patient] = [:]
        var ignored = 0
        for url in files {
            let rel = ConverterSupport.relative(url, to: source)
            guard let (n, sequence, manual) = parse(url.lastPathComponent) else { ignored += 1; continue }
            var p = patients[n] ?? Patient()
            if let other = manual ? p.manuals[sequence] : p.images[sequence] {
                throw ConversionError(file: rel, problem: "patient \(n)'s \(sequence.rawValue) \(manual ? "manual mask" : "image") appears twice (also \(other))")
            }
            if manual { p.manuals[sequence] = rel } else { p.images[sequence] = rel }
            patients[n] = p
        }
        guard !patients.isEmpty else {
            throw ConversionError(file: source.path, problem: "no MS-CMRSeg file found (patient{N}_C0.nii.gz, patient{N}_LGE.nii.gz, patient{N}_T2.nii.gz, ..._manual.nii.gz) in this folder or below")
        }

        var cases: [PlannedCase] = []
        var notes: [String] = []
        var unusedManuals = 0, incomplete: [String] = []
        for n in patients.keys.sorted() {
            guard let p = patients[n] else { continue }
            let name = "patient\(n)"
            if let manual = p.manuals[reference], p.images[reference] == nil {
                throw ConversionError(file: manual, problem: "manual mask without its image: no patient\(n)_\(reference.rawValue).nii.gz was found")
            }
            let present = order.indices.filter { p.images[order[$0]] != nil }
            guard !present.isEmpty else {
                if p.images.isEmpty {
                    let any = p.manuals.values.sorted().first ?? name
                    throw ConversionError(file: any, problem: "patient \(n) has manual masks but no image")
                }
                continue  // only sequences not selected
            }
            if present.count < order.count {
                incomplete.append("\(name) (no \(order.indices.filter { !present.contains($0) }.map { order[$0].rawValue }.joined(separator: ", ")))")
            }
            unusedManuals += p.manuals.keys.filter { $0 != reference }.count
            let labelPath = p.manuals[reference]
            let labeled = labelPath != nil
            var sources: [String: String] = [:]
            for c in present { sources[order[c].rawValue] = p.images[order[c]] }
            if let l = labelPath { sources["label"] = l }
            let channelFiles = present.map { ($0, p.images[order[$0]] ?? "") }
            cases.append(PlannedCase(name: name, labeled: labeled, channels: present, sources: sources) { out in
                // Read and check everything before writing anything.
                let images = try channelFiles.map { (channel, path) in
                    (channel, path, try ConverterSupport.read3D(source.appendingPathComponent(path), display: path))
                }
                var label: (volume: Volume, header: NIfTIHeader)? = nil
                if let labelPath = labelPath, let ref = images.first(where: { $0.0 == 0 }) {
                    let mask = try ConverterSupport.read3D(source.appendingPathComponent(labelPath), display: labelPath)
                    try ConverterSupport.checkLabelGrid(label: mask.volume, labelFile: labelPath, image: ref.2.volume, imageFile: ref.1)
                    let mapped = try ConverterSupport.remapLabels(mask.volume, file: labelPath, mapping: labelMapping,
                                                                  expected: "the MS-CMRSeg values 0, 200 (myocardium), 500 (LV), 600 (RV)")
                    label = (mapped, ref.2.header)
                }
                for (channel, path, image) in images {
                    try out.writeChannel(channel, image.volume, header: image.header, sourceFile: path)
                }
                if let label = label { try out.writeLabel(label.volume, imageHeader: label.header) }
            })
        }
        let labeledCount = cases.filter { $0.labeled }.count
        notes.append("reference \(reference.rawValue): channels \(order.enumerated().map { "\($0.offset) \($0.element.channelName) (\($0.element.rawValue))" }.joined(separator: ", ")); \(ConverterSupport.plural(labeledCount, "patient")) with a \(reference.rawValue) manual mask labelled, \(ConverterSupport.plural(cases.count - labeledCount, "patient")) unlabelled")
        notes.append("labels 200 -> 1 myocardium, 500 -> 2 LV (blood pool), 600 -> 3 RV (blood pool)")
        if unusedManuals > 0 {
            notes.append("\(ConverterSupport.plural(unusedManuals, "manual mask")) of other sequences not used (labels must lie on the reference's grid; --reference picks another)")
        }
        if !incomplete.isEmpty {
            notes.append("\(ConverterSupport.plural(incomplete.count, "patient")) lack a sequence (channels_present lists what they have): \(incomplete.prefix(5).joined(separator: ", "))\(incomplete.count > 5 ? ", ..." : "")")
        }
        if resourceForks > 0 { notes.append("skipped \(ConverterSupport.plural(resourceForks, "macOS resource-fork file")) (._*)") }
        if ignored > 0 { notes.append("ignored \(ConverterSupport.plural(ignored, "file")) whose names are not MS-CMRSeg's") }

        let description = DatasetDescription(
            channelNames: order.map(\.channelName),
            labels: labelNames.enumerated().map { ($0.element, $0.offset) },
            numTraining: 0, fileEnding: ".nii.gz", numUnlabeled: 0, pairing: .paired,
            name: "MS-CMRSeg2019",
            description: "MS-CMRSeg 2019 converted by concord convert mscmrseg: channels " +
                order.map { "\($0.channelName) (\($0.rawValue))" }.joined(separator: ", ") +
                ", one patient per case, not co-registered (resampled onto channel 0 through the affines); labels from the \(reference.rawValue) manual masks: 200 LV myocardium -> 1 myocardium, 500 LV blood pool -> 2 LV, 600 RV blood pool -> 3 RV")
        return ConversionPlan(description: description, cases: cases, notes: notes)
    }
}
