import Foundation
import XCTest
@testable import Segmentation
import Torch
import Volumes

/// The TorchScript export: every head is saved, loaded back through libtorch's jit loader and run,
/// and its output compared with Concord's own forward pass on the same input.
final class ExportTests: XCTestCase {
    /// fp32 tolerance on logits: the exported source calls the same ATen kernels in the same order,
    /// so differences are rounding only (PyTorch 2.11 against Concord on libtorch 1.13 differed by
    /// at most 1.2e-5 on the interop check; the bound leaves room for other kernels' reduction
    /// orders).
    static let tolerance: Float = 1e-4

    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("concord-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Runtime.manualSeed(7)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func maxAbsDifference(_ a: Tensor, _ b: Tensor) throws -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return Float(try (a - b).abs().max().item())
    }

    /// Exports `head` of `method`, loads the file back and runs it on `input`.
    func exportedOutput(_ method: SegmentationMethod, head name: String?, input: Tensor) throws -> Tensor {
        let head = try ModelExport.head(named: name, of: method)
        let url = folder.appendingPathComponent("\(method.name)-\(head.name).pt")
        try ModelExport.build(method: method, head: head).save(to: url, extraFiles: [("note.txt", Data("x".utf8))])
        XCTAssertEqual(try ScriptModule.extraFile("note.txt", in: url), Data("x".utf8))
        return try ScriptModule.load(url).forward([input])
    }

    func tiny(rank: Int = 3, widths: [Int] = [4, 8, 16, 32], norm: NormKind = .instance, deepSupervision: Bool = true) -> UNetConfig {
        UNetConfig(rank: rank, widths: widths, norm: norm, dropout: 0, deepSupervision: deepSupervision)
    }

    func testSupervisedUNet3DWithDeepSupervisionMatchesLogits() throws {
        let method = try SupervisedMethod(inputModalities: [0, 1], modalityNames: ["a", "b"], numClasses: 3, unet: tiny())
        method.model.eval()
        let x = try Tensor.randn([1, 2, 16, 16, 16])
        let concord = try withNoGrad { try method.network(x) }
        let exported = try exportedOutput(method, head: nil, input: x)
        XCTAssertLessThanOrEqual(try maxAbsDifference(exported, concord), Self.tolerance)
        // The deep-supervision heads exist in the network but are not part of the export.
        let source = try ModelExport.sourceText(method: method, head: ModelExport.head(named: nil, of: method))
        XCTAssertFalse(source.contains("auxiliary_heads"))
        XCTAssertTrue(source.contains("decoder__head__weight"))
    }

