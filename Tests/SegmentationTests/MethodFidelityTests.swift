import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Checks that the methods compute what their documents say, where the earlier tests could not
/// fail: hand computations at non-trivial settings, gradients from the unlabelled batch alone,
/// modality dropout, Semi-CML's heads and the settings that promised more than the code did.
final class MethodFidelityTests: XCTestCase {
    let tiny = UNetConfig(widths: [4, 8, 16])

    func gradientNorm(_ module: Module) throws -> Double {
        try module.parameters().compactMap { try $0.grad }.reduce(0) { $0 + (try $1.abs().sum().item()) }
    }

    /// Symmetric InfoNCE of one square similarity matrix (rows and columns as anchors), by hand.
    func infoNCEByHand(_ s: [[Double]], temperature: Double) -> Double {
        let n = s.count
        var rows = 0.0, cols = 0.0
        for i in 0..<n {
            let r = (0..<n).map { exp(s[i][$0] / temperature) }.reduce(0, +)
            rows += -log(exp(s[i][i] / temperature) / r)
            let c = (0..<n).map { exp(s[$0][i] / temperature) }.reduce(0, +)
            cols += -log(exp(s[i][i] / temperature) / c)
        }
        return (rows / Double(n) + cols / Double(n)) / 2
    }

    func softDice(_ a: [Double], _ b: [Double], eps: Double = 1e-6) -> Double {
        let inner = zip(a, b).map(*).reduce(0, +)
        return 2 * inner / (a.map { $0 * $0 }.reduce(0, +) + b.map { $0 * $0 }.reduce(0, +) + eps)
    }

    // MARK: MIA

    func testMIAWithNonZeroGammaMatchesAHandComputation() throws {
        // One sample, C = 2 channels, N = 3 positions.
        let f: [[Double]] = [[1, 2, 0.5], [-1, 0.3, 2]]
        let gamma = 0.7
        let mia = ModalityChannelAttention()
        try withNoGrad { try mia.gamma.value.fill_(gamma) }
        let out = try mia(Tensor(f.flatMap { $0.map(Float.init) }, shape: [1, 2, 3])).toArray(Float.self)
        // E = F F^T; A = softmax over each row of (rowmax(E) - E); out = gamma A F + F.
        let e = (0..<2).map { i in (0..<2).map { j in zip(f[i], f[j]).map(*).reduce(0, +) } }
        var expected: [Double] = []
        for i in 0..<2 {
            let inverted = e[i].map { e[i].max()! - $0 }
            let z = inverted.map(exp).reduce(0, +)
            let a = inverted.map { exp($0) / z }
            for n in 0..<3 { expected.append(gamma * (a[0] * f[0][n] + a[1] * f[1][n]) + f[i][n]) }
        }
        for (o, x) in zip(out, expected) { XCTAssertEqual(Double(o), x, accuracy: 1e-5) }
        // The attention path contributes: gamma 0 gives F itself, which differs.
        XCTAssertGreaterThan(zip(expected, f.flatMap { $0 }).map { abs($0 - $1) }.max()!, 0.1)
    }

    func testCMCWithoutAttentionKeepsGammaFrozenAtZero() throws {
        var config = TrainingConfig()
        config.method = "cmc"
        config.unet = tiny
        var settings = config.settings(CMCSettings.self)
        settings.cmcAttention = false
        config.setSettings(settings)
        let method = try MethodRegistry.make(config: config, modalityNames: ["a", "b"], numClasses: 3) as! CMCMethod
        let trainable = Set(method.trainableParameters.map { ObjectIdentifier($0) })
        for a in method.network.attention {
            XCTAssertFalse(trainable.contains(ObjectIdentifier(a.gamma)))
            XCTAssertEqual(try a.gamma.value.item(), 0)
        }
        let withAttention = try MethodRegistry.make(config: { var c = config; c.setSettings(CMCSettings()); return c }(),
                                                    modalityNames: ["a", "b"], numClasses: 3) as! CMCMethod
        XCTAssertEqual(withAttention.trainableParameters.count, method.trainableParameters.count + 2)
    }

    // MARK: CAC and CSC

