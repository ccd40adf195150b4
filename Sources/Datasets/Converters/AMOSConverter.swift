import Foundation
import Volumes

/// AMOS22 (abdominal multi-organ segmentation, CT and MR) -> an unpaired CT/MR dataset.
///
/// Source: `imagesTr/amos_0001.nii.gz` + `labelsTr/amos_0001.nii.gz`, `imagesVa/` + `labelsVa/`,
/// `imagesTs/` (no labels), and AMOS's own `dataset.json` (not needed: the folders are scanned).
/// Case ids below 500 are CT scans, 500 and above MR scans. Labels 0 ... 15 are kept as they are
/// (background, spleen, right kidney, left kidney, gallbladder, esophagus, liver, stomach, aorta,
/// postcava, pancreas, right adrenal gland, left adrenal gland, duodenum, bladder,
/// prostate/uterus); MR scans are annotated with the first 13 organs only (no 14 bladder, no 15
/// prostate/uterus).
///
/// Output: channel 0 "CT", channel 1 "MR", `pairing: "unpaired"`; a CT case has only
/// `CASE_0000`, an MR case only `CASE_0001`, and `channels_present` says which. Labelled cases
/// (Tr, and Va unless `includeValidation` is off) go to imagesTr/labelsTr, Ts cases (unless
/// `includeTest` is off) and images without a label to imagesUnlabeled. With one modality
/// (`modalities: ["ct"]` or `["mr"]`) the dataset has that single channel (paired, trivially); an
/// MR-only dataset declares labels 0 ... 13 and refuses 14/15.
enum AMOSConverter {
    enum Modality: String, CaseIterable { case ct, mr }

    /// AMOS's first MR case id.
    static let firstMRCase = 500

    static let labelNames = ["background", "spleen", "right kidney", "left kidney", "gallbladder", "esophagus", "liver",
                             "stomach", "aorta", "postcava", "pancreas", "right adrenal gland", "left adrenal gland",
                             "duodenum", "bladder", "prostate/uterus"]
    /// Labels annotated in MR scans: 0 ... 13.
    static let mrLabelCount = 14

