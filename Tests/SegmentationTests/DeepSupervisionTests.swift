import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// nnU-Net-style deep supervision: weights, target downsampling, the weighted loss by hand, the
/// auxiliary heads' parameters and gradients, and that switching it off changes nothing.
final class DeepSupervisionTests: XCTestCase {
    func testWeightsHalveAndSumToOne() {
        XCTAssertEqual(DeepSupervision.weights(count: 1), [1])
        let w = DeepSupervision.weights(count: 3)
        XCTAssertEqual(w[0], 4.0 / 7, accuracy: 1e-15)
        XCTAssertEqual(w[1], 2.0 / 7, accuracy: 1e-15)
        XCTAssertEqual(w[2], 1.0 / 7, accuracy: 1e-15)
    }

    func testTargetsAreDownsampledByNearestNeighbour() throws {
        try Runtime.manualSeed(11)
        let target = try Tensor.randint(0, 4, shape: [2, 8, 8, 8])
        let logits = try Tensor.zeros([2, 4, 4, 4, 4])
        let small = try DeepSupervision.target(target, like: logits)
        XCTAssertEqual(small.dtype, .int64)
        // Nearest with factor 2 reads voxel 2i along every axis: the first of each 2x2x2 block.
        let even = try Tensor([Int64(0), 2, 4, 6])
        let expected = try target.indexSelect(dim: 1, index: even).indexSelect(dim: 2, index: even).indexSelect(dim: 3, index: even)
        XCTAssertEqual(try small.toArray(Int64.self), try expected.toArray(Int64.self))
        // Soft labels (PReL) keep their dtype and stay probabilities.
        let soft = try F.softmax(Tensor.randn([2, 4, 8, 8, 8]), dim: 1)
        let softSmall = try DeepSupervision.target(soft, like: logits)
        XCTAssertEqual(softSmall.shape, [2, 4, 4, 4, 4])
        XCTAssertEqual(try softSmall.sum(dims: [1]).mean().item(), 1, accuracy: 1e-6)
        // Same size: untouched.
        XCTAssertTrue(try DeepSupervision.target(target, like: Tensor.zeros([2, 4, 8, 8, 8])) === target)
    }

    /// Three outputs of two classes, built so that every term is arithmetic on paper.
    func testWeightedLossEqualsHandComputation() throws {
        // Target 4^3: class 1 in the first two depth slices (32 voxels), class 0 elsewhere.
        var labels = [Int64](repeating: 0, count: 64)
        for i in 0..<32 { labels[i] = 1 }
        let target = try Tensor(labels, shape: [1, 4, 4, 4])
        // Full resolution: logits 0 -> p = 1/2 everywhere. Half: class-1 logit ln 3 -> p1 = 3/4,
        // p0 = 1/4. Quarter (1 voxel): logits 0.
        let full = try Tensor.zeros([1, 2, 4, 4, 4])
        let half = try Tensor.cat([Tensor.zeros([1, 1, 2, 2, 2]), Tensor.full([1, 1, 2, 2, 2], value: Foundation.log(3))], dim: 1)
        let quarter = try Tensor.zeros([1, 2, 1, 1, 1])
        let loss = try DiceCELoss()(outputs: [full, half, quarter], target: target).item()

        let s = 1e-5, ln2 = Foundation.log(2.0)
        // Full: CE = ln 2 at every voxel; each class has 32 of 64 voxels:
        // dice = (2 * 0.5 * 32 + s) / (0.5 * 64 + 32 + s).
        let l0 = ln2 + 1 - (32 + s) / (64 + s)
        // Half: nearest keeps depth slices 0 (class 1) and 2 (class 0): 4 voxels each of 8.
        // CE = (4 ln(4/3) + 4 ln 4) / 8. Dice class 0: (2 * 4 * 1/4 + s) / (8/4 + 4 + s);
        // class 1: (2 * 4 * 3/4 + s) / (8 * 3/4 + 4 + s).
        let ce1 = (Foundation.log(4.0 / 3) + Foundation.log(4.0)) / 2
        let l1 = ce1 + 1 - ((2 + s) / (6 + s) + (6 + s) / (10 + s)) / 2
        // Quarter: the single voxel is voxel (0, 0, 0), class 1. CE = ln 2. Dice class 0:
        // (0 + s) / (0.5 + 0 + s); class 1: (2 * 0.5 + s) / (0.5 + 1 + s).
        let l2 = ln2 + 1 - (s / (0.5 + s) + (1 + s) / (1.5 + s)) / 2
        let expected = 4.0 / 7 * l0 + 2.0 / 7 * l1 + 1.0 / 7 * l2
        XCTAssertEqual(loss, expected, accuracy: 1e-6)
        // One output: plain Dice + CE.
        XCTAssertEqual(try DiceCELoss()(outputs: [full], target: target).item(), l0, accuracy: 1e-6)
    }

