import Foundation
import Volumes

/// Medical Segmentation Decathlon Task01_BrainTumour (and any MSD task laid out the same way) ->
/// one 3D file per channel.
///
/// Source: `dataset.json` in MSD's (nnU-Net v1) style, `"modality": {"0": "FLAIR", "1": "T1w",
/// "2": "t1gd", "3": "T2w"}`, `"labels": {"0": "background", "1": "edema", ...}`;
/// `imagesTr/BRATS_001.nii.gz`, one 4D NIfTI (X, Y, Z, channels); `labelsTr/BRATS_001.nii.gz`
/// (3D); `imagesTs/BRATS_485.nii.gz` (4D, no labels). The tarballs also hold macOS resource forks
/// (`imagesTr/._BRATS_001.nii.gz`): every name starting with "._" (or ".") is skipped.
///
/// Output: `CASE_0000` ... `CASE_000{C-1}`, each frame of the 4D image as a 3D file with the 4D
/// file's geometry (qform/sform kept, dim[0] = 3) and datatype; labels copied with their values
/// (checked against dataset.json's labels, written uint8 on the image's header); `channel_names`
/// and `labels` from the source dataset.json; paired. imagesTs cases (unless `includeTest` is off)
/// and images without a label go to imagesUnlabeled.
enum MSDConverter {
    struct SourceDescription {
        var channelNames: [String]
        /// Label names by value (index = value).
        var labelNames: [String]
        var name: String?
    }

    /// Reads MSD's dataset.json: `modality` (or nnU-Net v2's `channel_names`) and `labels`, either
    /// value -> name (MSD) or name -> value (v2).
    static func readDescription(_ url: URL) throws -> SourceDescription {
        let file = "dataset.json"
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConversionError(file: url.path, problem: "cannot read the Decathlon dataset.json (it names the channels and labels): \(error.localizedDescription)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConversionError(file: file, problem: "not a JSON object")
        }
        guard let modality = (json["modality"] ?? json["channel_names"]) as? [String: Any] else {
            throw ConversionError(file: file, problem: "no \"modality\" map (e.g. {\"0\": \"FLAIR\", \"1\": \"T1w\"})")
        }
        var channels: [String] = []
        for i in 0..<modality.count {
            guard let name = modality[String(i)] as? String else {
                throw ConversionError(file: file, problem: "\"modality\" must have the keys \"0\" ... \"\(modality.count - 1)\" with string names; found \(modality.keys.sorted())")
            }
            channels.append(name)
        }
        guard !channels.isEmpty else { throw ConversionError(file: file, problem: "\"modality\" is empty") }
        guard let labels = json["labels"] as? [String: Any], !labels.isEmpty else {
            throw ConversionError(file: file, problem: "no \"labels\" map (e.g. {\"0\": \"background\", \"1\": \"edema\"})")
        }
        var byValue: [Int: String] = [:]
        for (key, value) in labels {
            if let v = Int(key), let name = value as? String {
                byValue[v] = name                     // MSD: "1": "edema"
            } else if let v = value as? Int {
                byValue[v] = key                      // nnU-Net v2: "edema": 1
            } else {
                throw ConversionError(file: file, problem: "label entry \"\(key)\": \(value) is neither \"value\": \"name\" nor \"name\": value")
            }
        }
        var names: [String] = []
        for v in 0..<byValue.count {
            guard let name = byValue[v] else {
                throw ConversionError(file: file, problem: "label values must be 0 ... \(byValue.count - 1); found \(byValue.keys.sorted())")
            }
            names.append(name)
        }
        if Set(names).count != names.count {
            throw ConversionError(file: file, problem: "two labels share a name: \(names)")
        }
        if names.first?.lowercased() != "background" {
            throw ConversionError(file: file, problem: "label 0 must be background, found \"\(names.first ?? "")\"")
        }
        return SourceDescription(channelNames: channels, labelNames: ["background"] + names.dropFirst(), name: json["name"] as? String)
    }

