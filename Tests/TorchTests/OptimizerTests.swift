import XCTest
@testable import Torch

/// Optimizers on f(p) = 0.5 * sum(a * p^2), whose gradient is a * p, against scalar recurrences
/// written out here.
final class OptimizerTests: XCTestCase {
    let a: [Double] = [1, 4]
    let p0: [Double] = [1, -2]

    func quadraticStep(_ p: Parameter, _ optimizer: Optimizer) throws {
        try optimizer.zeroGrad()
        try (Tensor(a, shape: [2]) * p.value.square() * 0.5).sum().backward()
        try optimizer.step()
    }

    func testSGDClosedForm() throws {
        let p = try Parameter(Tensor(p0, shape: [2]))
        let sgd = try SGD([p], learningRate: 0.1)
        for _ in 0..<5 { try quadraticStep(p, sgd) }
        // p_k = p0 * (1 - lr a)^k
        let expected = zip(p0, a).map { $0 * pow(1 - 0.1 * $1, 5) }
        for (x, y) in zip(try p.value.toArray(Double.self), expected) { XCTAssertEqual(x, y, accuracy: 1e-12) }
    }

    func testSGDMomentumNesterovWeightDecay() throws {
        let lr = 0.05, mu = 0.9, wd = 0.01
        for nesterov in [false, true] {
            let p = try Parameter(Tensor(p0, shape: [2]))
            let sgd = try SGD([p], learningRate: lr, momentum: mu, weightDecay: wd, nesterov: nesterov)
            var ref = p0, buf: [Double]? = nil
            for _ in 0..<4 {
                try quadraticStep(p, sgd)
                let g = zip(ref, a).map { $0 * $1 + wd * $0 }
                buf = buf.map { b in zip(b, g).map { mu * $0 + $1 } } ?? g
                let d = nesterov ? zip(g, buf!).map { $0 + mu * $1 } : buf!
                ref = zip(ref, d).map { $0 - lr * $1 }
            }
            for (x, y) in zip(try p.value.toArray(Double.self), ref) { XCTAssertEqual(x, y, accuracy: 1e-12, "nesterov \(nesterov)") }
        }
    }

    func testAdamFirstStepClosedFormAndRecurrence() throws {
        let lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8
        let p = try Parameter(Tensor(p0, shape: [2]))
        let adam = Adam([p], learningRate: lr)
        try quadraticStep(p, adam)
        // First step: m^ = g, v^ = g^2, so p1 = p0 - lr * g / (|g| + eps).
        let g0 = zip(p0, a).map { $0 * $1 }
        let first = zip(p0, g0).map { $0 - lr * $1 / (abs($1) + eps) }
        for (x, y) in zip(try p.value.toArray(Double.self), first) { XCTAssertEqual(x, y, accuracy: 1e-12) }
        var ref = first, m = g0.map { (1 - b1) * $0 }, v = g0.map { (1 - b2) * $0 * $0 }
        for t in 2...6 {
            try quadraticStep(p, adam)
            let g = zip(ref, a).map { $0 * $1 }
            m = zip(m, g).map { b1 * $0 + (1 - b1) * $1 }
            v = zip(v, g).map { b2 * $0 + (1 - b2) * $1 * $1 }
            let c1 = 1 - pow(b1, Double(t)), c2 = 1 - pow(b2, Double(t))
            ref = (0..<2).map { ref[$0] - lr / c1 * m[$0] / (v[$0].squareRoot() / c2.squareRoot() + eps) }
        }
        for (x, y) in zip(try p.value.toArray(Double.self), ref) { XCTAssertEqual(x, y, accuracy: 1e-12) }
        XCTAssertEqual(adam.stepCount, 6)
    }

    func testAdamWDecoupledDecayAndStateRoundTrip() throws {
        let p = try Parameter(Tensor(p0, shape: [2]))
        let opt = Adam.adamW([p], learningRate: 0.1, weightDecay: 0.5)
        try quadraticStep(p, opt)
        let g0 = zip(p0, a).map { $0 * $1 }
        let expected = zip(p0, g0).map { $0 * (1 - 0.1 * 0.5) - 0.1 * $1 / (abs($1) + 1e-8) }
        for (x, y) in zip(try p.value.toArray(Double.self), expected) { XCTAssertEqual(x, y, accuracy: 1e-12) }
        // Saving and loading the state continues identically.
        let state = Dictionary(try opt.stateTensors(), uniquingKeysWith: { a, _ in a })
        let q = try Parameter(p.value.detached().clone())
        let resumed = Adam.adamW([q], learningRate: 0.1, weightDecay: 0.5)
        try resumed.loadState(state)
        try quadraticStep(p, opt)
        try quadraticStep(q, resumed)
        XCTAssertEqual(try p.value.toArray(Double.self), try q.value.toArray(Double.self))
    }

    func testFrozenParametersAreSkipped() throws {
        let p = try Parameter(Tensor(p0, shape: [2]), frozen: true)
        XCTAssertFalse(p.value.requiresGrad)
        let sgd = try SGD([p], learningRate: 0.1)
        try sgd.step()
        XCTAssertEqual(try p.value.toArray(Double.self), p0)
    }

    func testClipGradNorm() throws {
        let p = try Parameter(Tensor([3, 4] as [Float], shape: [2]))
        try (p.value * p.value * 0.5).sum().backward()  // grad = p, norm 5
        let norm = try clipGradNorm([p], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        assertClose(try values(XCTUnwrap(p.grad)), [0.6, 0.8], tol: 1e-5)
    }

    func testSchedules() {
        let poly = PolyLR(base: 0.01, totalSteps: 100, power: 0.9)
        XCTAssertEqual(poly.rate(at: 0), 0.01)
        XCTAssertEqual(poly.rate(at: 50), 0.01 * pow(0.5, 0.9), accuracy: 1e-15)
        XCTAssertEqual(poly.rate(at: 100), 0)
        let cosine = WarmupCosineLR(base: 1, warmupSteps: 10, totalSteps: 110, minimum: 0.1)
        XCTAssertEqual(cosine.rate(at: 0), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 9), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 60), 0.55, accuracy: 1e-12)   // halfway: min + (base-min)/2
        XCTAssertEqual(cosine.rate(at: 110), 0.1, accuracy: 1e-12)
    }

    func testEMAMatchesFormula() throws {
        let student = try Linear(inFeatures: 2, outFeatures: 1)
        let teacher = try Linear(inFeatures: 2, outFeatures: 1)
        let ema = ExponentialMovingAverage(decay: 0.99)
        XCTAssertEqual(ema.effectiveDecay(step: 0), 0)
        XCTAssertEqual(ema.effectiveDecay(step: 9), 0.9, accuracy: 1e-12)
        XCTAssertEqual(ema.effectiveDecay(step: 1000), 0.99)
        let t0 = try teacher.weight.value.toArray(Double.self), s0 = try student.weight.value.toArray(Double.self)
        try ema.update(teacher: teacher, student: student, step: 9)
        let expected = zip(t0, s0).map { 0.9 * $0 + 0.1 * $1 }
        for (x, y) in zip(try teacher.weight.value.toArray(Double.self), expected) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        // Step 0: the teacher becomes the student.
        try ema.update(teacher: teacher, student: student, step: 0)
        XCTAssertEqual(try teacher.bias!.value.toArray(Float.self), try student.bias!.value.toArray(Float.self))
    }
}
