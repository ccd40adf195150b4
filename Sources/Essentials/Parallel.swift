import Foundation

/// Concord's one helper for running work on several cores.
///
/// Two shapes of work:
/// - `forEach` / `forEachChunk`: many cheap, equal iterations (voxel slices, lines). They are cut
///   into contiguous chunks, at most `chunksPerCore` per core, so each thread gets a run of
///   neighbouring iterations (cache friendly) and the partition depends only on the count and the
///   core count.
/// - `map`: a few expensive, unequal items (cases, files). Each worker takes the next unclaimed index
///   from a shared counter, so one slow item never stalls a fixed share of the others. Results come
///   back in input order; the first error thrown stops the claiming of new items and is rethrown.
public enum Parallel {
    /// Chunks per core for `forEach`.
    public static let chunksPerCore = 4

    /// The number of contiguous chunks `count` iterations are cut into: at most `chunksPerCore` per
    /// core, at least `grain` iterations per chunk (1 when small or single-core).
    public static func chunkCount(_ count: Int, grain: Int = 1) -> Int {
        guard count > 0 else { return 0 }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if cores <= 1 { return 1 }
        return max(1, min(count, cores * chunksPerCore, count / max(grain, 1)))
    }

    /// Runs `body(chunk, range)` for `chunks` contiguous ranges covering 0..<count
    /// (chunk c covers count*c/chunks ..< count*(c+1)/chunks), concurrently.
    public static func forEachChunk(_ count: Int, chunks: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let n = max(1, min(chunks, count))
        if n == 1 { body(0, 0..<count); return }
        DispatchQueue.concurrentPerform(iterations: n) { c in
            body(c, (count * c / n)..<(count * (c + 1) / n))
        }
    }

    /// Runs `body(i)` for every i in 0..<count on all cores, in chunks of about `grain` iterations
    /// (serially when small).
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Int) -> Void) {
        forEachChunk(count, chunks: chunkCount(count, grain: grain)) { _, range in
            for i in range { body(i) }
        }
    }

    /// `body(i)` for every i in 0..<count on up to `workers` threads (inline when 1; default: one per
    /// core), results in index order. `completed(i, result)` runs under a lock after each item, in
    /// completion order (for progress). The first error thrown is rethrown after the running items
    /// finish; items not yet started are skipped.
    public static func map<R>(count: Int, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ body: (Int) throws -> R, completed: ((Int, R) -> Void)? = nil) throws -> [R] {
        guard count > 0 else { return [] }
        var results = [R?](repeating: nil, count: count)
        let threads = max(1, min(workers, count))
        if threads == 1 {
            for i in 0..<count {
                let r = try body(i)
                results[i] = r
                completed?(i, r)
            }
            return results.map { $0! }
        }
        let lock = NSLock()
        var next = 0
        var firstError: Error? = nil
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while true {
                lock.lock()
                let i = next
                next += 1
                let stop = firstError != nil
                lock.unlock()
                guard i < count, !stop else { return }
                do {
                    let r = try body(i)
                    lock.lock()
                    results[i] = r
                    completed?(i, r)
                    lock.unlock()
                } catch {
                    lock.lock()
                    if firstError == nil { firstError = error }
                    lock.unlock()
                    return
                }
            }
        }
        if let e = firstError { throw e }
        return results.map { $0! }
    }

    /// `map` for work that cannot fail.
    public static func map<R>(count: Int, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                              _ body: (Int) -> R, completed: ((Int, R) -> Void)? = nil) -> [R] {
        // The throwing version rethrows only what `body` throws, and this `body` throws nothing.
        // swiftlint:disable:next force_try
        try! map(count: count, workers: workers, { i throws -> R in body(i) }, completed: completed)
    }

    /// `map` over the elements of `items`.
    public static func map<T, R>(_ items: [T], workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                                 _ body: (T) throws -> R) throws -> [R] {
        try map(count: items.count, workers: workers) { try body(items[$0]) }
    }
}
