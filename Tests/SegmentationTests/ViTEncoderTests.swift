import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// The ViT-3D encoder against a PyTorch reference of SAM-Med3D's image encoder
/// (scripts/fixtures/vit3d.py), its strict loader, freezing, and its use under the U-Net decoder.
final class ViTEncoderTests: XCTestCase {
    static func fixture(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    }

    /// The reference's configuration (from the fixture's metadata), input, outputs and adapters.
    struct Reference {
        var config: ViTConfig
        var io: [String: Tensor]
        var weightsURL: URL
        /// The weights with SAM-Med3D's own keys (prefix stripped).
        var weights: [String: Tensor]
    }

    func reference() throws -> Reference {
        let io = try Safetensors.read(Self.fixture("vit3d_io"))
        let config = try SettingsDecoding.decode(ViTConfig.self, json: Data(try XCTUnwrap(io.metadata["config"]).utf8),
                                                 defaults: ViTConfig(), source: "vit3d_io config")
        let url = try Self.fixture("vit3d_weights")
        var weights: [String: Tensor] = [:]
        for (k, v) in try Safetensors.read(url).tensors where k.hasPrefix("image_encoder.") {
            weights[String(k.dropFirst("image_encoder.".count))] = v
        }
        return Reference(config: config, io: io.dictionary, weightsURL: url, weights: weights)
    }

