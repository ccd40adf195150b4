import XCTest
@testable import Torch

/// Autocast regions, the fp16 loss scaler, memory formats, and CUDA requests on a machine
/// without CUDA.
final class PrecisionTests: XCTestCase {
    /// Linear layers and convolutions are on libtorch's CPU autocast list in every version (a bare
    /// matmul is not in 1.13's).
    func testCPUAutocastRunsLinearAndConvInBFloat16OnlyInsideTheRegion() throws {
        let a = try Tensor.randn([4, 8]), b = try Tensor.randn([3, 8])
        let conv = try Conv3d(2, 4, kernelSize: 3, padding: 1)
        let x = try Tensor.randn([1, 2, 4, 4, 4])
        XCTAssertEqual(try F.linear(a, weight: b, bias: nil).dtype, .float32)
        let (inside, convInside, softmaxInside) = try Autocast.run(device: .cpu, dtype: .bfloat16) {
            XCTAssertEqual(try Autocast.state(device: .cpu).enabled, true)
            XCTAssertEqual(try Autocast.state(device: .cpu).dtype, .bfloat16)
            return (try F.linear(a, weight: b, bias: nil), try conv(x), try F.softmax(a, dim: 1))
        }
        XCTAssertEqual(inside.dtype, .bfloat16)
        XCTAssertEqual(convInside.dtype, .bfloat16)
        // Ops whose numerics need it stay in float32 inside the region.
        XCTAssertEqual(softmaxInside.dtype, .float32)
        XCTAssertEqual(try Autocast.state(device: .cpu).enabled, false)
        XCTAssertEqual(try F.linear(a, weight: b, bias: nil).dtype, .float32)
        XCTAssertEqual(try conv(x).dtype, .float32)
        // The bf16 result approximates the fp32 one (8 bits of mantissa).
        assertClose(try values(inside.to(.float32)), try values(F.linear(a, weight: b, bias: nil)), tol: 0.05)
    }

    func testAutocastRestoresStateWhenTheBodyThrowsAndRejectsUnsupportedDTypes() throws {
        struct Failure: Error {}
        XCTAssertThrowsError(try Autocast.run(device: .cpu, dtype: .bfloat16) { throw Failure() }) { XCTAssertTrue($0 is Failure) }
        XCTAssertEqual(try Autocast.state(device: .cpu).enabled, false)
        XCTAssertThrowsError(try Autocast.run(device: .cpu, dtype: .float64) {}) {
            XCTAssertTrue("\($0)".contains("CPU autocast runs in bfloat16"), "\($0)")
        }
        // Nested regions restore the outer state.
        try Autocast.run(device: .cpu, dtype: .bfloat16) {
            try Autocast.run(device: .cpu, dtype: .bfloat16) {}
            XCTAssertEqual(try Autocast.state(device: .cpu).enabled, true)
        }
    }

    private func parameter(_ values: [Float]) throws -> Parameter { try Parameter(Tensor(values, shape: [values.count])) }

    private func setGradient(_ p: Parameter, _ g: [Float]) throws {
        try p.value.zeroGrad()
        try (p.value * Tensor(g, shape: [g.count])).sum().backward()
    }

    func testGradScalerSkipsANonFiniteStepAndHalvesTheScale() throws {
        let p = try parameter([1, 2]), q = try parameter([3])
        let optimizer = try SGD([p, q], learningRate: 0.1)
        let scaler = try GradScaler()
        XCTAssertEqual(scaler.scale, 65536)
        try setGradient(p, [.infinity, 1])
        try setGradient(q, [1])
        XCTAssertFalse(try scaler.step(optimizer))
        XCTAssertTrue(scaler.lastStepSkipped)
        try scaler.update()
        XCTAssertEqual(scaler.scale, 32768)
        XCTAssertEqual(scaler.growthTracker, 0)
        XCTAssertEqual(try values(p.value), [1, 2], "a skipped step leaves the parameters alone")
        XCTAssertEqual(try values(q.value), [3])

        // NaN counts as non-finite too.
        try setGradient(p, [.nan, 0])
        try setGradient(q, [0])
        XCTAssertFalse(try scaler.step(optimizer))
        try scaler.update()
        XCTAssertEqual(scaler.scale, 16384)

        // A finite step: the gradients are divided by the scale before the optimizer uses them.
        try setGradient(p, [16384, 2 * 16384])
        try setGradient(q, [0])
        XCTAssertTrue(try scaler.step(optimizer))
        try scaler.update()
        assertClose(try values(p.value), [1 - 0.1 * 1, 2 - 0.1 * 2])
        XCTAssertEqual(scaler.growthTracker, 1)
        XCTAssertEqual(scaler.scale, 16384)
    }

