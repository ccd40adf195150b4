import Essentials
import Foundation
import XCTest
@testable import Datasets
import Volumes

/// Small configs so the tests stay fast in debug builds.
enum TestConfigs {
    static func small(modalities: Int = 2, size: Int = 32) -> PhantomConfig {
        var c = PhantomConfig()
        c.size = size
        c.modalities = modalities
        return c
    }
}

final class PhantomGeneratorTests: XCTestCase {
    func testDefaultsMatchTheSpec() {
        let c = PhantomConfig()
        XCTAssertEqual(c.shape, [64, 64, 32])
        XCTAssertEqual(c.spacing[0], 1.25, accuracy: 1e-12)
        XCTAssertEqual(c.spacing[1], 1.25, accuracy: 1e-12)
        XCTAssertEqual(c.spacing[2], 2.5, accuracy: 1e-12)
        XCTAssertNoThrow(try c.validate())
        // The grid is centred on the world origin.
        let centre = c.affine.apply(c.shape.map { Double($0 - 1) / 2 })
        for x in centre { XCTAssertEqual(x, 0, accuracy: 1e-9) }
        XCTAssertEqual(PhantomConfig().modalityList.map(\.channelName), ["bSSFP", "LGE"])
        var three = PhantomConfig(); three.modalities = 3
        XCTAssertEqual(three.modalityList.map(\.channelName), ["bSSFP", "LGE", "T2"])
    }

    func testSameSeedSameVoxelsDifferentSeedDifferent() {
        let config = TestConfigs.small(modalities: 3)
        let a = Phantom.generateCase(index: 2, seed: 7, config: config)
        let b = Phantom.generateCase(index: 2, seed: 7, config: config)
        XCTAssertEqual(a.name, "phantom_002")
        XCTAssertEqual(a.channelNames, ["bSSFP", "LGE", "T2"])
        XCTAssertEqual(a.label.voxels, b.label.voxels)
        for m in 0..<3 { XCTAssertEqual(a.channels[m].voxels, b.channels[m].voxels, "channel \(m)") }

        let c = Phantom.generateCase(index: 2, seed: 8, config: config)
        XCTAssertNotEqual(a.label.voxels, c.label.voxels)
        for m in 0..<3 { XCTAssertNotEqual(a.channels[m].voxels, c.channels[m].voxels) }
        // Different cases of one seed differ too.
        let d = Phantom.generateCase(index: 3, seed: 7, config: config)
        XCTAssertNotEqual(a.label.voxels, d.label.voxels)
    }

    func testAddingAModalityKeepsLabelsAndEarlierChannels() {
        let two = Phantom.generateCase(index: 1, seed: 11, config: TestConfigs.small(modalities: 2))
        let three = Phantom.generateCase(index: 1, seed: 11, config: TestConfigs.small(modalities: 3))
        XCTAssertEqual(two.label.voxels, three.label.voxels)
        XCTAssertEqual(two.channels[0].voxels, three.channels[0].voxels)
        XCTAssertEqual(two.channels[1].voxels, three.channels[1].voxels)
        XCTAssertEqual(three.channels.count, 3)
    }

    func testGeometryOfTheVolumes() {
        let c = Phantom.generateCase(index: 0, seed: 1, config: TestConfigs.small(modalities: 3))
        XCTAssertEqual(c.label.shape, [32, 32, 16])
        XCTAssertEqual(c.label.spacing, [2.5, 2.5, 5.0])
        for ch in c.channels {
            XCTAssertEqual(ch.shape, c.label.shape)
            XCTAssertEqual(ch.affine, c.label.affine)
            XCTAssertFalse(ch.voxels.contains { !$0.isFinite })
            XCTAssertGreaterThanOrEqual(ch.voxels.min()!, 0)       // magnitude images
        }
        XCTAssertTrue(Set(c.label.voxels).isSubset(of: [0, 1, 2, 3]))
    }