    func assertClose(_ a: Tensor, _ b: Tensor, tol: Float = 1e-4, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let x = try a.toArray(Float.self), y = try b.toArray(Float.self)
        let worst = zip(x, y).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, "\(what): largest difference \(worst)", file: file, line: line)
    }

    func testForwardMatchesPyTorchReference() throws {
        let r = try reference()
        XCTAssertEqual(r.config.windowSize, 3)
        XCTAssertEqual(r.config.globalAttention, [1])
        let encoder = try ViT3DEncoder(config: r.config)
        // A whole-model file: `image_encoder.` is stripped, the prompt encoder's key ignored, the
        // adapters (absent from the file) stay the identity.
        try encoder.loadPretrained(from: r.weightsURL)
        let x = try XCTUnwrap(r.io["input"])
        let (hidden, neck) = try encoder.features(x, keeping: [0, 1])
        try assertClose(hidden[0], XCTUnwrap(r.io["hidden.0"]), "tokens after block 0 (windowed, padded)")
        try assertClose(hidden[1], XCTUnwrap(r.io["hidden.1"]), "tokens after block 1 (global)")
        try assertClose(neck, XCTUnwrap(r.io["output"]), "neck output")
        XCTAssertEqual(neck.shape, [2, 8, 5, 5, 5])

        // Adapter weights present in a file are loaded too; with them the reference's second output.
        var withAdapters = r.weights
        for (k, v) in r.io where k.contains(".adapter.") { withAdapters[k] = v }
        try encoder.loadPretrained(withAdapters, source: "adapters", prefix: "")
        try assertClose(try encoder(x), XCTUnwrap(r.io["output_adapted"]), "output with adapters")
    }

    func testStateDictKeysAreSAMMed3DsPlusAdapters() throws {
        let r = try reference()
        let encoder = try ViT3DEncoder(config: r.config)
        let names = Set(encoder.namedParameters().map(\.0))
        let adapters = names.filter { $0.contains(".adapter.") }
        XCTAssertEqual(names.subtracting(adapters), Set(r.weights.keys))
        XCTAssertEqual(adapters, ["blocks.0.adapter.down.weight", "blocks.0.adapter.down.bias", "blocks.0.adapter.up.weight",
                                  "blocks.0.adapter.up.bias", "blocks.1.adapter.down.weight", "blocks.1.adapter.down.bias",
                                  "blocks.1.adapter.up.weight", "blocks.1.adapter.up.bias"])
        for name in ["patch_embed.proj.weight", "pos_embed", "blocks.0.attn.rel_pos_d", "neck.0.weight", "neck.1.bias"] {
            XCTAssertTrue(names.contains(name), name)
        }
        // Zero-initialised up-projection: a new adapter is the identity.
        let adapter = try ViTAdapter(dim: 8, hidden: 2)
        let t = try Tensor.randn([3, 8])
        XCTAssertEqual(try adapter(t).toArray(Float.self), try t.toArray(Float.self))
    }

    func loadError(_ encoder: ViT3DEncoder, _ state: [String: Tensor]) -> String {
        do {
            try encoder.loadPretrained(state, source: "test.safetensors", prefix: "")
            return ""
        } catch { return "\(error)" }
    }

    func testLoaderNamesEveryMissingUnexpectedAndMisshapenKey() throws {
        let r = try reference()
        let encoder = try ViT3DEncoder(config: r.config)
        let before = try encoder.pos_embed.value.toArray(Float.self)

        var missing = r.weights
        missing["blocks.1.attn.qkv.weight"] = nil
        missing["neck.3.bias"] = nil
        let m = loadError(encoder, missing)
        XCTAssertTrue(m.contains("missing keys (2): blocks.1.attn.qkv.weight, neck.3.bias"), m)

        var unexpected = r.weights
        unexpected["blocks.0.attn.extra"] = try Tensor.zeros([2])
        unexpected["mask_decoder.head"] = try Tensor.zeros([2])
        let u = loadError(encoder, unexpected)
        XCTAssertTrue(u.contains("unexpected keys (2): blocks.0.attn.extra, mask_decoder.head"), u)

        var misshapen = r.weights
        misshapen["blocks.1.mlp.lin1.weight"] = try Tensor.zeros([64, 15])
        let s = loadError(encoder, misshapen)
        XCTAssertTrue(s.contains("wrong shapes (1): blocks.1.mlp.lin1.weight: [64, 15] in the file, [64, 16] in the model"), s)

        // All three at once are all reported; nothing was loaded by any failed attempt.
        var all = missing
        all["blocks.0.attn.extra"] = try Tensor.zeros([2])
        all["blocks.1.mlp.lin1.weight"] = try Tensor.zeros([64, 15])
        let a = loadError(encoder, all)
        for key in ["blocks.1.attn.qkv.weight", "neck.3.bias", "blocks.0.attn.extra", "blocks.1.mlp.lin1.weight"] {
            XCTAssertTrue(a.contains(key), "\(key) not in: \(a)")
        }
        XCTAssertEqual(try encoder.pos_embed.value.toArray(Float.self), before)
        XCTAssertFalse(encoder.parameters().contains { $0.isFrozen })

        // Adapter keys, and only those, may be absent.
        XCTAssertEqual(loadError(encoder, r.weights), "")
    }

    func testLoaderExplainsSettingsThatDoNotMatchTheFile() throws {
        let r = try reference()
        var noRelative = r.config
        noRelative.relativePosition = false
        let e1 = loadError(try ViT3DEncoder(config: noRelative), r.weights)
        XCTAssertTrue(e1.contains("unexpected keys (6)") && e1.contains("blocks.0.attn.rel_pos_d"), e1)
        XCTAssertTrue(e1.contains("set vit.relativePosition true"), e1)
        var wider = r.config
        wider.windowSize = 2
        let e2 = loadError(try ViT3DEncoder(config: wider), r.weights)
        XCTAssertTrue(e2.contains("blocks.0.attn.rel_pos_d: [5, 8] in the file, [3, 8] in the model"), e2)
        XCTAssertTrue(e2.contains("vit.windowSize"), e2)
        var deeper = r.config
        deeper.depth = 3
        let e3 = loadError(try ViT3DEncoder(config: deeper), r.weights)
        XCTAssertTrue(e3.contains("the file has 2 blocks, vit.depth is 3"), e3)
        XCTAssertFalse(e3.contains("relativePosition"), e3)
        let e4 = loadError(try ViT3DEncoder(inChannels: 2, config: r.config), r.weights)
        XCTAssertTrue(e4.contains("patch_embed.proj.weight: [16, 1, 4, 4, 4] in the file, [16, 2, 4, 4, 4] in the model"), e4)
        XCTAssertTrue(e4.contains("takes 1 input channel(s), this encoder 2"), e4)
        XCTAssertThrowsError(try ViT3DEncoder(config: r.config).loadPretrained(from: URL(fileURLWithPath: "/nonexistent.safetensors"))) {
            XCTAssertTrue("\($0)".contains("no such file"))
        }
    }

    /// A U-Net whose encoder is the fixture's ViT, with the fixture's weights loaded as the trainer
    /// loads them; one AdamW step (with weight decay) must leave the frozen backbone bit-identical.
    func testPretrainedBackboneIsFrozenThroughAnOptimizerStep() throws {
        let r = try reference()
        try Runtime.manualSeed(21)
        var config = TrainingConfig()
        config.method = "supervised"
        config.optimizer = .adamw
        config.weightDecay = 0.1
        config.learningRate = 1e-2
        config.unet = UNetConfig(widths: [4, 8, 16], encoder: .vit, vit: r.config)
        config.unet.vit.pretrained = r.weightsURL.path
        config.patch = [20, 20, 20]
        XCTAssertNoThrow(try config.validate())
        let method = try MethodRegistry.make(config: config, modalityNames: ["a"], numClasses: 3)
        XCTAssertEqual(try preparePretrainedViT(in: method.model, config: config.unet.vit, load: true), 1)
        let network = (method as! SupervisedMethod).network
        let vit = (network.encoder as! ViTUNetEncoder).vit
        let frozen = vit.backboneParameters()
        XCTAssertEqual(Set(frozen.map(\.0)), Set(r.weights.keys.filter { !$0.hasPrefix("neck.") }))
        XCTAssertTrue(frozen.allSatisfy { $0.1.isFrozen && !$0.1.value.requiresGrad })
        let optimizer = try Trainer.makeOptimizer(config, method.trainableParameters)
        XCTAssertFalse(optimizer.parameters.contains { p in frozen.contains { $0.1 === p } })
        XCTAssertEqual(optimizer.parameters.count, method.model.parameters().count - frozen.count)

        let named = Dictionary(uniqueKeysWithValues: network.namedParameters().map { ($0.0, $0.1) })
        let before = try named.mapValues { try $0.value.toArray(Float.self) }
        let x = try XCTUnwrap(r.io["input"]).narrow(dim: 0, start: 0, length: 1)
        let batch = TrainingBatch(labeledImages: [x], labels: [try Tensor.randint(0, 3, shape: [1, 20, 20, 20])])
        try optimizer.zeroGrad()
        try method.losses(batch, progress: TrainingProgress(step: 0, totalSteps: 1)).total.backward()
        XCTAssertTrue(try frozen.allSatisfy { try $0.1.grad == nil })
        try optimizer.step()
        for (name, p) in named {
            let changed = try p.value.toArray(Float.self) != before[name]!
            let isBackbone = name.hasPrefix("encoder.vit.") && !name.hasPrefix("encoder.vit.neck.") && !name.contains(".adapter.")
            if isBackbone {
                XCTAssertFalse(changed, "\(name) is frozen but changed")
            } else if !name.contains(".adapter.down.") {
                // (adapter.down has no gradient while adapter.up is zero; only weight decay moves it)
                XCTAssertTrue(changed, "\(name) should train")
            }
        }
        // The backbone still holds the file's values exactly.
        for (key, value) in r.weights where !key.hasPrefix("neck.") {
            XCTAssertEqual(try named["encoder.vit." + key]!.value.toArray(Float.self), try value.toArray(Float.self), key)
        }
    }

    /// Through the trainer: the file is read for a new run, the backbone stays frozen over training
    /// while the loss goes down, and a resumed run re-freezes without needing the file.
    func testTrainerLoadsPretrainedWeightsAndKeepsThemFrozen() throws {
        let r = try reference()
        var config = TrainingConfig()
        config.method = "supervised"
        config.inputModalities = [0]
        config.iterations = 16
        config.patch = [20, 20, 20]
        config.unet = UNetConfig(widths: [4, 8, 16], encoder: .vit, vit: r.config)
        config.unet.vit.pretrained = r.weightsURL.path
        config.labeledBatch = 2
        config.learningRate = 1e-2
        config.schedule = .constant
        config.augmentation = .none
        config.logInterval = 1
        config.validationInterval = 16
        config.checkpointInterval = 8
        let c = try syntheticCase("l0", size: 20, seed: 1)
        let data = TrainingData(modalityNames: ["A", "B"], numClasses: 3, paired: true, labeled: [c], unlabeled: [], validation: [c])
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("concord-vit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        var messages: [String] = []
        let trainer = try Trainer(config: config, data: data, run: run, resume: false, output: { messages.append($0) })
        XCTAssertTrue(messages.contains { $0.contains("weights from") && $0.contains("backbone frozen") }, "\(messages)")
        XCTAssertThrowsError(try trainer.train(stoppingAt: 8))   // interrupted at 8, checkpoint written

        var resumed = config
        resumed.unet.vit.pretrained = "/moved/away.safetensors"   // not read on resume
        let second = try Trainer(config: resumed, data: data, run: run, resume: true, output: { _ in })
        _ = try second.train()
        let vit = ((second.method as! SupervisedMethod).network.encoder as! ViTUNetEncoder).vit
        XCTAssertTrue(vit.backboneParameters().allSatisfy(\.1.isFrozen))
        let state = Dictionary(uniqueKeysWithValues: try vit.stateDict())
        for (key, value) in r.weights where !key.hasPrefix("neck.") {
            XCTAssertEqual(try state[key]!.toArray(Float.self), try value.toArray(Float.self), key)
        }
        XCTAssertNotEqual(try state["blocks.0.adapter.up.weight"]!.abs().sum().item(), 0)
        XCTAssertNotEqual(try state["neck.0.weight"]!.toArray(Float.self), try r.weights["neck.0.weight"]!.toArray(Float.self))

        var losses: [Int: Double] = [:]
        for line in try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if o["kind"] as? String == "train", let l = o["losses"] as? [String: Double] { losses[o["iteration"] as! Int] = l["total"] }
        }
        XCTAssertEqual(losses.count, 16)
        let first = losses[1]!, last = (14...16).map { losses[$0]! }.reduce(0, +) / 3
        XCTAssertLessThan(last, 0.8 * first, "loss \(first) -> \(last)")
    }

    func testEncoderGivesTheDecoderItsStagesAtOtherGridSizes() throws {
        try Runtime.manualSeed(4)
        var vit = ViTConfig.small(imageSize: 32)
        vit.windowSize = 2
        vit.globalAttention = [1]
        let config = UNetConfig(widths: [8, 16, 32, 64], encoder: .vit, vit: vit)
        XCTAssertEqual(config.divisor, 8)
        let net = try UNet(inChannels: 2, numClasses: 3, config: config)
        let encoder = try XCTUnwrap(net.encoder as? ViTUNetEncoder)
        XCTAssertEqual(encoder.skipBlocks, [0, 0])
        // 24^3 is a 3^3 token grid: the 4^3 position embedding and the global block's relative
        // table (made for 4) are resampled; the windowed block pads 3 to 4.
        let features = try encoder(Tensor.randn([1, 2, 24, 24, 24]))
        XCTAssertEqual(features.map(\.shape), [[1, 8, 24, 24, 24], [1, 16, 12, 12, 12], [1, 32, 6, 6, 6], [1, 64, 3, 3, 3]])
        XCTAssertEqual(try net(Tensor.randn([1, 2, 32, 32, 32])).shape, [1, 3, 32, 32, 32])
        let names = net.namedParameters().map(\.0)
        for name in ["encoder.vit.patch_embed.proj.weight", "encoder.vit.pos_embed", "encoder.vit.blocks.1.attn.rel_pos_w",
                     "encoder.vit.blocks.0.adapter.up.weight", "encoder.vit.neck.2.weight", "encoder.stem.conv1.conv.weight",
                     "encoder.projections.0.0.weight", "encoder.projections.0.3.conv.weight", "encoder.projections.2.0.conv.weight",
                     "decoder.head.weight"] {
            XCTAssertTrue(names.contains(name), name)
        }
        // SAM-Med3D's relative position terms need a cubic grid in global blocks.
        XCTAssertThrowsError(try net(Tensor.randn([1, 2, 16, 32, 32]))) { XCTAssertTrue("\($0)".contains("cubic"), "\($0)") }
        var flat = config
        flat.vit.relativePosition = false
        XCTAssertEqual(try UNet(inChannels: 2, numClasses: 3, config: flat)(Tensor.randn([1, 2, 16, 32, 32])).shape, [1, 3, 16, 32, 32])
        // Validation names the keys.
        var bad = TrainingConfig()
        bad.unet = config
        bad.patch = [20, 24, 24]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("divisible by 8"), "\($0)") }
        bad.patch = [24, 24, 24]
        bad.unet.vit.heads = 5
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("vit.heads"), "\($0)") }
        bad.unet.vit.heads = 4
        bad.unet.rank = 2
        bad.method = "supervised"
        bad.patch = [24, 24]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("3D only"), "\($0)") }
    }

    func testConfigKeys() throws {
        let config = try TrainingConfig.overriding([
            "unet": ["encoder": "vit", "widths": [8, 16, 32, 64], "vit": ["embedDim": 48, "heads": 4, "patch": 8, "pretrained": "sam.safetensors"]],
        ])
        XCTAssertEqual(config.unet.encoder, .vit)
        XCTAssertEqual(config.unet.vit.embedDim, 48)
        XCTAssertEqual(config.unet.vit.pretrained, "sam.safetensors")
        XCTAssertEqual(config.unet.vit.depth, 12)   // untouched keys keep SAM-Med3D's values
        XCTAssertThrowsError(try TrainingConfig.overriding(["unet": ["vit": ["embeddim": 48]]])) {
            XCTAssertTrue("\($0)".contains("unet.vit.embeddim"), "\($0)")
        }
        // run.json keeps every setting.
        let roundTrip = try JSONDecoder().decode(ViTConfig.self, from: JSONEncoder().encode(config.unet.vit))
        XCTAssertEqual(roundTrip, config.unet.vit)
    }

    func gradientNorm(_ module: Module) throws -> Double {
        try module.parameters().compactMap { try $0.grad }.reduce(0) { $0 + (try $1.abs().sum().item()) }
    }

    /// CMC with one ViT encoder per modality: MIA, CSC and CAC work on the projected bottleneck,
    /// and both unlabelled terms reach both ViTs.
    func testCMCWithViTEncodersTrainsBothBranches() throws {
        try Runtime.manualSeed(5)
        var vit = ViTConfig.small(imageSize: 16)
        vit.patch = 4
        vit.embedDim = 16
        vit.heads = 2
        let unet = UNetConfig(widths: [4, 8, 16], encoder: .vit, vit: vit)
        let network = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 3, unet: unet))
        XCTAssertTrue(network.encoders.allSatisfy { $0 is ViTUNetEncoder })
        XCTAssertTrue(network.namedParameters().contains { $0.0 == "encoders.1.vit.blocks.1.attn.qkv.weight" })
        let method = CMCMethod(network: network, modalityNames: ["a", "b"])
        let labels = try Tensor.randint(0, 3, shape: [1, 16, 16, 16])
        let batch = TrainingBatch(labeledImages: [try Tensor.randn([1, 1, 16, 16, 16]), try Tensor.randn([1, 1, 16, 16, 16])],
                                  labels: [labels, labels],
                                  unlabeledImages: [try Tensor.randn([2, 1, 16, 16, 16]), try Tensor.randn([2, 1, 16, 16, 16])])
        let terms = try method.losses(batch, progress: TrainingProgress(step: 10, totalSteps: 10))
        XCTAssertEqual(terms.terms.map(\.name), ["sup", "csc", "cac"])
        try (terms.terms[1].value + terms.terms[2].value).backward()
        for m in 0..<2 {
            let vitEncoder = (network.encoders[m] as! ViTUNetEncoder).vit
            XCTAssertGreaterThan(try gradientNorm(vitEncoder.blocks[0].attn), 0, "ViT \(m)")
            XCTAssertGreaterThan(try gradientNorm(network.decoders[m]), 0, "decoder \(m)")
        }
    }
}
