import XCTest
@testable import Segmentation
@testable import Torch

/// Every semi-supervised term must train what it claims to train (the public CMC code computed its
/// unlabelled losses under no_grad, so they trained nothing).
final class GradientFlowTests: XCTestCase {
    let tiny = UNetConfig(widths: [4, 8, 16])

    func gradientNorm(_ module: Module) throws -> Double {
        try module.parameters().compactMap { try $0.grad }.reduce(0) { $0 + (try $1.abs().sum().item()) }
    }

    func unlabeledInputs(_ n: Int = 2) throws -> [Tensor?] {
        [try Tensor.randn([n, 1, 16, 16, 16]), try Tensor.randn([n, 1, 16, 16, 16])]
    }

    func testCACReachesBothEncodersAndDecoders() throws {
        try Runtime.manualSeed(1)
        let net = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 4, unet: tiny))
        let out = try net(unlabeledInputs())
        try ContrastiveAnatomicalConsistencyLoss()(out.logits.map { $0! }).backward()
        for m in 0..<2 {
            XCTAssertGreaterThan(try gradientNorm(net.encoders[m]), 0, "encoder \(m)")
            XCTAssertGreaterThan(try gradientNorm(net.decoders[m]), 0, "decoder \(m)")
        }
        XCTAssertGreaterThan(try gradientNorm(net.fusion), 0, "fusion")
    }

    func testCSCReachesBothEncoders() throws {
        try Runtime.manualSeed(2)
        let net = try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 4, unet: tiny))
        let out = try net(unlabeledInputs())
        try ChannelSemanticConsistencyLoss()(out.bottlenecks.map { $0! }).backward()
        for m in 0..<2 {
            XCTAssertGreaterThan(try gradientNorm(net.encoders[m]), 0, "encoder \(m)")
            // CSC is defined on the encoder bottlenecks: by construction it does not touch decoders.
            XCTAssertEqual(try gradientNorm(net.decoders[m]), 0, "decoder \(m)")
        }
    }

    func testCMCUnlabeledTermsTrainEverythingThroughTheMethod() throws {
        try Runtime.manualSeed(3)
        let method = CMCMethod(network: try CMCNetwork(config: CMCConfig(modalities: 2, numClasses: 4, unet: tiny)), modalityNames: ["a", "b"])
        let labeled = try unlabeledInputs(1).map { $0! }
        let labels = try Tensor.randint(0, 4, shape: [1, 16, 16, 16])
        let batch = TrainingBatch(labeledImages: labeled, labels: [labels, labels], unlabeledImages: try unlabeledInputs(2).map { $0! })
        let terms = try method.losses(batch, progress: TrainingProgress(step: 100, totalSteps: 100))
        XCTAssertEqual(terms.terms.map(\.name), ["sup", "csc", "cac"])
        // Only the unlabelled terms: backpropagate csc + cac alone.
        let unlabeledOnly = try terms.terms[1].value + terms.terms[2].value
        try unlabeledOnly.backward()
        for m in 0..<2 {
            XCTAssertGreaterThan(try gradientNorm(method.network.encoders[m]), 0)
            XCTAssertGreaterThan(try gradientNorm(method.network.decoders[m]), 0)
        }
    }

    func testASCReachesBothSemiCMLNetworks() throws {
        try Runtime.manualSeed(4)
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny)
        let x = try unlabeledInputs(3)
        let la = try method.ensemble.networks[0](x[0]!), lb = try method.ensemble.networks[1](x[1]!)
        try method.asc(la, lb).backward()
        XCTAssertGreaterThan(try gradientNorm(method.ensemble.networks[0]), 0)
        XCTAssertGreaterThan(try gradientNorm(method.ensemble.networks[1]), 0)
    }

    func testMeanTeacherTeacherGetsNoGradients() throws {
        try Runtime.manualSeed(5)
        let method = try MeanTeacherMethod(inputModalities: [0, 1], modalityNames: ["a", "b"], numClasses: 3, unet: tiny)
        let images = try unlabeledInputs(1).map { $0! }
        let batch = TrainingBatch(labeledImages: images, labels: [try Tensor.randint(0, 3, shape: [1, 16, 16, 16])].repeated(2),
                                  unlabeledImages: try unlabeledInputs(1).map { $0! })
        let terms = try method.losses(batch, progress: TrainingProgress(step: 50, totalSteps: 50))
        try terms.total.backward()
        XCTAssertGreaterThan(try gradientNorm(method.pair.student), 0)
        XCTAssertEqual(try gradientNorm(method.pair.teacher), 0)
        XCTAssertTrue(try method.pair.teacher.parameters().allSatisfy { try $0.grad == nil })
        // The consistency term alone reaches the student.
        try method.pair.student.zeroGrad()
        try method.losses(batch, progress: TrainingProgress(step: 50, totalSteps: 50)).terms[1].value.backward()
        XCTAssertGreaterThan(try gradientNorm(method.pair.student), 0)
    }

    func testCPSCrossTermReachesBothNetworks() throws {
        try Runtime.manualSeed(7)
        let method = try CrossPseudoSupervisionMethod(inputModalities: [0, 1], modalityNames: ["a", "b"], numClasses: 3, unet: tiny)
        let images = try unlabeledInputs(1).map { $0! }
        let batch = TrainingBatch(labeledImages: images, labels: [try Tensor.randint(0, 3, shape: [1, 16, 16, 16])].repeated(2),
                                  unlabeledImages: try unlabeledInputs(2).map { $0! })
        let terms = try method.losses(batch, progress: TrainingProgress(step: 10, totalSteps: 10))
        XCTAssertEqual(terms.terms.map(\.name), ["sup", "cps"])
        try terms.terms[1].value.backward()
        XCTAssertGreaterThan(try gradientNorm(method.pair.networks[0]), 0)
        XCTAssertGreaterThan(try gradientNorm(method.pair.networks[1]), 0)
    }

    func testPReLTrainsOnlyTheStudent() throws {
        try Runtime.manualSeed(6)
        let method = try SemiCMLMethod(modalityNames: ["a", "b"], numClasses: 2, unet: tiny)
        let teacherState = Dictionary(try method.ensemble.networks[0].stateDict(), uniquingKeysWith: { a, _ in a })
        try method.startPReL(teacher: 0, student: 1, teacherState: teacherState)
        let images = try unlabeledInputs(2).map { $0! }
        let batch = TrainingBatch(labeledImages: images, labels: [try Tensor.randint(0, 2, shape: [2, 16, 16, 16])].repeated(2),
                                  unlabeledImages: try unlabeledInputs(2).map { $0! })
        let terms = try method.losses(batch, progress: TrainingProgress(step: 0, totalSteps: 10))
        XCTAssertEqual(terms.terms.map(\.name), ["sup_b", "pseudo_ce_dice", "pseudo_asc"])
        try (terms.terms[1].value + terms.terms[2].value).backward()
        XCTAssertGreaterThan(try gradientNorm(method.ensemble.networks[1]), 0)
        XCTAssertEqual(try gradientNorm(method.ensemble.networks[0]), 0)
        XCTAssertEqual(method.trainableParameters.count, method.ensemble.networks[1].parameters().count)
    }
}

extension Array {
    func repeated(_ n: Int) -> [Element] { (0..<n).flatMap { _ in self } }
}