    static func plan(source: URL, options: ConversionOptions) throws -> ConversionPlan {
        var modalities = Modality.allCases
        if let list = options.modalities {
            modalities = []
            for m in list {
                guard let mod = Modality(rawValue: m.lowercased()) else {
                    throw ConversionError(file: source.path, problem: "unknown AMOS modality \"\(m)\" (use ct, mr or ct,mr)")
                }
                if !modalities.contains(mod) { modalities.append(mod) }
            }
            guard !modalities.isEmpty else { throw ConversionError(file: source.path, problem: "--modalities lists no modality") }
            modalities.sort { $0 == .ct && $1 == .mr }
        }
        let both = modalities.count == 2
        let channelOf: [Modality: Int] = both ? [.ct: 0, .mr: 1] : [modalities[0]: 0]
        let mrOnly = modalities == [.mr]
        let labelCount = mrOnly ? mrLabelCount : labelNames.count

        var notes: [String] = []
        let skipped = ConverterSupport.Skipped()
        let fm = FileManager.default
        guard ["imagesTr", "imagesVa", "imagesTs"].contains(where: { fm.fileExists(atPath: source.appendingPathComponent($0).path) }) else {
            throw ConversionError(file: source.path, problem: "not an AMOS22 folder: none of imagesTr/, imagesVa/, imagesTs/ exists")
        }
        /// The amos_NNNN files of a folder: case name -> file name.
        func scan(_ folder: String) throws -> [String: String] {
            try ConverterSupport.scanNIfTI(source, folder, skipped: skipped) { stem, path in
                guard caseID(stem) != nil else { throw ConversionError(file: path, problem: "not an AMOS case file name (amos_NNNN.nii.gz)") }
            }
        }

        var cases: [PlannedCase] = []
        var seen: [String: String] = [:]
        var perModality: [Modality: (labeled: Int, unlabeled: Int)] = [:]
        var skippedModality = 0, unlabeledImages: [String] = []
        var groups: [(images: String, labels: String?)] = [("imagesTr", "labelsTr")]
        if options.includeValidation { groups.append(("imagesVa", "labelsVa")) }
        if options.includeTest { groups.append(("imagesTs", nil)) }
        if !options.includeValidation, fm.fileExists(atPath: source.appendingPathComponent("imagesVa").path) {
            notes.append("imagesVa/ left out (--no-include-validation)")
        }
        if !options.includeTest, fm.fileExists(atPath: source.appendingPathComponent("imagesTs").path) {
            notes.append("imagesTs/ left out (--no-include-test)")
        }
        for (imageFolder, labelFolder) in groups {
            let images = try scan(imageFolder)
            let labels = try labelFolder.map(scan) ?? [:]
            let labelDir = labelFolder ?? ""
            for (name, file) in labels.sorted(by: { $0.key < $1.key }) where images[name] == nil {
                throw ConversionError(file: "\(labelDir)/\(file)", problem: "label without an image: no \(imageFolder)/\(name).nii.gz")
            }
            for name in images.keys.sorted() {
                guard let id = caseID(name), let imageName = images[name] else { continue }
                let imagePath = "\(imageFolder)/\(imageName)"
                if let other = seen[name] {
                    throw ConversionError(file: imagePath, problem: "case \(name) appears twice (also \(other))")
                }
                seen[name] = imagePath
                let modality: Modality = id < firstMRCase ? .ct : .mr
                guard let channel = channelOf[modality] else { skippedModality += 1; continue }
                let labelPath = labels[name].map { "\(labelDir)/\($0)" }
                if labelPath == nil && labelFolder != nil { unlabeledImages.append(imagePath) }
                let labeled = labelPath != nil
                perModality[modality, default: (0, 0)].labeled += labeled ? 1 : 0
                perModality[modality, default: (0, 0)].unlabeled += labeled ? 0 : 1
                var sources = [modality.rawValue.uppercased(): imagePath]
                if let l = labelPath { sources["label"] = l }
                let imageURL = source.appendingPathComponent(imagePath)
                let labelURL = labelPath.map { source.appendingPathComponent($0) }
                let allowed = modality == .mr && !mrOnly ? labelNames.count : labelCount
                let expected = modality == .mr
                    ? (mrOnly ? "the MR labels 0 ... 13 (AMOS annotates 13 organs in MR scans)" : "the AMOS labels 0 ... 15")
                    : "the AMOS labels 0 ... 15"
                cases.append(PlannedCase(name: name, labeled: labeled, channels: [channel], sources: sources) { out in
                    // Read and check everything before writing anything.
                    let image = try ConverterSupport.read3D(imageURL, display: imagePath)
                    var mapped: Volume? = nil
                    if let labelURL = labelURL, let labelPath = labelPath {
                        let label = try ConverterSupport.read3D(labelURL, display: labelPath)
                        try ConverterSupport.checkLabelGrid(label: label.volume, labelFile: labelPath, image: image.volume, imageFile: imagePath)
                        let mapping = Dictionary(uniqueKeysWithValues: (0..<allowed).map { ($0, $0) })
                        mapped = try ConverterSupport.remapLabels(label.volume, file: labelPath, mapping: mapping, expected: expected)
                    }
                    try out.writeChannel(channel, image.volume, header: image.header, sourceFile: imagePath)
                    if let mapped = mapped { try out.writeLabel(mapped, imageHeader: image.header) }
                })
            }
        }
        for m in modalities {
            let n = perModality[m] ?? (0, 0)
            notes.append("\(m.rawValue.uppercased()): \(ConverterSupport.plural(n.labeled, "labelled case")), \(ConverterSupport.plural(n.unlabeled, "unlabelled case"))")
        }
        if skippedModality > 0 {
            notes.append("\(ConverterSupport.plural(skippedModality, "case")) of the modality not selected by --modalities left out")
        }
        if !unlabeledImages.isEmpty {
            notes.append("\(ConverterSupport.plural(unlabeledImages.count, "image")) without a label file went to imagesUnlabeled: \(unlabeledImages.prefix(5).joined(separator: ", "))\(unlabeledImages.count > 5 ? ", ..." : "")")
        }
        notes += skipped.notes()
        if modalities.contains(.mr) && !mrOnly {
            notes.append("MR scans are annotated with 13 organs (labels 1 ... 13); bladder (14) and prostate/uterus (15) occur in CT scans only")
        }

        let channelNames = modalities.map { $0.rawValue.uppercased() }
        let description = DatasetDescription(
            channelNames: channelNames,
            labels: labelNames.prefix(labelCount).enumerated().map { ($0.element, $0.offset) },
            numTraining: 0, fileEnding: ".nii.gz", numUnlabeled: 0, pairing: both ? .unpaired : .paired,
            name: "AMOS22",
            description: "AMOS22 abdominal organs converted by concord convert amos: " +
                (both ? "unpaired CT (channel 0, case ids < 500) and MR (channel 1, ids >= 500) cohorts; " : "\(channelNames[0]) cases only; ") +
                "labels kept as in AMOS; MR scans annotate 13 organs (no bladder 14, no prostate/uterus 15)")
        return ConversionPlan(description: description, cases: cases, notes: notes)
    }

    /// The case id of "amos_0001" (1), nil for other names.
    static func caseID(_ stem: String) -> Int? {
        guard stem.hasPrefix("amos_") else { return nil }
        let digits = stem.dropFirst(5)
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(digits)
    }
}