    /// The plain U-Net's parameter names, in registration order.
    func plainNames(stages: Int) -> [String] {
        var names: [String] = []
        let block = ["conv.weight", "conv.bias", "norm.weight", "norm.bias"]
        for i in 0..<stages { for conv in ["conv1", "conv2"] { names += block.map { "encoder.stages.\(i).\(conv).\($0)" } } }
        for j in 0..<(stages - 1) {
            names += ["decoder.stages.\(j).up.weight", "decoder.stages.\(j).up.bias"]
            for conv in ["conv1", "conv2"] { names += block.map { "decoder.stages.\(j).\(conv).\($0)" } }
        }
        return names + ["decoder.head.weight", "decoder.head.bias"]
    }

    func testOffByDefaultAndOnlyAddsAuxiliaryHeads() throws {
        let widths = [2, 4, 8, 16, 32]
        XCTAssertFalse(UNetConfig().deepSupervision)
        // PyTorch's initialisation draws each layer once, in creation order; He initialisation
        // (the default) redraws every convolution after the network is built, so the heads'
        // first draws would shift the others.
        try Runtime.manualSeed(3)
        let off = try UNet(inChannels: 1, numClasses: 3, config: UNetConfig(widths: widths, initialization: .pytorch))
        try Runtime.manualSeed(3)
        let on = try UNet(inChannels: 1, numClasses: 3, config: UNetConfig(widths: widths, deepSupervision: true, initialization: .pytorch))
        XCTAssertEqual(off.namedParameters().map(\.0), plainNames(stages: 5))
        XCTAssertEqual(on.namedParameters().map(\.0), plainNames(stages: 5) + [
            "decoder.auxiliary_heads.0.weight", "decoder.auxiliary_heads.0.bias",
            "decoder.auxiliary_heads.1.weight", "decoder.auxiliary_heads.1.bias",
        ])
        // Heads read the 1/2 (width 4) and 1/4 (width 8) decoder stages; the 1/8 one is left out.
        XCTAssertEqual(on.decoder.auxiliary_heads.map { $0.weight.value.shape }, [[3, 4, 1, 1, 1], [3, 8, 1, 1, 1]])

        // The heads are created last, so with one seed both networks share all other weights and
        // the full-resolution output is the same: prediction is unchanged.
        let x = try Tensor.randn([2, 1, 16, 16, 16])
        let plain = try off(x)
        let outputs = try on.outputs(x)
        XCTAssertEqual(outputs.map(\.shape), [[2, 3, 16, 16, 16], [2, 3, 8, 8, 8], [2, 3, 4, 4, 4]])
        XCTAssertEqual(try plain.toArray(Float.self), try outputs[0].toArray(Float.self))
        XCTAssertEqual(try on(x).toArray(Float.self), try plain.toArray(Float.self))
        XCTAssertEqual(try off.outputs(x).count, 1)

        // Names survive a save/load round trip into a fresh network (strict).
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-ds-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try on.save(to: url)
        let again = try UNet(inChannels: 1, numClasses: 3, config: UNetConfig(widths: widths, deepSupervision: true))
        try again.load(from: url)
        XCTAssertEqual(try again.outputs(x)[2].toArray(Float.self), try outputs[2].toArray(Float.self))
    }

