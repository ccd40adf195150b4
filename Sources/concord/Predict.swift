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

        Several runs (--run A --run B, or a folder whose subfolders are runs, e.g. the fold runs of a
        cross-validation) predict as an ensemble: each run's class probabilities are restored into the
        input's geometry (trilinear) and averaged, and the mask is their argmax. The runs must have the
        same classes and modalities. A postprocessing.json (written by concord cross-validate) is
        applied when given with --postprocessing, or when it lies in the folder that holds the runs.
        """
    )

    @Option(name: .customLong("run"), parsing: .upToNextOption,
            help: "A run folder written by concord train, or a folder of fold runs; repeat (or list) to ensemble several runs.")
    var runFolders: [String]
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
    @Flag(help: "Also write the (averaged) class probabilities: OUT/probabilities/CASE.nii.gz, 4D float32, frame k = class k.") var saveProbabilities = false
    @Option(help: "Apply this postprocessing.json (default: the one in the folder holding the runs, if any).") var postprocessing: String?
    @Flag(help: "Do not apply a postprocessing.json found beside the runs.") var noPostprocessing = false
    @Option(help: "Mask file format: \(MaskFormat.choices) (3D Slicer segmentation with named, coloured segments).") var format = "nifti"

    func precisionOverride() throws -> PrecisionSetting? {
        guard let precision else { return nil }
        guard let value = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision must be \(PrecisionSetting.choices), got '\(precision)'") }
        return value
    }

    func run() throws {
        guard let maskFormat = MaskFormat(rawValue: format) else { throw ValidationError("--format \(format): must be \(MaskFormat.choices)") }
        guard let setting = DeviceSetting(parsing: device) else { throw ValidationError("--device \(device): must be \(DeviceSetting.choices)") }
        let dev = try setting.resolve()
        guard !runFolders.isEmpty else { throw ValidationError("--run: name at least one run") }
        let runs = try EnsemblePredictor.runFolders(runFolders.map { URL(fileURLWithPath: $0) })
        let precisionSetting = try precisionOverride()
        let predictors = try runs.map { try Predictor(run: $0, checkpoint: checkpoint, overlap: overlap, flipTTA: tta, device: dev, precision: precisionSetting) }
        let ensemble = try EnsemblePredictor(members: predictors)
        let names = ensemble.description.modalityNames
        if let head {
            for predictor in predictors {
                guard let index = predictor.method.outputNames.firstIndex(of: head) else {
                    throw ValidationError("--head \(head): the heads of \(predictor.run.path) are \(predictor.method.outputNames.joined(separator: ", "))")
                }
                predictor.head = index
            }
        }
        let keep = try modality.map { name -> Int in
            guard let i = names.firstIndex(of: name) else { throw ValidationError("--modality \(name): the run's modalities are \(names.joined(separator: ", "))") }
            return i
        }
        // Postprocessing: the file given, else the postprocessing.json in the folder holding the runs.
        guard postprocessing == nil || !noPostprocessing else { throw ValidationError("--postprocessing and --no-postprocessing exclude each other") }
        var steps: Postprocessing? = nil
        if let file = postprocessing.map({ URL(fileURLWithPath: $0) }) ?? (noPostprocessing ? nil : EnsemblePredictor.postprocessingBeside(runs)) {
            steps = try Postprocessing.read(file, numClasses: ensemble.description.numClasses)
            print("postprocessing from \(file.path): \(steps!.summary)")
        }
        let cases = try CaseFiles.group(inputs: input.map { URL(fileURLWithPath: $0) }, channels: names.count)
        guard !cases.isEmpty else { throw ValidationError("no input files named CASE_XXXX.nii(.gz) found") }
        let inputs = cases.map { CaseInput(name: $0.name, channels: $0.channels) }
        let log: (String) -> Void = { FileHandle.standardError.write(Data("\r".utf8)); print($0) }
        let progress: (String, Int, Int) -> Void = { name, done, total in
            FileHandle.standardError.write(Data("\r\(name): window \(done)/\(total)   ".utf8))
        }
        if predictors.count == 1 && !saveProbabilities && steps == nil {
            try predictors[0].predict(inputs, out: URL(fileURLWithPath: out), keep: keep, misalignMM: misalignMm, misalignDegrees: misalignDeg,
                                      seed: seed, format: maskFormat, log: log, windowProgress: progress)
            return
        }
        guard misalignMm == 0 && misalignDeg == 0 else {
            throw ValidationError("--misalign-mm/--misalign-deg simulate misalignment for one run without --save-probabilities or postprocessing")
        }
        if predictors.count > 1 { print("ensemble of \(predictors.count) runs: \(runs.map(\.lastPathComponent).joined(separator: ", "))") }
        try ensemble.predict(inputs, out: URL(fileURLWithPath: out), keep: keep, saveProbabilities: saveProbabilities,
                             postprocessing: steps, format: maskFormat, log: log, windowProgress: progress)
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
