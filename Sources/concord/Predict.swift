import ArgumentParser
import Foundation
import Segmentation
import Torch
import Volumes

/// `concord predict`: masks for new cases, in each input's own geometry.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment cases with a trained run; each mask is written in its input's geometry.",
        discussion: """
        Inputs are files named CASE_XXXX.nii.gz (XXXX = channel index, as in imagesTr) or folders of them.
        A case may lack channels: Semi-CML segments each modality with its own network; CMC runs the present
        branches (absent modalities are zeros in the fusion) and writes the mean of the present branches;
        supervised and mean-teacher models need all their input channels. --modality keeps only the named
        channels (e.g. a CT-only prediction with a CT+MR model).
        """
    )

    @Option(name: .customLong("run"), help: "A run folder written by concord train.") var runFolder: String
    @Option(parsing: .upToNextOption, help: "Input files or folders.") var input: [String]
    @Option(help: "Output folder.") var out: String
    @Option(help: "Checkpoint: best or last.") var checkpoint = "best"
    @Option(help: "Sliding-window overlap (default: the run's).") var overlap: Double?
    @Flag(help: "Average over axis flips (test-time augmentation, 8x slower in 3D).") var tta = false
    @Option(parsing: .upToNextOption, help: "Use only these modalities (names from dataset.json).") var modality: [String] = []
    @Option(help: "Output head by name (a modality branch, or 'mean'); default: the method's final answer.") var head: String?
    @Option(help: "Simulate misalignment of the non-reference channels: max translation in mm.") var misalignMm: Double = 0
    @Option(help: "Simulate misalignment: max rotation in degrees.") var misalignDeg: Double = 0
    @Option(help: "Seed of the simulated misalignment.") var seed: UInt64 = 0
    @Option(help: "Device: \(DeviceSetting.choices).") var device = "cpu"
    @Option(help: "Precision of the networks: \(PrecisionSetting.choices) (default: the run's own).") var precision: String?

    func precisionOverride() throws -> PrecisionSetting? {
        guard let precision else { return nil }
        guard let value = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices), got '\(precision)'") }
        return value
    }

    func run() throws {
        guard let setting = DeviceSetting(parsing: device) else { throw ValidationError("--device \(device): must be \(DeviceSetting.choices)") }
        let dev = try setting.resolve()
        let predictor = try Predictor(run: URL(fileURLWithPath: runFolder), checkpoint: checkpoint, overlap: overlap, flipTTA: tta, device: dev,
                                      precision: try precisionOverride())
        let names = predictor.description.modalityNames
        if let head {
            guard let index = predictor.method.outputNames.firstIndex(of: head) else {
                throw ValidationError("--head \(head): this run's heads are \(predictor.method.outputNames.joined(separator: ", "))")
            }
            predictor.head = index
        }
        let keep = try modality.map { name -> Int in
            guard let i = names.firstIndex(of: name) else { throw ValidationError("--modality \(name): the run's modalities are \(names.joined(separator: ", "))") }
            return i
        }
        let cases = try CaseFiles.group(inputs: input.map { URL(fileURLWithPath: $0) }, channels: names.count)
        guard !cases.isEmpty else { throw ValidationError("no input files named CASE_XXXX.nii(.gz) found") }
        try predictor.predict(cases.map { CaseInput(name: $0.name, channels: $0.channels) }, out: URL(fileURLWithPath: out),
                              keep: keep, misalignMM: misalignMm, misalignDegrees: misalignDeg, seed: seed,
                              log: { FileHandle.standardError.write(Data("\r".utf8)); print($0) }) { name, done, total in
            FileHandle.standardError.write(Data("\r\(name): window \(done)/\(total)   ".utf8))
        }
    }
}

/// Groups CASE_XXXX.nii(.gz) files into cases with one slot per channel.
enum CaseFiles {
    struct Case { var name: String; var channels: [URL?] }

    static func group(inputs: [URL], channels: Int) throws -> [Case] {
        var files: [URL] = []
        for url in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { throw ValidationError("\(url.path): not found") }
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().map { url.appendingPathComponent($0) }
            } else {
                files.append(url)
            }
        }
        var byCase: [String: [URL?]] = [:]
        for file in files {
            let name = file.lastPathComponent
            guard let ending = [".nii.gz", ".nii"].first(where: { name.hasSuffix($0) }) else { continue }
            let stem = String(name.dropLast(ending.count))
            guard let underscore = stem.lastIndex(of: "_"), let channel = Int(stem[stem.index(after: underscore)...]),
                  stem[stem.index(after: underscore)...].count == 4 else {
                throw ValidationError("\(file.path): expected a name CASE_XXXX\(ending) with a 4-digit channel index")
            }
            guard channel < channels else { throw ValidationError("\(file.path): channel \(channel), but the run has \(channels) channels") }
            let caseName = String(stem[..<underscore])
            var slots = byCase[caseName] ?? Array(repeating: nil, count: channels)
            slots[channel] = file
            byCase[caseName] = slots
        }
        return byCase.keys.sorted().map { Case(name: $0, channels: byCase[$0]!) }
    }
}