    func testConfigKeyDecodesWithDefaultsAndValidates() throws {
        // A config written before the new keys existed.
        let old = #"{"rank": 3, "widths": [4, 8], "norm": "instance", "dropout": 0}"#
        let decoded = try SettingsDecoding.decode(UNetConfig.self, json: Data(old.utf8), defaults: UNetConfig(), source: "old unet")
        XCTAssertFalse(decoded.deepSupervision)
        XCTAssertEqual(decoded.encoder, .unet)
        XCTAssertEqual(decoded.vit, ViTConfig())
        var config = try TrainingConfig.overriding(["unet": ["deepSupervision": true, "widths": [4, 8, 16, 32]], "patch": [16, 16, 16]])
        XCTAssertTrue(config.unet.deepSupervision)
        XCTAssertNoThrow(try config.validate())
        config.unet.widths = [4, 8, 16]
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("deepSupervision")) }
    }

    func gradientNorm(_ module: Module) throws -> Double {
        try module.parameters().compactMap { try $0.grad }.reduce(0) { $0 + (try $1.abs().sum().item()) }
    }

    func testAuxiliaryHeadsReceiveGradientsInEveryMethod() throws {
        try Runtime.manualSeed(8)
        let unet = UNetConfig(widths: [2, 4, 8, 16], deepSupervision: true)
        let images = [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])]
        let labels = try Tensor.randint(0, 3, shape: [1, 16, 16, 16])
        let batch = TrainingBatch(labeledImages: images, labels: [labels, labels],
                                  unlabeledImages: [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])])
        let progress = TrainingProgress(step: 5, totalSteps: 10)
        func check(_ method: SegmentationMethod, _ decoders: [UNetDecoder], file: StaticString = #filePath, line: UInt = #line) throws {
            let terms = try method.losses(batch, progress: progress)
            // The supervised terms alone reach the auxiliary heads.
            let sup = terms.terms.filter { $0.name.hasPrefix("sup") }.map(\.value)
            XCTAssertFalse(sup.isEmpty, file: file, line: line)
            try sup.dropFirst().reduce(sup[0]) { try $0 + $1 }.backward()
            for d in decoders {
                XCTAssertEqual(d.auxiliary_heads.count, 1, file: file, line: line)
                XCTAssertGreaterThan(try gradientNorm(d.auxiliary_heads[0]), 0, "\(method.name)", file: file, line: line)
            }
        }
        let supervised = try SupervisedMethod(inputModalities: [0], modalityNames: ["a", "b"], numClasses: 3, unet: unet)
        try check(supervised, [supervised.network.decoder])
        let cmc = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: unet)), modalityNames: ["a", "b"])
        try check(cmc, cmc.network.decoders)
        let cml = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 3, unet: unet)
        try check(cml, cml.ensemble.networks.map(\.decoder))
        let cps = try CrossPseudoSupervisionMethod(inputModalities: [0], modalityNames: ["a", "b"], numClasses: 3, unet: unet)
        try check(cps, cps.pair.networks.map(\.decoder))
        let mt = try MeanTeacherMethod(inputModalities: [0], modalityNames: ["a", "b"], numClasses: 3, unet: unet)
        try check(mt, [mt.pair.student.decoder])
        XCTAssertEqual(try gradientNorm(mt.pair.teacher), 0)

        // Prediction reads the full-resolution output only.
        cmc.network.eval()
        let heads = try cmc.predict([images[0], images[1]])
        XCTAssertEqual(heads.compactMap { $0?.shape }, Array(repeating: [1, 3, 16, 16, 16], count: 3))
        XCTAssertEqual(try cmc.network([images[0], images[1]]).auxiliaryLogits.map(\.count), [0, 0])
    }

    /// The CMC supervised term with deep supervision equals the hand-weighted sum of the per-output
    /// Dice + CE; the unlabelled terms are unchanged by it.
    func testCMCSupervisedTermIsTheWeightedSum() throws {
        try Runtime.manualSeed(9)
        let unet = UNetConfig(widths: [2, 4, 8, 16, 32], deepSupervision: true)
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: unet))
        let method = CMCMethod(network: network, modalityNames: ["a", "b"])
        let images = [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])]
        let labels = try Tensor.randint(0, 3, shape: [1, 16, 16, 16])
        let terms = try method.losses(TrainingBatch(labeledImages: images, labels: [labels, labels]),
                                      progress: TrainingProgress(step: 1, totalSteps: 1))
        let out = try network([images[0], images[1]], auxiliary: true)
        XCTAssertEqual(out.auxiliaryLogits.map { $0.map(\.shape) }, Array(repeating: [[1, 3, 8, 8, 8], [1, 3, 4, 4, 4]], count: 2))
        var expected = 0.0
        for m in 0..<2 {
            let outputs = [out.logits[m]!] + out.auxiliaryLogits[m]
            for (i, w) in DeepSupervision.weights(count: 3).enumerated() {
                expected += 0.5 * w * (try DiceCELoss()(logits: outputs[i], target: DeepSupervision.target(labels, like: outputs[i])).item())
            }
        }
        XCTAssertEqual(try terms.terms[0].value.item(), expected, accuracy: 1e-5)
    }
}