    static func plan(source: URL, options: ConversionOptions) throws -> ConversionPlan {
        let desc = try readDescription(source.appendingPathComponent("dataset.json"))
        let channelCount = desc.channelNames.count
        let skipped = ConverterSupport.Skipped()
        func scan(_ folder: String) throws -> [String: String] { try ConverterSupport.scanNIfTI(source, folder, skipped: skipped) }
        let fm = FileManager.default
        guard fm.fileExists(atPath: source.appendingPathComponent("imagesTr").path) || fm.fileExists(atPath: source.appendingPathComponent("imagesTs").path) else {
            throw ConversionError(file: source.path, problem: "not a Decathlon task folder: neither imagesTr/ nor imagesTs/ exists")
        }
        let trImages = try scan("imagesTr"), trLabels = try scan("labelsTr")
        let tsImages = options.includeTest ? try scan("imagesTs") : [:]
        for name in trLabels.keys.sorted() where trImages[name] == nil {
            throw ConversionError(file: "labelsTr/\(trLabels[name] ?? name)", problem: "label without an image: no imagesTr/\(name).nii.gz")
        }
        var notes: [String] = []
        var cases: [PlannedCase] = []
        var unlabeledTr: [String] = []
        let mapping = Dictionary(uniqueKeysWithValues: desc.labelNames.indices.map { ($0, $0) })
        let expected = "dataset.json's labels (" + desc.labelNames.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ") + ")"
        for (folder, images, labels) in [("imagesTr", trImages, trLabels), ("imagesTs", tsImages, [:])] {
            for name in images.keys.sorted() {
                guard let imageName = images[name] else { continue }
                if folder == "imagesTs", trImages[name] != nil {
                    throw ConversionError(file: "imagesTs/\(imageName)", problem: "case \(name) is also in imagesTr/")
                }
                let imagePath = "\(folder)/\(imageName)"
                let labelPath = labels[name].map { "labelsTr/\($0)" }
                if folder == "imagesTr" && labelPath == nil { unlabeledTr.append(imagePath) }
                var sources = ["image": imagePath]
                if let l = labelPath { sources["label"] = l }
                cases.append(PlannedCase(name: name, labeled: labelPath != nil, channels: Array(0..<channelCount), sources: sources) { out in
                    let image = try ConverterSupport.readAny(source.appendingPathComponent(imagePath), display: imagePath)
                    guard image.frameCount == channelCount else {
                        throw ConversionError(file: imagePath, problem: "\(image.frameCount) frame(s) (dim \(image.header.shape)), but dataset.json's modality declares \(channelCount) channel(s) (\(desc.channelNames.joined(separator: ", ")))")
                    }
                    // Read and check everything before writing anything.
                    var checked: Volume? = nil
                    if let labelPath = labelPath {
                        let label = try ConverterSupport.read3D(source.appendingPathComponent(labelPath), display: labelPath)
                        try ConverterSupport.checkLabelGrid(label: label.volume, labelFile: labelPath, image: image.volume, imageFile: imagePath)
                        checked = try ConverterSupport.remapLabels(label.volume, file: labelPath, mapping: mapping, expected: expected)
                    }
                    let frames = (0..<channelCount).map { image.frame($0) }
                    var datatypes: [NIfTIDataType] = []
                    for (t, frame) in frames.enumerated() {
                        guard let datatype = ConverterSupport.storageType(frame, source: image.header.datatype) else {
                            throw ConversionError(file: imagePath, problem: "channel \(t) (\(desc.channelNames[t])) holds NaN or infinite voxels")
                        }
                        datatypes.append(datatype)
                    }
                    for t in 0..<channelCount {
                        try NIfTI.write(frames[t], to: out.channelURL(t), datatype: datatypes[t], reference: image.header)
                    }
                    if let checked = checked { try out.writeLabel(checked, imageHeader: image.header) }
                })
            }
        }
        let labeledCount = cases.filter { $0.labeled }.count
        notes.append("\(ConverterSupport.plural(labeledCount, "labelled case")), \(ConverterSupport.plural(cases.count - labeledCount, "unlabelled case")); channels \(desc.channelNames.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", "))")
        if !unlabeledTr.isEmpty {
            notes.append("\(ConverterSupport.plural(unlabeledTr.count, "image")) of imagesTr without a label went to imagesUnlabeled: \(unlabeledTr.prefix(5).joined(separator: ", "))")
        }
        if !options.includeTest, fm.fileExists(atPath: source.appendingPathComponent("imagesTs").path) { notes.append("imagesTs/ left out (--no-include-test)") }
        notes += skipped.notes()

        let description = DatasetDescription(
            channelNames: desc.channelNames,
            labels: desc.labelNames.enumerated().map { ($0.element, $0.offset) },
            numTraining: 0, fileEnding: ".nii.gz", numUnlabeled: 0, pairing: .paired,
            name: desc.name ?? source.lastPathComponent,
            description: "Medical Segmentation Decathlon task converted by concord convert msd-brain: each 4D image split into one 3D file per channel (geometry kept), labels copied")
        return ConversionPlan(description: description, cases: cases, notes: notes)
    }
}