    func testAllClassesPresentWithPlausibleVolumes() {
        let config = TestConfigs.small()
        for i in 0..<6 {
            let c = Phantom.generateCase(index: i, seed: 3, config: config)
            var counts = [0, 0, 0, 0]
            for v in c.label.voxels { counts[Int(v)] += 1 }
            let ml = c.label.spacing.reduce(1, *) / 1000
            let lv = Double(counts[1]) * ml, myo = Double(counts[2]) * ml, rv = Double(counts[3]) * ml
            let total = Double(c.label.count) * ml
            // A heart scaled to an 80 mm field of view (about half an adult heart's size).
            XCTAssertTrue((5...60).contains(lv), "case \(i): LV \(lv) mL")
            XCTAssertTrue((4...60).contains(myo), "case \(i): Myo \(myo) mL")
            XCTAssertTrue((3...60).contains(rv), "case \(i): RV \(rv) mL")
            XCTAssertLessThan((lv + myo + rv) / total, 0.3, "case \(i): the heart must leave room for context")
            // Background is not uniform: channel 0 has varied intensities outside the heart.
            let bg = (0..<c.label.count).filter { c.label.voxels[$0] == 0 }.map { c.channels[0].voxels[$0] }
            let mean = bg.reduce(0, +) / Float(bg.count)
            let sd = (bg.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(bg.count)).squareRoot()
            XCTAssertGreaterThan(sd / mean, 0.3, "case \(i)")
        }
    }

    func testMyocardiumEnclosesTheLVBloodPool() {
        for (i, size) in [(0, 32), (1, 32), (2, 24), (3, 32)] {
            var config = TestConfigs.small(size: size)
            config.deformationMM = 5
            let c = Phantom.generateCase(index: i, seed: 99, config: config)
            let n = c.label.shape
            var checked = 0
            for k in 0..<n[2] {
                for j in 0..<n[1] {
                    for x in 0..<n[0] where c.label[x, j, k] == 1 {
                        XCTAssertTrue(x > 0 && j > 0 && k > 0 && x < n[0] - 1 && j < n[1] - 1 && k < n[2] - 1, "LV on the border")
                        for (a, b, d) in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)] {
                            let v = c.label[x + a, j + b, k + d]
                            XCTAssertTrue(v == 1 || v == 2, "LV voxel (\(x), \(j), \(k)) touches label \(v)")
                        }
                        checked += 1
                    }
                }
            }
            XCTAssertGreaterThan(checked, 0)
        }
    }

    func testRVWrapsOneSideOfTheLV() {
        // The RV touches the myocardium (the septum) and lies on one side of the LV.
        let c = Phantom.generateCase(index: 4, seed: 5, config: TestConfigs.small())
        let n = c.label.shape
        var rvTouchesMyo = false
        var lvCentre = [0.0, 0.0, 0.0], rvCentre = [0.0, 0.0, 0.0], nl = 0.0, nr = 0.0
        for k in 0..<n[2] {
            for j in 0..<n[1] {
                for i in 0..<n[0] {
                    let v = c.label[i, j, k]
                    if v == 1 { lvCentre[0] += Double(i); lvCentre[1] += Double(j); lvCentre[2] += Double(k); nl += 1 }
                    if v == 3 {
                        rvCentre[0] += Double(i); rvCentre[1] += Double(j); rvCentre[2] += Double(k); nr += 1
                        if i > 0, i < n[0] - 1, c.label[i - 1, j, k] == 2 || c.label[i + 1, j, k] == 2 { rvTouchesMyo = true }
                        if j > 0, j < n[1] - 1, c.label[i, j - 1, k] == 2 || c.label[i, j + 1, k] == 2 { rvTouchesMyo = true }
                    }
                }
            }
        }
        XCTAssertTrue(rvTouchesMyo)
        let sep = (0..<2).map { (rvCentre[$0] / nr - lvCentre[$0] / nl) * c.label.spacing[$0] }
        XCTAssertGreaterThan((sep[0] * sep[0] + sep[1] * sep[1]).squareRoot(), 5, "RV centroid must be off to one side of the LV")
    }

    func testConfigDecodingAcceptsSubsetsAndRejectsUnknownKeys() throws {
        let partial = try JSONDecoder().decode(PhantomConfig.self, from: Data(#"{"size": 48, "misalignMM": 3}"#.utf8))
        XCTAssertEqual(partial.size, 48)
        XCTAssertEqual(partial.misalignMM, 3)
        XCTAssertEqual(partial.snr, PhantomConfig().snr)
        XCTAssertThrowsError(try JSONDecoder().decode(PhantomConfig.self, from: Data(#"{"sise": 48}"#.utf8))) { e in
            XCTAssertTrue("\(e)".contains("sise"))
        }
        var c = PhantomConfig(); c.modalities = 3; c.inPlaneSpacingMM = 1.5
        let back = try JSONDecoder().decode(PhantomConfig.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(back, c)
        var bad = PhantomConfig(); bad.modalities = 4
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("modalities")) }
        bad = PhantomConfig(); bad.contrastOverlap = 1.5
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("contrastOverlap")) }
    }

    func testGeneratorStreamsAreStable() {
        // Pin the generator so an accidental change of the random streams is noticed (bump
        // Phantom.generatorVersion when it is deliberate).
        var g = SeededGenerator(seed: 42, stream: [0, 0])
        let first = (0..<3).map { _ in g.next() }
        var h = SeededGenerator(seed: 42, stream: [0, 0])
        XCTAssertEqual(first, (0..<3).map { _ in h.next() })
        var other = SeededGenerator(seed: 42, stream: [0, 1])
        XCTAssertNotEqual(first[0], other.next())
        var swapped = SeededGenerator(seed: 42, stream: [1, 0])
        var straight = SeededGenerator(seed: 42, stream: [0, 1])
        XCTAssertNotEqual(swapped.next(), straight.next())
        // Uniform and bounded draws stay in range.
        var r = SeededGenerator(seed: 1, stream: [])
        for _ in 0..<1000 {
            let u = r.unit(); XCTAssertTrue(u >= 0 && u < 1)
            let b = r.below(7); XCTAssertTrue((0..<7).contains(b))
        }
    }
}

