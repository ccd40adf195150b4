import Essentials
import Foundation
import XCTest

final class SeededGeneratorTests: XCTestCase {
    func testStreamsAreKeyedAndReproducible() {
        var a = SeededGenerator(seed: 7, stream: [1, 2]), b = SeededGenerator(seed: 7, stream: [1, 2])
        let first = (0..<16).map { _ in a.next() }
        XCTAssertEqual(first, (0..<16).map { _ in b.next() })
        var swapped = SeededGenerator(seed: 7, stream: [2, 1]), otherSeed = SeededGenerator(seed: 8, stream: [1, 2])
        XCTAssertNotEqual(first, (0..<16).map { _ in swapped.next() })
        XCTAssertNotEqual(first, (0..<16).map { _ in otherSeed.next() })
        // The variadic and array forms name the same stream.
        var v = SeededGenerator(seed: 7, stream: 1, 2)
        XCTAssertEqual(first, (0..<16).map { _ in v.next() })
    }

    func testKeyNamesAreTheirBytes() {
        XCTAssertEqual(SeededGenerator.key("BATCH"), 0x42_4154_4348)
        XCTAssertEqual(SeededGenerator.key("SPLITS"), 0x5350_4C49_5453)
    }

    /// below(n) is unbiased: with n = 3 * 2^61 a `next() % n` draw would land in the lowest third of
    /// 0..<n with probability 3/8; an unbiased draw keeps it at 1/3.
    func testBoundedDrawIsUnbiased() {
        var g = SeededGenerator(seed: 3, stream: [])
        let n = 3 << 61   // 3 * 2^61 fits Int
        var low = 0
        let draws = 30_000
        for _ in 0..<draws {
            let v = g.below(n)
            XCTAssertTrue((0..<n).contains(v))
            if v < n / 3 { low += 1 }
        }
        XCTAssertEqual(Double(low) / Double(draws), 1.0 / 3, accuracy: 0.015)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[g.below(7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
        var one = SeededGenerator(seed: 1, stream: [])
        for _ in 0..<10 { XCTAssertEqual(one.below(1), 0) }
    }

    func testUnitAndNormalMoments() {
        var g = SeededGenerator(seed: 11, stream: [])
        var sum = 0.0, sum2 = 0.0
        let n = 50_000
        for _ in 0..<n {
            let u = g.unit()
            XCTAssertTrue(u >= 0 && u < 1)
            let z = g.normal()
            sum += z; sum2 += z * z
        }
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.02)
        XCTAssertEqual(sum2 / Double(n), 1, accuracy: 0.03)
        for _ in 0..<100 {
            let v = g.unitVector()
            XCTAssertEqual(v.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-12)
        }
    }

    func testShuffleIsAPermutation() {
        var g = SeededGenerator(seed: 5, stream: [])
        var a = Array(0..<50)
        g.shuffle(&a)
        XCTAssertEqual(a.sorted(), Array(0..<50))
        XCTAssertNotEqual(a, Array(0..<50))
    }
}

final class ParallelTests: XCTestCase {
    func testForEachVisitsEveryIndexOnce() {
        for count in [0, 1, 7, 1000] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            Parallel.forEach(count, grain: 3) { hits[$0] += 1 }
            XCTAssertTrue(hits.prefix(count).allSatisfy { $0 == 1 }, "count \(count)")
        }
    }

    func testChunksCoverTheRangeContiguously() {
        let lock = NSLock()
        var ranges: [Int: Range<Int>] = [:]
        Parallel.forEachChunk(103, chunks: 8) { c, r in lock.lock(); ranges[c] = r; lock.unlock() }
        XCTAssertEqual(ranges.count, 8)
        var next = 0
        for c in 0..<8 { XCTAssertEqual(ranges[c]!.lowerBound, next); next = ranges[c]!.upperBound }
        XCTAssertEqual(next, 103)
        XCTAssertGreaterThanOrEqual(Parallel.chunkCount(1_000_000), 1)
        XCTAssertEqual(Parallel.chunkCount(0), 0)
        XCTAssertEqual(Parallel.chunkCount(5, grain: 100), 1)
    }

    func testMapKeepsOrderAndReportsTheFirstError() throws {
        XCTAssertEqual(Parallel.map(count: 100, workers: 4) { $0 * $0 }, (0..<100).map { $0 * $0 })
        XCTAssertEqual(try Parallel.map(["a", "bb", "ccc"]) { $0.count }, [1, 2, 3])
        struct Boom: Error, Equatable { var index: Int }
        XCTAssertThrowsError(try Parallel.map(count: 50, workers: 3) { i -> Int in
            if i == 17 { throw Boom(index: i) }
            return i
        }) { XCTAssertEqual($0 as? Boom, Boom(index: 17)) }
        var completed = 0
        _ = Parallel.map(count: 20, workers: 2, { $0 }, completed: { _, _ in completed += 1 })
        XCTAssertEqual(completed, 20)
    }
}

final class AtomicFileTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("essentials-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testWritesCreateFoldersReplaceAndLeaveNoTemporaryFile() throws {
        let url = folder.appendingPathComponent("a/b/file.txt")
        try AtomicFile.write(Data("one".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "one")
        try AtomicFile.write(Data("two, longer".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "two, longer")
        try AtomicFile.write(Data(), to: url)
        XCTAssertEqual(try Data(contentsOf: url).count, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path), ["file.txt"])
    }

    func testAFailingWriterLeavesTheOldFile() throws {
        let url = folder.appendingPathComponent("keep.txt")
        try AtomicFile.write(Data("old".utf8), to: url)
        struct Stop: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: url) { fd in
            try AtomicFile.writeAll(fd: fd, "new", count: 3, path: url.path)
            throw Stop()
        })
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["keep.txt"])
    }

    func testUnwritableDestinationIsAMatchableError() throws {
        // A regular file where the folder should be.
        try AtomicFile.write(Data("x".utf8), to: folder.appendingPathComponent("blocker"))
        let url = folder.appendingPathComponent("blocker/inside.txt")
        XCTAssertThrowsError(try AtomicFile.write(Data("y".utf8), to: url)) { error in
            guard case .cannotCreateFolder? = error as? AtomicFileError else { return XCTFail("\(error)") }
        }
    }
}
