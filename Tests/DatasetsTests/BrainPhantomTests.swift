import Foundation
import XCTest
@testable import Datasets
import Volumes

/// The brain family: layout, determinism, anatomy (lesions in white matter, ventricles central)
/// and the contrast each channel gives the small-lesion class.
final class BrainPhantomTests: XCTestCase {
    func brain(size: Int = 32, modalities: Int = 2) -> PhantomConfig {
        var c = PhantomConfig()
        c.family = .brain
        c.size = size
        c.modalities = modalities
        return c
    }

    func testNamesGridAndDeterminism() throws {
        let c = brain(modalities: 3)
        XCTAssertEqual(c.channelNames, ["T1", "FLAIR", "T2"])
        XCTAssertEqual(c.labelNames, ["background", "ventricles", "WM", "lesion"])
        XCTAssertEqual(c.spacing[0], 6, accuracy: 1e-12)   // 192 mm over 32 voxels
        let a = Phantom.generateCase(index: 3, seed: 5, config: c), b = Phantom.generateCase(index: 3, seed: 5, config: c)
        XCTAssertEqual(a.label.voxels, b.label.voxels)
        for m in 0..<3 { XCTAssertEqual(a.channels[m].voxels, b.channels[m].voxels) }
        XCTAssertNotEqual(Phantom.generateCase(index: 4, seed: 5, config: c).label.voxels, a.label.voxels)
        // Unknown family names are refused when decoding.
        XCTAssertThrowsError(try JSONDecoder().decode(PhantomConfig.self, from: Data(#"{"family": "knee"}"#.utf8)))
        var bad = c; bad.lesionCount = [3, 1]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("lesionCount")) }
    }

    /// Every class appears over a few cases; lesions are small (a few per cent of white matter at
    /// most) and never touch a ventricle voxel; ventricles sit near the centre of the grid.
    func testAnatomyHasSmallLesionsInWhiteMatterAndCentralVentricles() {
        let c = brain(size: 40)   // 40 x 40 x 20 voxels of 4.8 x 4.8 x 9.6 mm
        var lesionVoxels = 0, whiteVoxels = 0, casesWithLesions = 0
        for index in 0..<6 {
            let k = Phantom.generateCase(index: index, seed: 1, config: c)
            let labels = k.label.voxels.map { Int($0) }
            let counts = (0..<4).map { cls in labels.filter { $0 == cls }.count }
            XCTAssertGreaterThan(counts[1], 20, "case \(index): ventricles")
            XCTAssertGreaterThan(counts[2], 500, "case \(index): white matter")
            lesionVoxels += counts[3]; whiteVoxels += counts[2]
            if counts[3] > 0 { casesWithLesions += 1; XCTAssertTrue(k.hasScar) }
            // Ventricle voxels: centroid within 15 % of the field of view from the grid centre.
            let (nx, ny) = (c.shape[0], c.shape[1])
            var sx = 0.0, sy = 0.0, n = 0.0
            for (i, l) in labels.enumerated() where l == 1 { sx += Double(i % nx); sy += Double((i / nx) % ny); n += 1 }
            XCTAssertLessThan(abs(sx / n - Double(nx - 1) / 2), 0.15 * Double(nx))
            XCTAssertLessThan(abs(sy / n - Double(ny - 1) / 2), 0.15 * Double(ny))
        }
        XCTAssertGreaterThanOrEqual(casesWithLesions, 5)
        XCTAssertGreaterThan(lesionVoxels, 0)
        XCTAssertLessThan(Double(lesionVoxels) / Double(whiteVoxels), 0.05, "lesions are a small structure")
    }

    /// What makes the lesion class need both channels: in T1 lesions are dark like grey matter,
    /// in FLAIR bright (pulled towards grey matter by contrastOverlap); mean intensities in the
    /// noise-free contrast tables, before blur and noise.
    func testLesionContrastIsComplementary() {
        let t1 = PhantomContrast.brain(channel: 0, overlap: 0.5).means, flair = PhantomContrast.brain(channel: 1, overlap: 0.5).means
        func m(_ table: [Double], _ t: BrainTissue) -> Double { table[Int(t.rawValue)] }
        XCTAssertLessThan(m(t1, .lesion), m(t1, .white))
        XCTAssertLessThan(abs(m(t1, .lesion) - m(t1, .grey)), abs(m(t1, .lesion) - m(t1, .white)))
        XCTAssertGreaterThan(m(flair, .lesion), m(flair, .grey))
        XCTAssertGreaterThan(m(flair, .lesion), m(flair, .white))
        XCTAssertLessThan(m(flair, .ventricle), 0.1, "FLAIR nulls CSF")
    }

    func testDatasetFolderNamesTheFamily() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("concord-brain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try Phantom.writeDataset(to: root, cases: 2, unlabeledCases: 1, seed: 0, config: brain(size: 24))
        let description = try DatasetDescription.load(from: root.appendingPathComponent("dataset.json"))
        XCTAssertEqual(description.channelNames, ["0": "T1", "1": "FLAIR"])
        XCTAssertEqual(description.labels["lesion"], .value(3))
        let record = try JSONDecoder().decode(PhantomDatasetRecord.self, from: Data(contentsOf: root.appendingPathComponent("phantom.json")))
        XCTAssertEqual(record.config.family, .brain)
    }
}
