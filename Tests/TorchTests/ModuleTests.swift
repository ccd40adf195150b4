import XCTest
@testable import Torch

/// A small structure mirroring a PyTorch module tree, to check state-dict paths.
final class Block: Module, Layer, @unchecked Sendable {
    let conv1: Conv3d
    let norm: BatchNorm
    init(inChannels: Int = 2) throws { conv1 = try Conv3d(inChannels, 4, kernelSize: 3, padding: 1); norm = try BatchNorm(4); super.init() }
    func callAsFunction(_ x: Tensor) throws -> Tensor { try F.relu(norm(conv1(x))) }
}

final class Net: Module, @unchecked Sendable {
    let stages: [Block]
    let head: Sequential
    let _cache: Int = 0  // ignored by reflection
    init(width: Int = 4) throws {
        stages = [try Block()]
        head = Sequential([try Conv3d(width, 3, kernelSize: 1), LeakyReLU()])
        super.init()
    }
    func callAsFunction(_ x: Tensor) throws -> Tensor { try head(stages[0](x)) }
}

final class ModuleTests: XCTestCase {
    func testStateDictPathsFollowPyTorch() throws {
        let net = try Net()
        XCTAssertEqual(net.namedParameters().map(\.0), [
            "stages.0.conv1.weight", "stages.0.conv1.bias", "stages.0.norm.weight", "stages.0.norm.bias",
            "head.0.weight", "head.0.bias",
        ])
        XCTAssertEqual(net.namedBuffers().map(\.0), [
            "stages.0.norm.running_mean", "stages.0.norm.running_var", "stages.0.norm.num_batches_tracked",
        ])
        XCTAssertEqual(net.parameterCount, 4 * 2 * 27 + 4 + 4 + 4 + 3 * 4 + 3)
        XCTAssertEqual(net.stages[0].conv1.weight.value.shape, [4, 2, 3, 3, 3])
        net.eval()
        XCTAssertFalse(net.stages[0].norm.isTraining)
        net.train()
        XCTAssertTrue(net.head.layers[1].isTraining)
    }

    func testStateDictRoundTripsThroughSafetensorsBitExactly() throws {
        try Runtime.manualSeed(7)
        let a = try Net()
        _ = try a(Tensor.randn([2, 2, 4, 4, 4]))  // moves BN running stats off their defaults
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("concord-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try a.save(to: url, metadata: ["format": "pt"])
        let b = try Net()
        try b.load(from: url)
        let sa = try a.stateDict(), sb = try b.stateDict()
        XCTAssertEqual(sa.map(\.0), sb.map(\.0))
        for ((name, x), (_, y)) in zip(sa, sb) {
            XCTAssertEqual(x.dtype, y.dtype, name)
            switch x.dtype {
            case .int64: XCTAssertEqual(try x.toArray(Int64.self), try y.toArray(Int64.self), name)
            default:
                let xb = try x.toArray(Float.self).map(\.bitPattern), yb = try y.toArray(Float.self).map(\.bitPattern)
                XCTAssertEqual(xb, yb, name)
            }
        }
        XCTAssertEqual(try Safetensors.read(url).metadata, ["format": "pt"])
    }

    func testSafetensorsLayoutParsedIndependently() throws {
        let weights = try Tensor([1.5, -2, 3.25, 0] as [Float], shape: [2, 2])
        let counts = try Tensor([7, -9] as [Int64], shape: [2])
        let data = try Safetensors.encode([("layer.weight", weights), ("layer.count", counts)], metadata: ["k": "v"])
        // Header length: little-endian u64.
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual((8 + Int(n)) % 8, 0, "data block aligned to 8 bytes")
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n)))) as? [String: Any])
        XCTAssertEqual(header["__metadata__"] as? [String: String], ["k": "v"])
        let w = try XCTUnwrap(header["layer.weight"] as? [String: Any])
        XCTAssertEqual(w["dtype"] as? String, "F32")
        XCTAssertEqual(w["shape"] as? [Int], [2, 2])
        XCTAssertEqual(w["data_offsets"] as? [Int], [0, 16])
        let c = try XCTUnwrap(header["layer.count"] as? [String: Any])
        XCTAssertEqual(c["dtype"] as? String, "I64")
        XCTAssertEqual(c["data_offsets"] as? [Int], [16, 32])
        XCTAssertEqual(data.count, 8 + Int(n) + 32)
        // The bytes are little-endian IEEE floats and two's complement int64.
        let start = 8 + Int(n)
        let floats = (0..<4).map { i -> Float in
            let b = data.subdata(in: (start + 4 * i)..<(start + 4 * i + 4))
            return Float(bitPattern: b.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) })
        }
        XCTAssertEqual(floats, [1.5, -2, 3.25, 0])
        let second = data.subdata(in: (start + 24)..<(start + 32))
        XCTAssertEqual(Int64(bitPattern: second.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }), -9)
    }

    func testSafetensorsRejectsCorruptData() throws {
        let good = try Safetensors.encode([("a", Tensor([1, 2] as [Float]))])
        XCTAssertThrowsError(try Safetensors.decode(good.prefix(12)))            // header cut
        XCTAssertThrowsError(try Safetensors.decode(good.dropLast(4)))           // data cut
        var huge = good
        huge.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        XCTAssertThrowsError(try Safetensors.decode(huge)) { XCTAssertTrue(String(describing: $0).contains("exceeds")) }
    }

    func testLoadStateDictIsStrict() throws {
        let net = try Net()
        var state = Dictionary(try net.stateDict(), uniquingKeysWith: { a, _ in a })
        state["extra.weight"] = try Tensor.zeros([1])
        XCTAssertThrowsError(try net.loadStateDict(state)) { XCTAssertTrue(String(describing: $0).contains("unexpected keys: extra.weight")) }
        state["extra.weight"] = nil
        state["head.0.weight"] = try Tensor.zeros([1, 1])
        XCTAssertThrowsError(try net.loadStateDict(state)) { XCTAssertTrue(String(describing: $0).contains("head.0.weight")) }
        state["head.0.weight"] = nil
        XCTAssertThrowsError(try net.loadStateDict(state)) { XCTAssertTrue(String(describing: $0).contains("missing keys: head.0.weight")) }
        XCTAssertNoThrow(try net.loadStateDict(state, strict: false))
    }

    func testConvDefaultInitBounds() throws {
        let conv = try Conv3d(4, 8, kernelSize: 3)
        let bound = 1 / Float(4 * 27).squareRoot()
        let w = try conv.weight.value.toArray(Float.self)
        XCTAssertTrue(w.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(w.map(abs).max()!, bound * 0.9)
        XCTAssertTrue(conv.weight.value.requiresGrad)
    }
}
