import Datasets
import Foundation
import XCTest
@testable import Segmentation
@testable import Torch
import Volumes

/// Fold ensembles and cross-validated postprocessing on untrained runs (random weights, each run
/// with its own preprocessing plan) and a tiny phantom dataset: the ensemble's probabilities are
/// the mean of its members' restored probabilities, the saved probabilities are those, runs with
/// different classes are refused, and `concord cross-validate` / `concord predict` work together.
final class EnsembleTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-ensemble-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    /// A phantom dataset of `cases` labelled 20^3 cases (two modalities, anisotropic spacing).
    func makeDataset(cases: Int = 4) throws -> URL {
        var config = PhantomConfig()
        config.size = 20
        let data = root.appendingPathComponent("data")
        try Phantom.writeDataset(to: data, cases: cases, unlabeledCases: 0, seed: 3, config: config)
        return data
    }

    /// An untrained run (random weights from `seed`) with its own target spacing; `splits` (a fold's)
    /// is saved beside it when given.
    func makeRun(_ name: String, in folder: URL, seed: UInt64, spacing: [Double], dataset: URL,
                 classNames: [Int: String] = [0: "background", 1: "LV", 2: "Myo", 3: "RV"], splits: Splits? = nil) throws -> URL {
        let run = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        var config = TrainingConfig()
        config.method = "supervised"
        config.patch = [16, 16, 16]
        config.unet = UNetConfig(widths: [4, 8])
        let modalities = ["bSSFP", "LGE"]
        let plan = PreprocessingPlan(targetSpacing: spacing, normalization: [.zscore(nonZeroOnly: false), .zscore(nonZeroOnly: false)],
                                     channelNames: modalities)
        try RunDescription(concordVersion: "test", dataset: dataset.path, modalityNames: modalities, classNames: classNames,
                           paired: true, fileEnding: ".nii.gz", plan: plan, config: config).write(to: run)
        try Runtime.manualSeed(seed)
        let method = try MethodRegistry.make(config: config, modalityNames: modalities, numClasses: classNames.count)
        try Checkpoint(model: method.model.stateDict()).write(to: run.appendingPathComponent("checkpoints/best.safetensors"))
        try splits?.save(to: run)
        return run
    }

    func caseInput(_ data: URL, _ name: String) -> CaseInput {
        CaseInput(name: name, channels: (0..<2).map { data.appendingPathComponent("imagesTr/\(name)_000\($0).nii.gz") })
    }

    func testAverageIsTheVoxelwiseMeanAndArgmaxTakesTheLowerClassOnTies() throws {
        let shape = [2, 1, 1]
        func v(_ values: [Float]) -> Volume { Volume(shape: shape, voxels: values, spacing: [1, 1, 1]) }
        let a = [v([0.2, 0.5]), v([0.8, 0.5])], b = [v([0.6, 0.1]), v([0.4, 0.9])], c = [v([1, 0]), v([0, 1])]
        let mean = try EnsemblePredictor.average([a, b, c])
        XCTAssertEqual(mean[0].voxels[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(mean[0].voxels[1], 0.2, accuracy: 1e-6)
        XCTAssertEqual(mean[1].voxels[0], 0.4, accuracy: 1e-6)
        XCTAssertEqual(mean[1].voxels[1], 0.8, accuracy: 1e-6)
        XCTAssertEqual(EnsemblePredictor.argmax(mean).voxels, [0, 1])
        XCTAssertEqual(EnsemblePredictor.argmax([v([0.5, 0.3]), v([0.5, 0.7])]).voxels, [0, 1])
        XCTAssertThrowsError(try EnsemblePredictor.average([a, [a[0]]])) { XCTAssertTrue("\($0)".contains("member 1 has 1 class volume(s)"), "\($0)") }
    }

    func testEnsembleProbabilitiesAreTheMeanOfItsMembersInTheInputGeometry() throws {
        let data = try makeDataset(cases: 2)
        let runs = root.appendingPathComponent("runs")
        let a = try makeRun("a", in: runs, seed: 1, spacing: [1.5, 1.5, 3], dataset: data)
        let b = try makeRun("b", in: runs, seed: 2, spacing: [2, 2, 2.5], dataset: data)
        let members = try [a, b].map { try Predictor(run: $0) }
        let ensemble = try EnsemblePredictor(members: members)
        let name = Phantom.caseName(0)
        let (volumes, header) = try caseInput(data, name).read()
        let memberProbabilities = try members.map { try $0.probabilities(volumes) }
        let mean = try ensemble.probabilities(volumes)
        XCTAssertEqual(mean.count, 4)
        let input = volumes.channels[0]!
        for k in 0..<4 {
            XCTAssertEqual(mean[k].shape, input.shape)
            XCTAssertEqual(mean[k].affine, input.affine)
            for i in stride(from: 0, to: input.count, by: 7) {
                XCTAssertEqual(mean[k].voxels[i], (memberProbabilities[0][k].voxels[i] + memberProbabilities[1][k].voxels[i]) / 2, accuracy: 1e-6)
            }
        }
        // The members differ (different weights and grids), so the mean is not one of them.
        XCTAssertGreaterThan(zip(memberProbabilities[0][1].voxels, memberProbabilities[1][1].voxels).map { abs($0 - $1) }.max()!, 1e-3)
        // Restored probabilities still sum to 1 per voxel.
        for i in stride(from: 0, to: input.count, by: 5) {
            XCTAssertEqual((0..<4).reduce(Float(0)) { $0 + mean[$1].voxels[i] }, 1, accuracy: 1e-4)
        }

        // Written: the mask is the argmax of the mean, the 4D file holds the mean, both in the input's geometry.
        let out = root.appendingPathComponent("pred")
        try ensemble.predict([caseInput(data, name)], out: out, saveProbabilities: true, log: { _ in })
        let mask = try NIfTI.read(out.appendingPathComponent("\(name).nii.gz"))
        XCTAssertEqual(mask.volume.voxels, EnsemblePredictor.argmax(mean).voxels)
        XCTAssertEqual(mask.volume.affine, input.affine)
        let saved = try NIfTI.read(out.appendingPathComponent("probabilities/\(name).nii.gz"))
        XCTAssertEqual(saved.header.shape, input.shape + [4])
        XCTAssertEqual(saved.header.datatype, .float32)
        XCTAssertEqual(saved.header.sformCode, header.sformCode)
        for k in 0..<4 { XCTAssertEqual(saved.frame(k).voxels, mean[k].voxels, "class \(k)") }
    }

    func testRunsWithDifferentClassesOrFoldersWithoutRunsAreClearErrors() throws {
        let data = try makeDataset(cases: 1)
        let runs = root.appendingPathComponent("runs")
        let a = try makeRun("a", in: runs, seed: 1, spacing: [1.5, 1.5, 3], dataset: data)
        let b = try makeRun("b", in: runs, seed: 2, spacing: [1.5, 1.5, 3], dataset: data,
                            classNames: [0: "background", 1: "LV", 2: "Myo", 3: "scar"])
        XCTAssertThrowsError(try EnsemblePredictor(members: [a, b].map { try Predictor(run: $0) })) { error in
            XCTAssertTrue("\(error)".contains("runs disagree on their classes"), "\(error)")
            XCTAssertTrue("\(error)".contains("3=scar"), "\(error)")
        }
        // A folder of runs expands to its runs, in name order; a folder without runs is refused.
        XCTAssertEqual(try EnsemblePredictor.runFolders([runs]).map(\.lastPathComponent), ["a", "b"])
        XCTAssertThrowsError(try EnsemblePredictor.runFolders([data])) { XCTAssertTrue("\($0)".contains("nor a folder of runs"), "\($0)") }
        XCTAssertThrowsError(try EnsemblePredictor.runFolders([a, runs])) { XCTAssertTrue("\($0)".contains("named twice"), "\($0)") }
    }

    /// Two fold runs: the cross-validation's Dice before postprocessing equals `evaluate --run`'s on
    /// each fold's validation cases; the decision is written beside the runs and `concord predict`
    /// on the folder of runs applies it.
    func testCrossValidationDecisionAndPredictWithTheFoldFolder() throws {
        let data = try makeDataset(cases: 4)
        let layout = try DatasetLayout.load(root: data)
        let folds = try CrossValidationFolds.make(cases: layout.labeled.map(\.name), count: 2)
        let runs = root.appendingPathComponent("runs")
        let fold0 = try makeRun("fold0", in: runs, seed: 1, spacing: [1.5, 1.5, 3], dataset: data,
                                splits: try Splits.make(layout: layout, folds: folds, fold: 0, seed: 1, labeledRatio: 1))
        let fold1 = try makeRun("fold1", in: runs, seed: 2, spacing: [1.5, 1.5, 3], dataset: data,
                                splits: try Splits.make(layout: layout, folds: folds, fold: 1, seed: 1, labeledRatio: 1))
        let predictors = try [fold0, fold1].map { try Predictor(run: $0) }
        let decision = try CrossValidation.run(predictors: predictors, log: { _ in })
        XCTAssertEqual(decision.folds.map(\.fold), [0, 1])
        XCTAssertEqual(decision.folds.map(\.cases), folds.folds.map(\.val))
        // Dice before postprocessing, pooled, equals the metrics module's on the same cases.
        var dice: [String: [Double]] = [:]
        for (k, predictor) in predictors.enumerated() {
            let result = try RunEvaluation.evaluate(predictor: predictor, dataset: data, cases: folds.folds[k].val, heads: [0],
                                                    levels: [MisalignmentLevel(maxTranslationMM: 0, maxRotationDegrees: 0)], seed: 0, log: { _ in })
            for c in result[0].report.cases { for (label, m) in c.classes { dice[label, default: []].append(m.dice) } }
        }
        for label in ["1", "2", "3"] {
            XCTAssertEqual(decision.before[label]!, dice[label]!.reduce(0, +) / Double(dice[label]!.count), accuracy: 1e-9, label)
        }
        // The chosen steps never lower the mean.
        let mean = { (d: [String: Double]) in ["1", "2", "3"].map { d[$0]! }.reduce(0, +) / 3 }
        XCTAssertGreaterThanOrEqual(mean(decision.after), mean(decision.before))
        XCTAssertEqual(decision.trials.count, 4)

        // Through the binary: cross-validate writes postprocessing.json beside the runs; predict on
        // the folder of runs ensembles both and applies it.
        let concord = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("concord")
        let (status, printed) = try runProcess(concord, ["cross-validate", "--runs", runs.path])
        XCTAssertEqual(status, 0, printed)
        XCTAssertTrue(printed.contains("fold 0") && printed.contains("fold 1") && printed.contains("LV (without -> with)"), printed)
        let file = runs.appendingPathComponent("postprocessing.json")
        let written = try JSONDecoder().decode(PostprocessingDecision.self, from: Data(contentsOf: file))
        XCTAssertEqual(written, decision)
        let name = folds.folds[0].val[0]
        let out = root.appendingPathComponent("pred")
        let (predictStatus, predictOutput) = try runProcess(concord, ["predict", "--run", runs.path, "--input",
                                                                      data.appendingPathComponent("imagesTr").path, "--out", out.path])
        XCTAssertEqual(predictStatus, 0, predictOutput)
        XCTAssertTrue(predictOutput.contains("postprocessing from \(file.path)"), predictOutput)
        XCTAssertTrue(predictOutput.contains("ensemble of 2 runs"), predictOutput)
        let (volumes, _) = try caseInput(data, name).read()
        let expected = try EnsemblePredictor(members: predictors).segment(volumes, wantProbabilities: false,
                                                                          postprocessing: decision.postprocessing).mask
        XCTAssertEqual(try NIfTI.read(out.appendingPathComponent("\(name).nii.gz")).volume.voxels, expected.voxels)
        // Runs with different classes are refused by the command too.
        let other = try makeRun("other", in: root, seed: 3, spacing: [1.5, 1.5, 3], dataset: data, classNames: [0: "background", 1: "LV"])
        let (badStatus, badOutput) = try runProcess(concord, ["predict", "--run", fold0.path, "--run", other.path, "--input",
                                                              data.appendingPathComponent("imagesTr").path, "--out", out.path])
        XCTAssertNotEqual(badStatus, 0)
        XCTAssertTrue(badOutput.contains("runs disagree on their classes"), badOutput)
    }
}