final class PhantomMisalignmentTests: XCTestCase {
    func testMotionMovesPointsByTheRequestedAmount() {
        // Pure translation: every point moves by exactly the translation.
        let t = RigidTransform(axis: [0, 0, 1], angleDegrees: 0, translationMM: [3, -4, 0])
        for p in [[0.0, 0, 0], [10, -5, 7], [1, 2, 3]] {
            let q = t.apply(p, centre: [1, 2, 3])
            let d = (0..<3).map { q[$0] - p[$0] }
            XCTAssertEqual((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).squareRoot(), 5, accuracy: 1e-6)
        }
        // Rotation about the centre: the centre moves by the translation only; a point at
        // distance r from the axis moves along a chord 2 r sin(angle / 2).
        let r = RigidTransform(axis: [0, 0, 1], angleDegrees: 30, translationMM: [0, 0, 2])
        let centre = [5.0, 5, 5]
        let c = r.apply([5, 5, 5], centre: centre)
        XCTAssertEqual(c[0], 5, accuracy: 1e-9); XCTAssertEqual(c[1], 5, accuracy: 1e-9); XCTAssertEqual(c[2], 7, accuracy: 1e-9)
        let p = r.apply([15, 5, 5], centre: centre)
        let chord = ((p[0] - 15) * (p[0] - 15) + (p[1] - 5) * (p[1] - 5)).squareRoot()
        XCTAssertEqual(chord, 2 * 10 * sin(15 * Double.pi / 180), accuracy: 1e-6)
        XCTAssertEqual(r.angleDegrees, 30, accuracy: 1e-9)
        // Inverse undoes the motion; the world affine agrees with apply.
        let back = r.inverseWorldMatrix(centre: centre).apply(p)
        XCTAssertEqual(back[0], 15, accuracy: 1e-9); XCTAssertEqual(back[1], 5, accuracy: 1e-9); XCTAssertEqual(back[2], 5, accuracy: 1e-9)
        let viaAffine = r.worldMatrix(centre: centre).apply([15, 5, 5])
        for i in 0..<3 { XCTAssertEqual(viaAffine[i], p[i], accuracy: 1e-9) }
    }

