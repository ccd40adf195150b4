import Foundation

/// Work on many items with a few threads: each worker takes the next unclaimed index from a shared
/// counter, so one slow item (a large scan) never stalls a fixed share of the others. Results
/// come back in input order.
public enum ParallelWork {
    /// `body(i)` for every i in 0..<count on up to `workers` threads (inline when 1).
    /// `completed(i, result)` runs under the lock after each item, in completion order (progress).
    public static func map<R>(count: Int, workers: Int, _ body: (Int) -> R,
                              completed: ((Int, R) -> Void)? = nil) -> [R] {
        var results = [R?](repeating: nil, count: count)
        let threads = max(1, min(workers, count))
        if threads == 1 {
            for i in 0..<count {
                let r = body(i)
                results[i] = r
                completed?(i, r)
            }
            return results.map { $0! }
        }
        let lock = NSLock()
        var next = 0
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                guard i < count else { return }
                let r = body(i)
                lock.lock()
                results[i] = r
                completed?(i, r)
                lock.unlock()
            }
        }
        return results.map { $0! }
    }
}