    func testGradScalerGrowsAfterTheIntervalAndItsStateRoundTrips() throws {
        let p = try parameter([0])
        let optimizer = try SGD([p], learningRate: 0)
        let scaler = try GradScaler(initialScale: 8, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3)
        for step in 1...7 {
            try setGradient(p, [1])
            XCTAssertTrue(try scaler.step(optimizer))
            try scaler.update()
            // Growth after every 3rd consecutive finite step.
            XCTAssertEqual(scaler.scale, 8 * pow(2, Double(step / 3)), "step \(step)")
            XCTAssertEqual(scaler.growthTracker, step % 3)
        }
        let saved = scaler.state
        let data = try JSONEncoder().encode(saved)
        let restored = try GradScaler(initialScale: 8, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3)
        try restored.load(JSONDecoder().decode(GradScaler.State.self, from: data))
        XCTAssertEqual(restored.state, saved)
        XCTAssertEqual(restored.scale, 32)
        // The restored scaler continues exactly as the original would.
        for s in [scaler, restored] {
            try setGradient(p, [1])
            try s.step(optimizer)
            try s.update()
        }
        XCTAssertEqual(restored.state, scaler.state)
        XCTAssertEqual(scaler.scale, 32)
        XCTAssertEqual(scaler.growthTracker, 2)
        XCTAssertThrowsError(try restored.load(.init(scale: -1, growthTracker: 0)))
        XCTAssertThrowsError(try GradScaler(growthInterval: 0))
    }

    func testGradScalerUpdateWithoutStepIsAnError() throws {
        XCTAssertThrowsError(try GradScaler().update()) { XCTAssertTrue("\($0)".contains("without step"), "\($0)") }
    }

    func testChannelsLast3dKeepsValuesAndChangesLayout() throws {
        let x = try Tensor.randn([2, 3, 4, 5, 6])
        XCTAssertFalse(try x.isContiguous(memoryFormat: .channelsLast3d))
        let y = try x.contiguous(memoryFormat: .channelsLast3d)
        XCTAssertTrue(try y.isContiguous(memoryFormat: .channelsLast3d))
        XCTAssertEqual(y.shape, x.shape)
        XCTAssertEqual(try values(y), try values(x))
        XCTAssertThrowsError(try Tensor.randn([2, 3]).contiguous(memoryFormat: .channelsLast3d))

        let conv = try Conv3d(3, 4, kernelSize: 3, padding: 1)
        let reference = try conv(x)
        let weight = conv.weight
        try conv.convert(to: .channelsLast3d)
        XCTAssertTrue(weight === conv.weight, "the Parameter object optimizers hold is kept")
        XCTAssertTrue(try conv.weight.value.isContiguous(memoryFormat: .channelsLast3d))
        XCTAssertTrue(conv.weight.value.requiresGrad)
        assertClose(try values(conv(y)), try values(reference), tol: 1e-4)
    }

    func testBackendSwitches() throws {
        let before = Runtime.deterministic
        try Runtime.setDeterministic(true)
        XCTAssertTrue(Runtime.deterministic)
        try Runtime.setDeterministic(before)
        XCTAssertEqual(Runtime.deterministic, before)
        try Runtime.setTF32(false)
        try Runtime.setCuDNNBenchmark(false)
        XCTAssertFalse(Runtime.cuDNNBenchmark)
    }

    func testDeviceReport() throws {
        XCTAssertFalse(Runtime.cudaStatus.isEmpty)
        XCTAssertEqual(Runtime.precisions(on: .cpu).first, .float32)
        XCTAssertEqual(Runtime.precisions(on: .cpu).contains(.bfloat16), Runtime.cpuBFloat16Supported)
        XCTAssertTrue(Runtime.libtorchPath.contains("libtorch_cpu"), Runtime.libtorchPath)
        XCTAssertEqual(Runtime.cudaLoaded || Runtime.cudaDeviceCount == 0, true)
        let (live, peak) = try Runtime.memory(on: .cpu)
        XCTAssertGreaterThanOrEqual(peak, live)
    }

    /// Every CUDA request on a machine without CUDA is an error that says CUDA is missing and why.
    func testCUDARequestsWithoutCUDAFailWithAClearError() throws {
        try XCTSkipIf(Runtime.cudaAvailable, "this machine has CUDA")
        func assertNeedsCUDA(_ what: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body(), what) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("needs CUDA"), "\(what): \(message)")
                XCTAssertTrue(message.contains(Runtime.cudaStatus), "\(what) names the reason: \(message)")
            }
        }
        let x = try Tensor.ones([2])
        assertNeedsCUDA("to(cuda)") { _ = try x.to(.cuda(0)) }
        assertNeedsCUDA("zeros on cuda") { _ = try Tensor.zeros([2], device: .cuda(0)) }
        assertNeedsCUDA("pinMemory") { _ = try x.pinMemory() }
        assertNeedsCUDA("autocast") { try Autocast.run(device: .cuda(0), dtype: .float16) {} }
        assertNeedsCUDA("synchronize") { try Runtime.synchronize(.cuda(0)) }
        assertNeedsCUDA("memory") { _ = try Runtime.memory(on: .cuda(0)) }
        assertNeedsCUDA("device info") { _ = try Runtime.cudaDeviceInfo(0) }
        assertNeedsCUDA("TF32") { try Runtime.setTF32(true) }
        assertNeedsCUDA("cuDNN benchmark") { try Runtime.setCuDNNBenchmark(true) }
        XCTAssertFalse(x.isPinned)
        XCTAssertEqual(Runtime.precisions(on: .cuda(0)), [])
    }
}