    func testRandomMotionsRespectTheLimits() {
        var rng = SeededGenerator(seed: 5, stream: [])
        var longest = 0.0, widest = 0.0
        for _ in 0..<500 {
            let m = RigidTransform.random(maxTranslationMM: 4, maxRotationDegrees: 6, rng: &rng)
            XCTAssertLessThanOrEqual(m.translationLength, 4 + 1e-12)
            XCTAssertLessThanOrEqual(m.angleDegrees, 6 + 1e-6)
            longest = max(longest, m.translationLength); widest = max(widest, m.angleDegrees)
            // R is orthonormal.
            let R = m.rotationMatrix
            for a in 0..<3 {
                for b in 0..<3 {
                    let dot = R[a * 3] * R[b * 3] + R[a * 3 + 1] * R[b * 3 + 1] + R[a * 3 + 2] * R[b * 3 + 2]
                    XCTAssertEqual(dot, a == b ? 1 : 0, accuracy: 1e-12)
                }
            }
        }
        XCTAssertGreaterThan(longest, 3.5)
        XCTAssertGreaterThan(widest, 5.5)
    }

    func testTrilinearResamplingShiftsContentByTheMotion() throws {
        // A smooth ramp volume moved by exactly one voxel along x (2 mm): interior voxels take
        // their left neighbour's value; a half-voxel shift gives the average of two neighbours.
        let shape = [8, 6, 5], spacing = [2.0, 3.0, 4.0]
        var voxels = [Float](repeating: 0, count: 8 * 6 * 5)
        for k in 0..<5 { for j in 0..<6 { for i in 0..<8 { voxels[i + 8 * (j + 6 * k)] = Float(i * i + 3 * j + 7 * k) } } }
        let v = Volume(shape: shape, voxels: voxels, spacing: spacing, affine: .scaling(spacing, origin: [-3, 4, 10]))
        let moved = try v.applying(RigidTransform(translationMM: [2, 0, 0]), interpolation: .linear, border: .edge)
        for k in 0..<5 { for j in 0..<6 { for i in 1..<8 { XCTAssertEqual(moved[i, j, k], v[i - 1, j, k], accuracy: 1e-4) } } }
        let half = try v.applying(RigidTransform(translationMM: [0, 1.5, 0]), interpolation: .linear, border: .edge)
        for k in 0..<5 { for j in 1..<6 { for i in 0..<8 { XCTAssertEqual(half[i, j, k], (v[i, j, k] + v[i, j - 1, k]) / 2, accuracy: 1e-4) } } }
        // Identity leaves the volume untouched.
        XCTAssertEqual(try v.applying(.identity, interpolation: .linear, border: .edge).voxels, v.voxels)
        // Edge replication: content entering from outside repeats the border voxel.
        for k in 0..<5 { for j in 0..<6 { XCTAssertEqual(moved[0, j, k], v[0, j, k], accuracy: 1e-4) } }
    }

    func testMisalignedChannelsMoveAndLabelsStayInTheReferenceGrid() {
        var config = TestConfigs.small(modalities: 3)
        let aligned = Phantom.generateCase(index: 0, seed: 21, config: config)
        XCTAssertEqual(aligned.motions.compactMap { $0 }.count, 0)
        config.misalignMM = 5
        config.misalignDegrees = 8
        let moved = Phantom.generateCase(index: 0, seed: 21, config: config)
        XCTAssertNil(moved.motions[0])
        XCTAssertEqual(moved.label.voxels, aligned.label.voxels)
        XCTAssertEqual(moved.channels[0].voxels, aligned.channels[0].voxels)
        for m in 1..<3 {
            let motion = try! XCTUnwrap(moved.motions[m])
            XCTAssertLessThanOrEqual(motion.translationLength, 5 + 1e-9)
            XCTAssertLessThanOrEqual(motion.angleDegrees, 8 + 1e-6)
            XCTAssertNotEqual(moved.channels[m].voxels, aligned.channels[m].voxels)
        }
        XCTAssertNotEqual(moved.motions[1], moved.motions[2])
    }

