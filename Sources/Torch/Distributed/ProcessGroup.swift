import CTorch
import Foundation

/// A group of processes training one model together, on libtorch's c10d: rank 0 hosts the
/// rendezvous store (a TCPStore), the collectives run on Gloo (CPU tensors, and CUDA tensors where
/// libtorch has CUDA). Every call is bounded by `timeout`: a peer that died or hangs makes it
/// throw instead of waiting forever.
public final class ProcessGroup: @unchecked Sendable {
    let handle: ct_dist
    public let rank: Int
    public let worldSize: Int
    public let timeout: TimeInterval

    /// Joins the group (blocks until every rank has joined, at most `timeout`).
    /// - Parameters:
    ///   - master: rank 0's address and port (rank 0 listens there).
    ///   - bindAddress: the address this rank's Gloo transport binds to (nil: this host's name;
    ///     "127.0.0.1" for loopback-only runs).
    public init(master: String, port: Int, rank: Int, worldSize: Int, timeout: TimeInterval, bindAddress: String? = nil) throws {
        guard timeout > 0, timeout.isFinite else { throw TorchError("process group timeout must be positive, got \(timeout)") }
        var out: ct_dist?
        try check(ct_dist_init(master, Int32(port), Int32(rank), Int32(worldSize), Int64((timeout * 1000).rounded(.up)), bindAddress, &out))
        guard let out else { throw TorchError("libtorch returned no process group") }
        handle = out
        self.rank = rank; self.worldSize = worldSize; self.timeout = timeout
    }

    deinit { ct_dist_free(handle) }

    public enum ReduceOp: Int32 { case sum = 0, max = 1, min = 2 }

    /// Replaces each tensor (in place) with rank `root`'s.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        guard !tensors.isEmpty else { return }
        var handles: [ct_tensor?] = tensors.map { $0.handle }
        try check(handles.withUnsafeMutableBufferPointer { ct_dist_broadcast(handle, $0.baseAddress, Int32($0.count), Int32(root)) })
    }

    /// Reduces each tensor over the group, in place.
    public func allReduce(_ tensors: [Tensor], _ op: ReduceOp = .sum) throws {
        guard !tensors.isEmpty else { return }
        var handles: [ct_tensor?] = tensors.map { $0.handle }
        try check(handles.withUnsafeMutableBufferPointer { ct_dist_allreduce(handle, $0.baseAddress, Int32($0.count), op.rawValue) })
    }

    /// Small values between ranks through the rendezvous store.
    public func storeSet(_ key: String, _ value: Data) throws {
        try check(value.withUnsafeBytes { ct_dist_store_set(handle, key, $0.baseAddress, $0.count) })
    }

    /// The value of `key`, waiting at most `timeout` (nil: the group's) for it to appear; nil when it did not.
    public func storeGet(_ key: String, timeout: TimeInterval? = nil) throws -> Data? {
        var found: Int32 = 0
        var data: UnsafeMutableRawPointer?
        var count = 0
        let wait = Int64(((timeout ?? self.timeout) * 1000).rounded(.up))
        try check(ct_dist_store_get(handle, key, Swift.max(wait, 1), &found, &data, &count))
        guard found != 0, let data else { return nil }
        defer { ct_dist_buffer_free(data) }
        return Data(bytes: data, count: count)
    }

    /// Adds `amount` to the counter `key` and returns the new value.
    @discardableResult
    public func storeAdd(_ key: String, _ amount: Int) throws -> Int {
        var out: Int64 = 0
        try check(ct_dist_store_add(handle, key, Int64(amount), &out))
        return Int(out)
    }
}

/// c10d's gradient Reducer (what PyTorch's DistributedDataParallel uses): while backward runs,
/// the gradients of `parameters` are averaged over the group in buckets, each bucket's all-reduce
/// starting as soon as its gradients are ready, so communication overlaps the rest of backward.
/// Call `prepareForBackward` after every forward, before its backward.
public final class GradientReducer {
    let handle: ct_reducer
    let group: ProcessGroup   // the reducer uses the group: keep it alive as long
    public let parameters: [Parameter]

    public init(group: ProcessGroup, parameters: [Parameter], bucketMB: Double = 25, findUnusedParameters: Bool = false) throws {
        guard bucketMB > 0 else { throw TorchError("reducer bucket size must be positive, got \(bucketMB) MB") }
        self.group = group
        self.parameters = parameters
        var handles: [ct_tensor?] = parameters.map { $0.value.handle }
        var out: ct_reducer?
        try check(handles.withUnsafeMutableBufferPointer {
            ct_reducer_new(group.handle, $0.baseAddress, Int32($0.count), Int64(bucketMB * 1_048_576), findUnusedParameters ? 1 : 0, &out)
        })
        guard let out else { throw TorchError("libtorch returned no reducer") }
        handle = out
    }

    deinit { ct_reducer_free(handle) }

    /// Marks the start of a backward pass; `outputs` are the tensors backward starts from (used
    /// to find parameters that receive no gradient when the reducer was made to look for them).
    public func prepareForBackward(_ outputs: [Tensor]) throws {
        var handles: [ct_tensor?] = outputs.map { $0.handle }
        try check(handles.withUnsafeMutableBufferPointer { ct_reducer_prepare(handle, $0.baseAddress, Int32($0.count)) })
    }
}
