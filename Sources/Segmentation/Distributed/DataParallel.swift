import Foundation
import Torch

/// This process's part in a data-parallel run (docs/distributed.md): the c10d process group, what
/// the trainer asks of it (the initial broadcast, gradient reduction, agreement on stopping, the
/// sum of sharded validation scores) and the fault handling around it.
///
/// Faults: every collective is bounded by `timeout`. Each rank also bumps a heartbeat counter in
/// the rendezvous store every `heartbeatInterval`, and a rank that fails writes its error there,
/// so a rank whose collective failed can say which rank stopped: the one that reported an error,
/// else the one whose heartbeat stood still, else rank 0 when the store (rank 0 hosts it) is gone.
public final class DataParallel: @unchecked Sendable {
    public let group: ProcessGroup
    public let launch: LaunchEnvironment
    public var rank: Int { launch.rank }
    public var worldSize: Int { launch.worldSize }
    public var isPrimary: Bool { launch.rank == 0 }
    public let timeout: TimeInterval
    public let heartbeatInterval: TimeInterval
    private var heartbeat: DispatchSourceTimer?
    /// What `diagnose` concluded, once: the trainer and the command both ask, the store is read
    /// and the heartbeats watched only the first time.
    private var diagnosis: Error?

    /// Joins the group of `launch` (at most `timeout` for every rank to arrive).
    public init(launch: LaunchEnvironment, timeout: TimeInterval) throws {
        guard timeout > 0, timeout.isFinite else { throw SegmentationError.launch("timeout must be positive, got \(timeout) s") }
        self.launch = launch
        self.timeout = timeout
        heartbeatInterval = Swift.min(Swift.max(timeout / 8, 0.25), 5)
        // Loopback runs bind Gloo to loopback; otherwise CONCORD_BIND_ADDR or this host's name.
        let bind = launch.isLoopback ? "127.0.0.1" : ProcessInfo.processInfo.environment["CONCORD_BIND_ADDR"]
        do {
            group = try ProcessGroup(master: launch.masterAddress, port: launch.masterPort, rank: launch.rank,
                                     worldSize: launch.worldSize, timeout: timeout, bindAddress: bind)
        } catch let error as TorchError {
            throw SegmentationError.launch("rank \(launch.rank) of \(launch.worldSize): \(error.message)")
        }
        startHeartbeat()
    }

    deinit { heartbeat?.cancel() }

    private func startHeartbeat() {
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        timer.schedule(deadline: .now(), repeating: heartbeatInterval)
        let key = "heartbeat/\(rank)"
        timer.setEventHandler { [weak self] in _ = try? self?.group.storeAdd(key, 1) }
        timer.resume()
        heartbeat = timer
    }

    // MARK: agreement at start

    /// Rank 0 publishes `value` under `key`; every other rank compares its own with it and throws,
    /// naming `what`, when they differ (arguments or configuration files that differ between ranks).
    public func requireSame(_ key: String, _ value: Data, what: String) throws {
        if isPrimary {
            try group.storeSet("same/\(key)", value)
            return
        }
        guard let theirs = try group.storeGet("same/\(key)") else {
            throw SegmentationError.launch("rank 0 did not publish its \(what) within \(Int(timeout)) s")
        }
        if theirs != value {
            throw SegmentationError.launch("the \(what) of rank \(rank) and rank 0 differ: "
                                           + "rank \(rank): \(String(decoding: value, as: UTF8.self).prefix(300)) | "
                                           + "rank 0: \(String(decoding: theirs, as: UTF8.self).prefix(300))")
        }
    }

    /// Rank 0 says `key` is ready; the others wait for it up to `patience` (rank 0 may plan and
    /// preprocess the dataset meanwhile). Rank 0 gone meanwhile fails at once (its store closes).
    public func signalReady(_ key: String) throws {
        precondition(isPrimary)
        try group.storeSet("ready/\(key)", Data("ok".utf8))
    }

    public func waitUntilReady(_ key: String, patience: TimeInterval, what: String) throws {
        precondition(!isPrimary)
        do {
            guard try group.storeGet("ready/\(key)", timeout: patience) != nil else {
                throw SegmentationError.distributed(rank: 0, problem: "\(what) not ready after \(Int(patience)) s")
            }
        } catch let error as TorchError {
            throw SegmentationError.distributed(rank: 0, problem: "stopped before \(what) was ready (\(error.message))")
        }
    }

    /// The device this rank trains on: the GPU of its local rank when the run is on CUDA (rank i
    /// on GPU i of its machine), else the setting's own.
    public func device(_ setting: DeviceSetting) throws -> Device {
        let resolved = try setting.resolve()
        guard case .cuda = resolved else { return resolved }
        return try DeviceSetting.cuda(launch.localRank).resolve()
    }

    // MARK: collectives the trainer uses