    func testMisalignedChannelIsTheAlignedOneMovedByTheRecordedMotion() throws {
        // Without noise and bias, the generated misaligned LGE channel equals the aligned LGE
        // channel resampled under the recorded motion.
        var config = TestConfigs.small()
        config.snr = 1e9; config.biasStrength = 0
        let aligned = Phantom.generateCase(index: 1, seed: 4, config: config)
        config.misalignMM = 6; config.misalignDegrees = 10
        let moved = Phantom.generateCase(index: 1, seed: 4, config: config)
        let motion = try XCTUnwrap(moved.motions[1])
        let expected = try aligned.channels[1].applying(motion, interpolation: .linear, border: .edge)
        let scale = aligned.channels[1].voxels.max()!
        var worst: Float = 0
        for i in 0..<expected.count { worst = max(worst, abs(expected.voxels[i] - moved.channels[1].voxels[i])) }
        XCTAssertLessThan(worst, 1e-4 * scale)
        // And the motion is not negligible: the images differ.
        var diff: Float = 0
        for i in 0..<expected.count { diff = max(diff, abs(aligned.channels[1].voxels[i] - moved.channels[1].voxels[i])) }
        XCTAssertGreaterThan(diff, 0.1 * scale)
    }
}

final class PhantomHardnessTests: XCTestCase {
    func testEachModalityAloneLeavesABoundaryWeakAndFusionHelps() {
        let stats = PhantomStatistics.measure(seed: 2024, cases: 6, config: TestConfigs.small(modalities: 3))
        print(stats.markdown)
        XCTAssertEqual(stats.channels.map(\.channel), ["bSSFP", "LGE", "T2"])
        let weakPairs: [PhantomStatistics.Pair] = [.lvMyo, .myoBackground]
        for (m, entry) in stats.channels.enumerated() {
            // Each modality has a class pair whose intensities overlap substantially ...
            let worst = weakPairs.max { stats.overlap(channel: m, $0) < stats.overlap(channel: m, $1) }!
            XCTAssertGreaterThan(stats.overlap(channel: m, worst), 0.3, "\(entry.channel)")
            // ... and the fused channels separate that pair better than this channel alone.
            XCTAssertGreaterThan(stats.fusedAccuracy(worst), stats.accuracy(channel: m, worst) + 0.01, "\(entry.channel) \(worst)")
        }
        // On both boundaries, fusion beats every single channel.
        for pair in weakPairs {
            let best = (0..<3).map { stats.accuracy(channel: $0, pair) }.max()!
            XCTAssertGreaterThan(stats.fusedAccuracy(pair), best + 0.01, "\(pair)")
        }
        // The designed weak boundaries: bSSFP epicardium, LGE endocardium.
        XCTAssertGreaterThan(stats.overlap(channel: 0, .myoBackground), 0.5)
        XCTAssertGreaterThan(stats.overlap(channel: 1, .lvMyo), 0.4)
        XCTAssertLessThan(stats.overlap(channel: 0, .lvMyo), stats.overlap(channel: 1, .lvMyo))
        // LV and RV blood look alike everywhere: only shape tells them apart.
        for m in 0..<3 { XCTAssertGreaterThan(stats.overlap(channel: m, .lvRV), 0.8) }
        // No intensity-only classifier solves the epicardial boundary.
        XCTAssertLessThan(stats.fusedAccuracy(.myoBackground), 0.9)
    }

    func testStatisticsRoundTripAsJSON() throws {
        let stats = PhantomStatistics.measure(seed: 1, cases: 2, config: TestConfigs.small(size: 24))
        let back = try JSONDecoder().decode(PhantomStatistics.self, from: JSONEncoder().encode(stats))
        XCTAssertEqual(back, stats)
        XCTAssertTrue(stats.markdown.contains("| fused |"))
    }
}
