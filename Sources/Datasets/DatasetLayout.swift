import Foundation

/// One case of a dataset folder: its channel files (by channel index; nil where the channel is
/// absent) and its label file.
public struct DatasetCase: Equatable, Hashable, Sendable {
    public enum Group: String, Codable, Sendable {
        /// imagesTr + labelsTr.
        case labeled
        /// imagesUnlabeled.
        case unlabeled
        /// imagesTs (labels from labelsTs when present).
        case test
    }

    public var name: String
    public var group: Group
    /// One entry per channel declared in dataset.json.
    public var channels: [URL?]
    public var label: URL?

    /// Indices of the channels present.
    public var presentChannels: [Int] { channels.indices.filter { channels[$0] != nil } }
}

/// The files of an nnU-Net v2 raw dataset folder extended for Concord:
///
///     dataset.json
///     imagesTr/CASE_0000.nii.gz ...   one file per channel (4-digit channel index)
///     labelsTr/CASE.nii.gz
///     imagesUnlabeled/CASE_0000.nii.gz ...   (optional) cases without labels
///     imagesTs/CASE_0000.nii.gz ...   (optional) test cases, labelsTs/CASE.nii.gz optional
///
/// Scanning checks names only (no file is opened); `DatasetValidator` checks contents.
public struct DatasetLayout: Sendable {
    public var root: URL
    public var description: DatasetDescription
    /// Cases with labels, sorted by name.
    public var labeled: [DatasetCase]
    /// Cases from imagesUnlabeled, sorted by name.
    public var unlabeled: [DatasetCase]
    /// Cases from imagesTs, sorted by name.
    public var test: [DatasetCase]

    public static let imagesTr = "imagesTr", labelsTr = "labelsTr", imagesUnlabeled = "imagesUnlabeled"
    public static let imagesTs = "imagesTs", labelsTs = "labelsTs"

    /// Every case of every group.
    public var allCases: [DatasetCase] { labeled + unlabeled + test }

    /// The case called `name` (labelled, unlabelled or test).
    public func `case`(named name: String) -> DatasetCase? { allCases.first { $0.name == name } }

    /// The expected path of a channel file, relative to the root.
    public static func channelPath(folder: String, caseName: String, channel: Int, fileEnding: String) -> String {
        "\(folder)/\(caseName)_\(String(format: "%04d", channel))\(fileEnding)"
    }

    /// Reads the layout; throws `DatasetError` listing every error (warnings do not throw).
    public static func load(root: URL) throws -> DatasetLayout {
        let (layout, problems) = scan(root: root)
        if let layout = layout, !problems.contains(where: { $0.severity == .error }) { return layout }
        throw DatasetError(root: root.path, problems: problems)
    }

    /// Reads the layout and reports every problem found in the names (the layout is nil only when
    /// dataset.json cannot be used).
    public static func scan(root: URL) -> (layout: DatasetLayout?, problems: [DatasetProblem]) {
        var problems: [DatasetProblem] = []
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            return (nil, [DatasetProblem(file: ".", kind: .missingFolder, message: "dataset folder \(root.path) does not exist")])
        }
        let description: DatasetDescription
        do {
            description = try DatasetDescription.load(from: root.appendingPathComponent("dataset.json"))
        } catch let e as DatasetDescriptionError {
            return (nil, [DatasetProblem(file: "dataset.json", kind: .description, message: e.problem)])
        } catch {
            return (nil, [DatasetProblem(file: "dataset.json", kind: .description, message: "\(error)")])
        }
        let descriptionProblems = description.problems()
        problems += descriptionProblems.map { DatasetProblem(file: "dataset.json", kind: .description, message: $0) }
        let channelCount = description.channelNames.count
        let ending = description.fileEnding