    /// Rank 0's parameters and buffers, to every rank.
    public func broadcast(_ model: Module) throws {
        try group.broadcast(model.parameters().map(\.value) + model.namedBuffers().map { $0.1.value }, root: 0)
    }

    /// True on every rank when it is true on any (each flag separately).
    public func any(_ flags: [Bool]) throws -> [Bool] {
        let t = try Tensor(flags.map { $0 ? Float(1) : 0 })
        try group.allReduce([t], .max)
        return try t.toArray(Float.self).map { $0 > 0 }
    }

    /// Element-wise sums over the ranks, in float64.
    public func sum(_ values: [Double]) throws -> [Double] {
        guard !values.isEmpty else { return [] }
        let t = try Tensor(values)
        try group.allReduce([t], .sum)
        return try t.toArray(Double.self)
    }

    /// Throws when the ranks' copies of `model` differ (compared through per-tensor float64 sums,
    /// their minimum and maximum over the ranks): every rank applies the same averaged gradients
    /// and the same method updates (mean teacher's EMA, PReL's teacher), so the copies must stay
    /// bit-identical; a difference means a rank diverged and the run would be meaningless.
    public func verifyReplicasAgree(_ model: Module, iteration: Int) throws {
        let state = try model.stateDict()
        var sums: [Double] = []
        for (_, tensor) in state where tensor.dtype.isFloatingPoint {
            sums.append(try tensor.to(.float64).sum().item())
        }
        guard !sums.isEmpty else { return }
        let low = try Tensor(sums), high = try Tensor(sums)
        try group.allReduce([low], .min)
        try group.allReduce([high], .max)
        let lows = try low.toArray(Double.self), highs = try high.toArray(Double.self)
        let names = state.filter { $0.1.dtype.isFloatingPoint }.map(\.0)
        if let i = lows.indices.first(where: { lows[$0] != highs[$0] }) {
            throw SegmentationError.distributed(rank: rank, problem: "the ranks' copies of the model differ at iteration \(iteration) (first: \(names[i]), "
                                                + "sums \(lows[i]) ... \(highs[i])): the run is not data parallel any more")
        }
    }

    // MARK: faults

    /// Records this rank's error in the store so the others can name it (best effort: the store
    /// may be gone).
    public func reportFailure(_ error: Error) {
        _ = try? group.storeSet("failed/\(rank)", Data(String(describing: error).prefix(500).utf8))
    }

    /// After `error` stopped this rank: the rank to blame, if another rank failed or stopped
    /// answering, as a `SegmentationError.distributed`; otherwise `error` itself (this rank's own
    /// failure, which it then reports for the others).
    public func diagnose(_ error: Error, iteration: Int?) -> Error {
        if let diagnosis { return diagnosis }
        let result = findCause(error, iteration: iteration)
        diagnosis = result
        return result
    }

    private func findCause(_ error: Error, iteration: Int?) -> Error {
        if let known = error as? SegmentationError, case .distributed = known { return known }
        let here = "rank \(rank) stopped " + (iteration.map { "at iteration \($0)" } ?? "while starting")
        // Not a libtorch error (settings, files, a mismatch found here): this rank's own problem.
        guard let torchError = error as? TorchError else {
            reportFailure(error)
            return error
        }
        let cause = torchError.message
        let gone = SegmentationError.distributed(rank: 0, problem: "is gone (the rendezvous store it hosts does not answer); \(here): \(cause)")
        // 1. A rank that reported its own error (now, or while the heartbeats are watched below).
        func reported() -> Error? {
            for r in 0..<worldSize where r != rank {
                do {
                    if let note = try group.storeGet("failed/\(r)", timeout: 0.05) {
                        return SegmentationError.distributed(rank: r, problem: "failed: \(String(decoding: note, as: UTF8.self)) (\(here))")
                    }
                } catch {
                    return gone
                }
            }
            return nil
        }
        if let found = reported() { return found }
        // 2. A rank whose heartbeat stood still for two intervals.
        func beats() -> [Int]? {
            try? (0..<worldSize).map { r in try group.storeAdd("heartbeat/\(r)", 0) }
        }
        guard let before = beats() else { return gone }
        Thread.sleep(forTimeInterval: 2.5 * heartbeatInterval)
        if let found = reported() { return found }
        guard let after = beats() else { return gone }
        let silent = (0..<worldSize).filter { $0 != rank && after[$0] == before[$0] }
        if let first = silent.first {
            let others = silent.count > 1 ? " (also silent: ranks \(silent.dropFirst().map(String.init).joined(separator: ", ")))" : ""
            return SegmentationError.distributed(rank: first, problem: "stopped answering (killed or hung)\(others); \(here): \(cause)")
        }
        // 3. Nobody else is to blame: this rank's own error.
        reportFailure(error)
        return error
    }
}