    func testCACByHandAtTheDefaultPoolingWithUnequalInputs() throws {
        // B = 1, K = 3 classes, spatial 4 x 2 x 2; default pool 2 leaves 2 x 1 x 1 cells.
        let loss = ContrastiveAnatomicalConsistencyLoss()
        XCTAssertEqual(loss.pool, 2)
        func values(_ seed: Double) -> [Double] { (0..<(3 * 16)).map { sin(Double($0) * seed + seed) * 2 } }
        let la = values(0.37), lb = values(1.13)
        let a = try Tensor(la.map(Float.init), shape: [1, 3, 4, 2, 2]), b = try Tensor(lb.map(Float.init), shape: [1, 3, 4, 2, 2])
        // Region maps by hand: softmax per voxel, mean over each 2x2x2 block, foreground classes 1 and 2.
        func regions(_ l: [Double]) -> [[Double]] {
            var p = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 3)
            for v in 0..<16 {
                let z = (0..<3).map { exp(l[$0 * 16 + v]) }.reduce(0, +)
                for k in 0..<3 { p[k][v] = exp(l[k * 16 + v]) / z }
            }
            return (1..<3).map { k in (0..<2).map { cell in (0..<8).map { p[k][cell * 8 + $0] }.reduce(0, +) / 8 } }
        }
        let ra = regions(la), rb = regions(lb)
        let s = (0..<2).map { p in (0..<2).map { q in softDice(ra[p], rb[q]) } }
        XCTAssertEqual(try loss(a, b).item(), infoNCEByHand(s, temperature: 0.5), accuracy: 1e-5)
        XCTAssertNotEqual(ra[0], rb[0])
    }

    func testCSCAndCACReachBothEncodersFromTheUnlabeledBatchAlone() throws {
        try Runtime.manualSeed(11)
        var config = CMCLossConfig()
        config.cscOnLabeled = false   // CSC on the unlabelled elements only
        let method = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 4, unet: tiny)),
                               modalityNames: ["a", "b"], config: config)
        let batch = TrainingBatch(labeledImages: [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])],
                                  labels: [try Tensor.randint(0, 4, shape: [1, 16, 16, 16])].repeated(2),
                                  unlabeledImages: [try Tensor.randn([2, 1, 16, 16, 16]), try Tensor.randn([2, 1, 16, 16, 16])])
        for term in ["csc", "cac"] {
            try method.network.zeroGrad()
            let terms = try method.losses(batch, progress: TrainingProgress(step: 10, totalSteps: 10))
            // Only this unlabelled term is backpropagated: the labelled term plays no part.
            try XCTUnwrap(terms.terms.first { $0.name == term }).value.backward()
            for m in 0..<2 { XCTAssertGreaterThan(try gradientNorm(method.network.encoders[m]), 0, "\(term) encoder \(m)") }
        }
    }

    // MARK: ASC

    func testASCUsesPerClassAreaMapsByHand() throws {
        // K = 3, B = 2 samples, N = 2 voxels, probabilities given directly.
        // pa[b][k][n]
        let pa: [[[Double]]] = [[[0.2, 0.5], [0.5, 0.1], [0.3, 0.4]], [[0.6, 0.1], [0.1, 0.3], [0.3, 0.6]]]
        let pb: [[[Double]]] = [[[0.1, 0.4], [0.7, 0.2], [0.2, 0.4]], [[0.5, 0.3], [0.2, 0.1], [0.3, 0.6]]]
        func tensor(_ p: [[[Double]]]) throws -> Tensor { try Tensor(p.flatMap { $0.flatMap { $0.map(Float.init) } }, shape: [2, 3, 2]) }
        let asc = AreaSimilarityContrastiveLoss(temperature: 1.0)
        var expected = 0.0
        for k in 1..<3 {
            let s = (0..<2).map { i in (0..<2).map { j in softDice(pa[i][k], pb[j][k]) } }
            expected += infoNCEByHand(s, temperature: 1.0) / 2
        }
        let value = try asc(tensor(pa), tensor(pb), aIsProbability: true, bIsProbability: true).item()
        XCTAssertEqual(value, expected, accuracy: 1e-5)
        // Class identity counts: swapping classes 1 and 2 in b keeps 1 - p_background but changes ASC.
        let swapped = pb.map { [$0[0], $0[2], $0[1]] }
        XCTAssertGreaterThan(abs(try asc(tensor(pa), tensor(swapped), aIsProbability: true, bIsProbability: true).item() - value), 1e-3)
        // With one foreground class the map is p_1 = 1 - p_0, the binary form.
        let binary = try Tensor([0.3, 0.6, 0.7, 0.4, 0.8, 0.1, 0.2, 0.9] as [Float], shape: [2, 2, 2])
        let maps = try asc.areaMaps(binary, probabilities: true).toArray(Float.self)
        for (m, x) in zip(maps, [0.7, 0.4, 0.2, 0.9]) { XCTAssertEqual(Double(m), x, accuracy: 1e-6) }
    }

    // MARK: Semi-CML heads and ramp

    func testSemiCMLFinalHeadIsEachModalitysOwnNetwork() throws {
        try Runtime.manualSeed(12)
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 3, unet: tiny)
        method.model.eval()
        XCTAssertEqual(method.outputNames, ["a", "b", "mean", "reference"])
        let x0 = try Tensor.randn([1, 1, 16, 16, 16]), x1 = try Tensor.randn([1, 1, 16, 16, 16])
        try withNoGrad {
            let both = try method.predict([x0, x1])
            XCTAssertEqual(try both.last!!.toArray(Float.self), try F.softmax(method.ensemble.networks[0](x0), dim: 1).toArray(Float.self))
            let onlyB = try method.predict([nil, x1])
            XCTAssertEqual(try onlyB.last!!.toArray(Float.self), try F.softmax(method.ensemble.networks[1](x1), dim: 1).toArray(Float.self))
        }
        // Model selection: the per-class mean of the modality heads, not the mean head.
        let selected = try XCTUnwrap(method.selectionDice([[1: 0.8, 2: 0.6], [1: 0.4, 2: 0.2], [1: 0.99, 2: 0.99], [1: 0.8, 2: 0.6]]))
        XCTAssertEqual(selected[1]!, 0.6, accuracy: 1e-12)
        XCTAssertEqual(selected[2]!, 0.4, accuracy: 1e-12)
        // On request the mean is the final answer (and what selection uses).
        var config = SemiCMLConfig()
        config.outputMean = true
        let meanFinal = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 3, unet: tiny, config: config)
        XCTAssertEqual(meanFinal.outputNames.last, "mean")
        XCTAssertEqual(meanFinal.selectionDice([[1: 0.8], [1: 0.4], [1: 0.5], [1: 0.99]])?[1], 0.99)
        XCTAssertEqual(try ModelExport.heads(of: method).map(\.name), ["a", "b", "mean", "reference"])
    }

    func testSemiCMLRampSpansTheDocumentedFractionOfStageOne() throws {
        var config = SemiCMLConfig()
        config.rampUpFraction = 0.4
        let withPReL = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny, config: config, stage1Iterations: 100)
        XCTAssertEqual(withPReL.rampWeight(TrainingProgress(step: 40, totalSteps: 1000)), 1)
        XCTAssertLessThan(withPReL.rampWeight(TrainingProgress(step: 20, totalSteps: 1000)), 1)
        let noPReL = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny, config: config)
        XCTAssertLessThan(noPReL.rampWeight(TrainingProgress(step: 40, totalSteps: 1000)), 1)
        XCTAssertEqual(noPReL.rampWeight(TrainingProgress(step: 400, totalSteps: 1000)), 1)
    }

    // MARK: CMC modality dropout

    func cmcBatch() throws -> TrainingBatch {
        TrainingBatch(labeledImages: [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])],
                      labels: [try Tensor.randint(0, 3, shape: [1, 16, 16, 16])].repeated(2),
                      unlabeledImages: [try Tensor.randn([2, 1, 16, 16, 16]), try Tensor.randn([2, 1, 16, 16, 16])])
    }

    func testModalityDropoutZeroChangesNothing() throws {
        try Runtime.manualSeed(13)
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: tiny))
        let batch = try cmcBatch()
        var off = CMCLossConfig(); off.modalityDropout = 0
        var never = CMCLossConfig(); never.modalityDropout = 1e-300   // the draw runs, never drops
        let a = CMCMethod(network: network, modalityNames: ["a", "b"], config: off, seed: 5)
        let b = CMCMethod(network: network, modalityNames: ["a", "b"], config: never, seed: 5)
        for step in 0..<20 { XCTAssertNil(a.droppedModality(step: step, modalities: 2)); XCTAssertNil(b.droppedModality(step: step, modalities: 2)) }
        let progress = TrainingProgress(step: 3, totalSteps: 10)
        let ta = try a.losses(batch, progress: progress).values(), tb = try b.losses(batch, progress: progress).values()
        XCTAssertEqual(ta.map(\.0), ["sup", "csc", "cac", "total"])
        XCTAssertEqual(ta.map(\.1), tb.map(\.1))   // bit-identical
    }

    func testModalityDropoutOneDropsExactlyOneModalityAndStillTrainsBothEncoders() throws {
        try Runtime.manualSeed(14)
        var config = CMCLossConfig(); config.modalityDropout = 1
        let method = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: tiny)),
                               modalityNames: ["a", "b"], config: config, seed: 9)
        let drops = (0..<200).map { method.droppedModality(step: $0, modalities: 2) }
        XCTAssertTrue(drops.allSatisfy { $0 != nil })
        let counts = [0, 1].map { m in drops.filter { $0 == m }.count }
        XCTAssertGreaterThan(counts[0], 60); XCTAssertGreaterThan(counts[1], 60)   // both, roughly evenly
        // Same (seed, step), same draw: deterministic across runs and resumes.
        let again = CMCMethod(network: method.network, modalityNames: ["a", "b"], config: config, seed: 9)
        XCTAssertEqual((0..<200).map { again.droppedModality(step: $0, modalities: 2) }, drops)
        let batch = try cmcBatch()
        var reached = [false, false]
        for step in 0..<6 {
            try method.network.zeroGrad()
            let dropped = try XCTUnwrap(method.droppedModality(step: step, modalities: 2))
            let terms = try method.losses(batch, progress: TrainingProgress(step: step, totalSteps: 6))
            // Two modalities, one dropped: no pair left for CSC / CAC; supervision on the present branch.
            XCTAssertEqual(terms.terms.map(\.name), ["sup"])
            try terms.total.backward()
            XCTAssertEqual(try gradientNorm(method.network.encoders[dropped]), 0, "step \(step): dropped encoder")
            XCTAssertGreaterThan(try gradientNorm(method.network.encoders[1 - dropped]), 0, "step \(step): present encoder")
            reached[1 - dropped] = true
        }
        XCTAssertEqual(reached, [true, true])
    }

    func testModalityDropoutOutsideZeroOneIsRefused() throws {
        var config = TrainingConfig()
        config.method = "cmc"
        var settings = config.settings(CMCSettings.self)
        settings.cmc.modalityDropout = 1.5
        config.setSettings(settings)
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("cmc.modalityDropout"), "\($0)") }
    }

    // MARK: warm-up

    func testWarmupWorksWithEverySchedule() throws {
        var config = TrainingConfig()
        config.iterations = 110
        config.learningRate = 1
        config.warmupIterations = 10
        for kind in LearningRateScheduleKind.allCases {
            config.schedule = kind
            let s = config.learningRateSchedule()
            XCTAssertEqual(s.rate(at: 0), 0.1, accuracy: 1e-12, "\(kind)")
            XCTAssertEqual(s.rate(at: 4), 0.5, accuracy: 1e-12, "\(kind)")
            XCTAssertEqual(s.rate(at: 10), 1, accuracy: 1e-12, "\(kind)")
        }
        config.schedule = .poly
        XCTAssertEqual(config.learningRateSchedule().rate(at: 60), pow(0.5, 0.9), accuracy: 1e-12)   // poly over the 100 after warm-up
        config.schedule = .constant
        XCTAssertEqual(config.learningRateSchedule().rate(at: 99), 1)
        // Without warm-up the poly schedule is exactly the one it always was.
        config.schedule = .poly; config.warmupIterations = 0
        for step in [0, 7, 55, 109] { XCTAssertEqual(config.learningRateSchedule().rate(at: step), PolyLR(base: 1, totalSteps: 110).rate(at: step)) }
        config.warmupIterations = 110
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("warmupIterations"), "\($0)") }
    }
}