        /// Channel files of a folder: case name -> channel index -> URL.
        func scanImages(_ folder: String, required: Bool) -> [String: [Int: URL]] {
            var out: [String: [Int: URL]] = [:]
            let dir = root.appendingPathComponent(folder)
            guard let names = listFiles(dir) else {
                if required {
                    problems.append(DatasetProblem(file: folder, kind: .missingFolder, message: "folder \(folder)/ is missing"))
                }
                return out
            }
            for name in names {
                let path = "\(folder)/\(name)"
                guard let stem = strip(name, ending: ending, path: path, problems: &problems) else { continue }
                // CASE_XXXX: 4-digit channel index after the last underscore.
                guard let us = stem.lastIndex(of: "_"), stem.distance(from: us, to: stem.endIndex) == 5,
                      let channel = Int(stem[stem.index(after: us)...]), stem[stem.index(after: us)...].allSatisfy({ $0 >= "0" && $0 <= "9" }),
                      us > stem.startIndex else {
                    problems.append(DatasetProblem(file: path, kind: .badFileName, message: "image file names must be CASE_XXXX\(ending) with a 4-digit channel index (e.g. case_001_0000\(ending))"))
                    continue
                }
                let caseName = String(stem[..<us])
                guard channel < channelCount else {
                    problems.append(DatasetProblem(file: path, kind: .badFileName, message: "channel \(channel) is not declared: dataset.json has \(channelCount) channel(s) (0 ..< \(channelCount))"))
                    continue
                }
                out[caseName, default: [:]][channel] = dir.appendingPathComponent(name)
            }
            return out
        }

        func scanLabels(_ folder: String, required: Bool) -> [String: URL] {
            var out: [String: URL] = [:]
            let dir = root.appendingPathComponent(folder)
            guard let names = listFiles(dir) else {
                if required { problems.append(DatasetProblem(file: folder, kind: .missingFolder, message: "folder \(folder)/ is missing")) }
                return out
            }
            for name in names {
                let path = "\(folder)/\(name)"
                guard let stem = strip(name, ending: ending, path: path, problems: &problems) else { continue }
                out[stem] = dir.appendingPathComponent(name)
            }
            return out
        }

        /// Builds cases, checking that each has the channels it should.
        func makeCases(_ images: [String: [Int: URL]], folder: String, group: DatasetCase.Group, labels: [String: URL]) -> [DatasetCase] {
            var cases: [DatasetCase] = []
            for name in images.keys.sorted() {
                let found = images[name]!
                let expected: [Int]
                if let listed = description.channelsPresent?[name] {
                    expected = listed.filter { $0 >= 0 && $0 < channelCount }
                    for c in found.keys.sorted() where !expected.contains(c) {
                        problems.append(DatasetProblem(file: channelPath(folder: folder, caseName: name, channel: c, fileEnding: ending),
                                                       kind: .unexpectedChannel, severity: .warning,
                                                       message: "channels_present[\"\(name)\"] = \(listed) does not list channel \(c); the file is ignored"))
                    }
                } else if description.pairing == .unpaired {
                    expected = found.keys.sorted()
                } else {
                    expected = Array(0..<channelCount)
                }
                var channels = [URL?](repeating: nil, count: channelCount)
                for c in expected {
                    if let url = found[c] {
                        channels[c] = url
                    } else {
                        let channelName = description.channelNames[String(c)] ?? "?"
                        problems.append(DatasetProblem(file: channelPath(folder: folder, caseName: name, channel: c, fileEnding: ending),
                                                       kind: .missingChannel,
                                                       message: "missing channel \(c) (\(channelName)) of case \(name)" +
                                                           (description.channelsPresent == nil && description.pairing == .paired
                                                            ? "; a paired dataset needs every channel of every case unless channels_present says otherwise" : "")))
                    }
                }
                cases.append(DatasetCase(name: name, group: group, channels: channels, label: labels[name]))
            }
            return cases
        }

