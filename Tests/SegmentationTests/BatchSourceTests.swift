import Foundation
import XCTest
@testable import Segmentation
@testable import Torch

/// Unpaired batches: one case per modality per batch element, each modality drawn only from the
/// cases that have it.
final class BatchSourceTests: XCTestCase {
    /// A one-modality case of a two-channel unpaired dataset: the absent channel is zeros.
    func singleModality(_ name: String, modality: Int, seed: UInt64, labeled: Bool) throws -> PreparedCase {
        let full = try syntheticCase(name, size: 16, seed: seed, labeled: labeled)
        let kept = try full.images.narrow(dim: 0, start: modality, length: 1)
        let zeros = try Tensor.zeros(kept.shape)
        let images = try Tensor.cat(modality == 0 ? [kept, zeros] : [zeros, kept], dim: 0)
        return PreparedCase(name: name, images: images, label: full.label, present: modality == 0 ? [true, false] : [false, true])
    }

    func testUnpairedModalityWithoutUnlabelledCasesUsesItsLabelledImages() throws {
        // A CT cohort with an unlabelled scan and a fully labelled MR cohort (the real-data test's
        // setting): the MR half of each unlabelled batch element comes from the labelled MR case.
        let ct = try singleModality("ct", modality: 0, seed: 1, labeled: true)
        let mr = try singleModality("mr", modality: 1, seed: 2, labeled: true)
        let ctUnlabelled = try singleModality("ct_u", modality: 0, seed: 3, labeled: false)
        let augmentation = Augmentation.none
        let source = try BatchSource(labeled: [ct, mr], unlabeled: [ctUnlabelled], labeledBatch: 2, unlabeledBatch: 2, paired: false,
                                     sampler: PatchSampler(patch: [16, 16, 16]), augmentation: augmentation, seed: 0)
        let batch = try source.batch(iteration: 0)
        XCTAssertEqual(batch.unlabeledImages.count, 2)
        XCTAssertEqual(batch.unlabeledImages[0].shape, [2, 1, 16, 16, 16])
        // Modality 0: the unlabelled CT case; modality 1: the labelled MR case's image (its label unused).
        let ctImage = try ctUnlabelled.images.narrow(dim: 0, start: 0, length: 1)
        let mrImage = try mr.images.narrow(dim: 0, start: 1, length: 1)
        for b in 0..<2 {
            XCTAssertEqual(try batch.unlabeledImages[0].narrow(dim: 0, start: b, length: 1).toArray(Float.self), try ctImage.toArray(Float.self))
            XCTAssertEqual(try batch.unlabeledImages[1].narrow(dim: 0, start: b, length: 1).toArray(Float.self), try mrImage.toArray(Float.self))
        }
        // Labelled batches draw each modality from its own labelled cases, with their labels.
        XCTAssertEqual(batch.labels.count, 2)
        XCTAssertEqual(try batch.labels[1].narrow(dim: 0, start: 0, length: 1).toArray(Int64.self), try XCTUnwrap(mr.label).toArray(Int64.self))
    }

    func testUnpairedModalityWithoutAnyCaseIsAnError() throws {
        let ct = try singleModality("ct", modality: 0, seed: 1, labeled: true)
        XCTAssertThrowsError(try BatchSource(labeled: [ct], unlabeled: [], labeledBatch: 1, unlabeledBatch: 0, paired: false,
                                             sampler: PatchSampler(patch: [16, 16, 16]), augmentation: Augmentation(), seed: 0)) {
            XCTAssertTrue("\($0)".contains("no labelled case has modality 1"), "\($0)")
        }
    }
}