    /// The 2D U-Net takes (B, C, H, W) and Concord's slice form (B, C, 1, H, W); batch norm runs
    /// with its (here non-trivial) running statistics.
    func testSupervisedUNet2DBatchNormMatchesLogitsForBothLayouts() throws {
        let method = try SupervisedMethod(inputModalities: [0], modalityNames: ["a"], numClasses: 2,
                                          unet: tiny(rank: 2, norm: .batch))
        try withNoGrad {
            for (name, buffer) in method.model.namedBuffers() where name.hasSuffix("running_mean") {
                try buffer.value.copy_(Tensor.randn(buffer.value.shape) * 0.1)
            }
        }
        method.model.eval()
        let slices = try Tensor.randn([2, 1, 1, 32, 32])
        let concord = try withNoGrad { try method.network(slices) }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: nil, input: slices), concord), Self.tolerance)
        let images = try slices.squeeze(dim: 2)
        let concord4 = try withNoGrad { try method.network(images) }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: nil, input: images), concord4), Self.tolerance)
    }

    func testCMCHeadsMatchBranchesMeanAndMissingModalityPaths() throws {
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: tiny(widths: [4, 8, 16])))
        // gamma starts at 0 (MIA = identity): give it a value so the attention path is compared too.
        try withNoGrad { for a in network.attention { try a.gamma.value.fill_(0.3) } }
        let method = CMCMethod(network: network, modalityNames: ["ct", "mr"])
        method.model.eval()
        let a = try Tensor.randn([1, 1, 16, 16, 16]), b = try Tensor.randn([1, 1, 16, 16, 16])
        let both = try Tensor.cat([a, b], dim: 1)
        let full = try withNoGrad { try network([a, b]) }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: "ct", input: both), full.logits[0]!), Self.tolerance)
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: "mr", input: both), full.logits[1]!), Self.tolerance)
        let mean = try withNoGrad { try method.predict([a, b]).last!! }
        let exportedMean = try F.softmax(exportedOutput(method, head: nil, input: both), dim: 1)
        XCTAssertLessThanOrEqual(try maxAbsDifference(exportedMean, mean), Self.tolerance)
        let ctOnly = try withNoGrad { try network([a, nil]).logits[0]! }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: "only(ct)", input: a), ctOnly), Self.tolerance)
        let mrOnly = try withNoGrad { try network([nil, b]).logits[1]! }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(method, head: "only(mr)", input: b), mrOnly), Self.tolerance)
        XCTAssertEqual(try ModelExport.heads(of: method).map(\.name), ["only(ct)", "only(mr)", "ct", "mr", "mean"])
    }

    func testCMCValidatedFusionHeadBakesTheValidationWeights() throws {
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: tiny(widths: [4, 8, 16])))
        let method = CMCMethod(network: network, modalityNames: ["ct", "mr"], fusion: .validated)
        try method.restore(from: MethodCheckpointState(metadata: ["cmc_branch_dice": #"[{"1": 0.9, "2": 0.0}, {"1": 0.3, "2": 0.6}]"#]))
        method.model.eval()
        XCTAssertEqual(try ModelExport.heads(of: method).map(\.name), ["only(ct)", "only(mr)", "ct", "mr", "weighted"])
        let a = try Tensor.randn([1, 1, 16, 16, 16]), b = try Tensor.randn([1, 1, 16, 16, 16])
        let heads = try withNoGrad { try method.predict([a, b]) }
        let exported = try F.softmax(exportedOutput(method, head: nil, input: Tensor.cat([a, b], dim: 1)), dim: 1)
        XCTAssertLessThanOrEqual(try maxAbsDifference(exported, heads[2]!), Self.tolerance)
        // Not the mean: the weights are in the exported module.
        XCTAssertGreaterThan(try maxAbsDifference(exported, mean(of: [heads[0]!, heads[1]!])), 1e-3)
    }

    func testSemiCMLPerModalityNetworksAndMean() throws {
        let method = try SemiCMLMethod(modalityNames: ["ct", "mr"], numClasses: 2, unet: tiny(widths: [4, 8, 16]))
        method.model.eval()
        let a = try Tensor.randn([1, 1, 8, 16, 16]), b = try Tensor.randn([1, 1, 8, 16, 16])
        for (m, x) in [a, b].enumerated() {
            let concord = try withNoGrad { try method.ensemble.networks[m](x) }
            let exported = try exportedOutput(method, head: ["ct", "mr"][m], input: x)
            XCTAssertLessThanOrEqual(try maxAbsDifference(exported, concord), Self.tolerance)
        }
        let heads = try withNoGrad { try method.predict([a, b]) }
        let mean = try XCTUnwrap(heads[method.outputNames.firstIndex(of: "mean")!])
        let exported = try F.softmax(exportedOutput(method, head: "mean", input: Tensor.cat([a, b], dim: 1)), dim: 1)
        XCTAssertLessThanOrEqual(try maxAbsDifference(exported, mean), Self.tolerance)
        // The default (final) head: channel 0's own network.
        XCTAssertEqual(try ModelExport.head(named: nil, of: method).name, "reference")
        let reference = try exportedOutput(method, head: "reference", input: a)
        XCTAssertLessThanOrEqual(try maxAbsDifference(reference, try withNoGrad { try method.ensemble.networks[0](a) }), Self.tolerance)
    }

    func testMeanTeacherExportsTheTeacherAndCPSTheAveragedPair() throws {
        let mt = try MeanTeacherMethod(inputModalities: [1], modalityNames: ["a", "b"], numClasses: 2, unet: tiny(widths: [4, 8, 16]))
        // Teacher and student start equal: move the student so that exporting the wrong one shows.
        try withNoGrad { for p in mt.pair.student.parameters() { try p.value.add_(Tensor.randn(p.value.shape) * 0.5) } }
        mt.model.eval()
        let x = try Tensor.randn([1, 1, 16, 16, 16])
        let teacher = try withNoGrad { try mt.pair.teacher(x) }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(mt, head: nil, input: x), teacher), Self.tolerance)
        XCTAssertEqual(try ModelExport.head(named: nil, of: mt).inputChannels, [1])

        let cps = try CrossPseudoSupervisionMethod(inputModalities: [0], modalityNames: ["a", "b"], numClasses: 2, unet: tiny(widths: [4, 8, 16]))
        cps.model.eval()
        let averaged = try withNoGrad { try cps.predict([x, nil])[0]! }
        let exported = try F.softmax(exportedOutput(cps, head: nil, input: x), dim: 1)
        XCTAssertLessThanOrEqual(try maxAbsDifference(exported, averaged), Self.tolerance)
    }

    /// The MONAI bundle's model takes (B, C, i, j, k): the same network on the transposed input.
    func testVoxelIndexLayoutIsTheTransposedForward() throws {
        let method = try SupervisedMethod(inputModalities: [0], modalityNames: ["a"], numClasses: 3, unet: tiny(widths: [4, 8, 16]))
        method.model.eval()
        let x = try Tensor.randn([1, 1, 8, 16, 32])            // D H W
        let concord = try withNoGrad { try method.network(x) }
        let head = try ModelExport.head(named: nil, of: method)
        let url = folder.appendingPathComponent("ijk.pt")
        try ModelExport.build(method: method, head: head, layout: .voxelIndex).save(to: url)
        let ijk = try ScriptModule.load(url).forward([x.permute([0, 1, 4, 3, 2])])
        XCTAssertEqual(ijk.shape, [1, 3, 32, 16, 8])
        XCTAssertLessThanOrEqual(try maxAbsDifference(ijk.permute([0, 1, 4, 3, 2]), concord), Self.tolerance)
    }

    func testUnknownHeadIsAClearError() throws {
        let method = try SemiCMLMethod(modalityNames: ["ct", "mr"], numClasses: 2, unet: tiny(widths: [4, 8]))
        XCTAssertThrowsError(try ModelExport.head(named: "pet", of: method)) { error in
            XCTAssertTrue("\(error)".contains("head 'pet' does not exist"), "\(error)")
            XCTAssertTrue("\(error)".contains("ct, mr, mean"), "\(error)")
        }
    }

    /// The ViT-3D encoder (windowed and global attention with relative positions, adapters, the
    /// neck, the stem and the stage projections), in a supervised U-Net and in CMC, on the
    /// patch it was built for and on another token grid (position embedding resized, windows
    /// padded).
    func testViTEncoderMatchesInSupervisedAndCMC() throws {
        var vit = ViTConfig.small(imageSize: 32)
        vit.depth = 3
        vit.windowSize = 2
        vit.globalAttention = [1]
        let unet = UNetConfig(widths: [8, 16, 32, 48], encoder: .vit, vit: vit)
        let supervised = try SupervisedMethod(inputModalities: [0], modalityNames: ["a"], numClasses: 3, unet: unet)
        // Non-trivial relative positions and adapters (both start at zero).
        try withNoGrad {
            for (name, p) in supervised.model.namedParameters() where name.contains("rel_pos") || name.contains("adapter.up") {
                try p.value.copy_(Tensor.randn(p.value.shape) * 0.1)
            }
        }
        supervised.model.eval()
        for size in [32, 40] {   // 4^3 tokens (the built grid), then 5^3 (resized positions, padded windows)
            let x = try Tensor.randn([1, 1, size, size, size])
            let concord = try withNoGrad { try supervised.network(x) }
            XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(supervised, head: nil, input: x), concord), Self.tolerance, "size \(size)")
        }
        let cmc = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: unet)), modalityNames: ["ct", "mr"])
        cmc.model.eval()
        let a = try Tensor.randn([1, 1, 32, 32, 32]), b = try Tensor.randn([1, 1, 32, 32, 32])
        let full = try withNoGrad { try cmc.network([a, b]) }
        XCTAssertLessThanOrEqual(try maxAbsDifference(try exportedOutput(cmc, head: "mr", input: Tensor.cat([a, b], dim: 1)), full.logits[1]!), Self.tolerance)
    }
}