        let trImages = scanImages(imagesTr, required: description.numTraining > 0)
        let trLabels = scanLabels(labelsTr, required: description.numTraining > 0)
        for name in trLabels.keys.sorted() where trImages[name] == nil {
            problems.append(DatasetProblem(file: "\(labelsTr)/\(name)\(ending)", kind: .labelWithoutImages,
                                           message: "label file without images: no \(imagesTr)/\(name)_XXXX\(ending)"))
        }
        for name in trImages.keys.sorted() where trLabels[name] == nil {
            let first = trImages[name]!.keys.sorted().first!
            problems.append(DatasetProblem(file: channelPath(folder: imagesTr, caseName: name, channel: first, fileEnding: ending),
                                           kind: .imagesWithoutLabel,
                                           message: "case \(name) has no label file \(labelsTr)/\(name)\(ending) (cases without labels belong in \(imagesUnlabeled)/)"))
        }
        let labeledImages = trImages.filter { trLabels[$0.key] != nil }
        let labeled = makeCases(labeledImages, folder: imagesTr, group: .labeled, labels: trLabels)

        let unImages = scanImages(imagesUnlabeled, required: (description.numUnlabeled ?? 0) > 0)
        let unlabeled = makeCases(unImages, folder: imagesUnlabeled, group: .unlabeled, labels: [:])
        for name in unImages.keys.sorted() where trImages[name] != nil {
            problems.append(DatasetProblem(file: "\(imagesUnlabeled)/\(name)_XXXX\(ending)", kind: .duplicateCase,
                                           message: "case \(name) is in both \(imagesTr)/ and \(imagesUnlabeled)/"))
        }

        let tsImages = scanImages(imagesTs, required: false)
        let tsLabels = scanLabels(labelsTs, required: false)
        let test = makeCases(tsImages, folder: imagesTs, group: .test, labels: tsLabels)
        for name in tsLabels.keys.sorted() where tsImages[name] == nil {
            problems.append(DatasetProblem(file: "\(labelsTs)/\(name)\(ending)", kind: .labelWithoutImages,
                                           message: "label file without images: no \(imagesTs)/\(name)_XXXX\(ending)"))
        }

        if labeled.count != description.numTraining {
            problems.append(DatasetProblem(file: "dataset.json", kind: .countMismatch,
                                           message: "numTraining is \(description.numTraining) but \(labeled.count) labelled case(s) were found in \(imagesTr)/ + \(labelsTr)/"))
        }
        if let n = description.numUnlabeled, n != unlabeled.count {
            problems.append(DatasetProblem(file: "dataset.json", kind: .countMismatch,
                                           message: "numUnlabeled is \(n) but \(unlabeled.count) case(s) were found in \(imagesUnlabeled)/"))
        }
        if let present = description.channelsPresent {
            let known = Set(trImages.keys).union(unImages.keys).union(tsImages.keys)
            for name in present.keys.sorted() where !known.contains(name) {
                problems.append(DatasetProblem(file: "dataset.json", kind: .description, severity: .warning,
                                               message: "channels_present names case \"\(name)\", which has no image files"))
            }
        }
        let layout = DatasetLayout(root: root, description: description, labeled: labeled, unlabeled: unlabeled, test: test)
        return (layout, problems)
    }

    /// Visible regular file names of a folder, sorted; nil when the folder does not exist.
    static func listFiles(_ dir: URL) -> [String]? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return nil }
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    /// The name without `ending`, or nil (with a problem) when it does not end so.
    static func strip(_ name: String, ending: String, path: String, problems: inout [DatasetProblem]) -> String? {
        if name.hasSuffix(ending) && name.count > ending.count { return String(name.dropLast(ending.count)) }
        let lower = name.lowercased()
        for other in [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".tif", ".tiff", ".hdr", ".img", ".gz"] where lower.hasSuffix(other) {
            problems.append(DatasetProblem(file: path, kind: .wrongEnding,
                                           message: "file ending \"\(other)\" differs from dataset.json's file_ending \"\(ending)\"; the file is not used"))
            return nil
        }
        problems.append(DatasetProblem(file: path, kind: .strayFile, severity: .warning,
                                       message: "not a dataset file (expected names ending in \"\(ending)\"); ignored"))
        return nil
    }
}
