import CTorch
import Foundation

/// Process-wide libtorch settings.
public enum Runtime {
    /// The linked libtorch's version string.
    public static var libtorchVersion: String { String(cString: ct_version()) }

    /// Seeds libtorch's default generators (CPU and CUDA), as torch.manual_seed.
    public static func manualSeed(_ seed: UInt64) throws { try check(ct_manual_seed(seed)) }

    /// The CPU generator's state, to save in a checkpoint for bit-exact resumption.
    public static func rngState() throws -> Tensor { try produce { ct_rng_state($0) } }
    public static func setRNGState(_ state: Tensor) throws { try check(ct_set_rng_state(state.handle)) }

    /// Intra-op threads libtorch uses.
    public static var threads: Int {
        get { Int(ct_get_num_threads()) }
        set { ct_set_num_threads(Int32(Swift.max(1, newValue))) }
    }

    /// Installs Concord's caching CPU allocator (done by `configureDefaultThreads`; idempotent).
    public static func installCachingAllocator() { _ = ct_tune_allocator() }

    /// Bytes of CPU tensors alive now and at the peak since `resetPeakMemory`, as counted by
    /// Concord's allocator (zero until it is installed).
    public static var memory: (live: Int, peak: Int) {
        var live: Int64 = 0, peak: Int64 = 0
        ct_allocator_stats(&live, &peak)
        return (Int(live), Int(peak))
    }

    public static func resetPeakMemory() { ct_allocator_reset_peak() }

    public static var cudaAvailable: Bool { ct_cuda_is_available() != 0 }
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }
    public static var mkldnnAvailable: Bool { ct_mkldnn_is_available() != 0 }

    /// Concord's threading defaults, measured on Debian's libtorch + OpenBLAS: torch's intra-op
    /// threads = cores (or `CONCORD_THREADS`), OpenBLAS single-threaded (torch already runs
    /// convolutions' GEMMs in parallel; nested OpenBLAS threads oversubscribe the cores).
    /// Large CPU tensor buffers are cached for reuse (set CONCORD_MALLOC_TUNING=0 to skip).
    /// OpenBLAS reads `OPENBLAS_NUM_THREADS` when it loads, so the count is set through its API;
    /// an explicit `OPENBLAS_NUM_THREADS` from the user is kept.
    public static func configureDefaultThreads() {
        let env = ProcessInfo.processInfo.environment
        if env["CONCORD_MALLOC_TUNING"] != "0" { _ = ct_tune_allocator() }
        if env["OPENBLAS_NUM_THREADS"] == nil { _ = ct_set_blas_threads(1) }
        if let text = env["CONCORD_THREADS"], let n = Int(text), n > 0 {
            threads = n
        } else {
            threads = ProcessInfo.processInfo.activeProcessorCount
        }
    }
}
