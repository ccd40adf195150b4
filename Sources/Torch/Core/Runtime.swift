import CTorch
import Foundation

/// Process-wide libtorch settings.
public enum Runtime {
    /// The linked libtorch's version string.
    public static var libtorchVersion: String { String(cString: ct_version()) }

    /// Seeds libtorch's default generators (CPU and CUDA), as torch.manual_seed.
    public static func manualSeed(_ seed: UInt64) throws { try check(ct_manual_seed(seed)) }

    /// The CPU generator's state (a uint8 tensor). A caller that wants a resumed run to draw the
    /// same random numbers as an uninterrupted one saves it with its checkpoint and restores it with
    /// `setRNGState`; nothing in Torch saves it on its own.
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

    /// The file libtorch_cpu was loaded from (empty if it could not be found).
    public static var libtorchPath: String { String(cString: ct_libtorch_path()) }
    /// Whether libtorch_cuda was opened at start (it is looked for next to libtorch_cpu).
    public static var cudaLoaded: Bool { ct_cuda_loaded() != 0 }
    /// What was loaded for CUDA, or why CUDA is not there.
    public static var cudaStatus: String { String(cString: ct_cuda_status()) }
    /// CUDA loaded and at least one device usable.
    public static var cudaAvailable: Bool { ct_cuda_is_available() != 0 }
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }
    public static var mkldnnAvailable: Bool { ct_mkldnn_is_available() != 0 }
    /// Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX) through oneDNN.
    public static var cpuBFloat16Supported: Bool { ct_cpu_bf16_supported() != 0 }

    /// Name and total memory of a CUDA device.
    public static func cudaDeviceInfo(_ index: Int) throws -> (name: String, totalBytes: Int) {
        var name = [CChar](repeating: 0, count: 256)
        var total: Int64 = 0
        try check(ct_cuda_device_info(Int32(index), &name, Int32(name.count), &total))
        return (String(cString: name), Int(total))
    }

    /// Waits until all work queued on the CUDA device has finished.
    public static func synchronize(_ device: Device) throws {
        guard case .cuda(let index) = device else { return }
        try check(ct_cuda_synchronize(Int32(index)))
    }

    /// Bytes held by tensors on `device` now and at the peak since `resetPeakMemory(on:)`: the CUDA
    /// caching allocator's statistics for CUDA, Concord's CPU allocator's count for the CPU.
    public static func memory(on device: Device) throws -> (live: Int, peak: Int) {
        switch device {
        case .cpu: return memory
        case .cuda(let index):
            var allocated: Int64 = 0, peakAllocated: Int64 = 0, reserved: Int64 = 0, peakReserved: Int64 = 0
            try check(ct_cuda_memory(Int32(index), &allocated, &peakAllocated, &reserved, &peakReserved))
            return (Int(allocated), Int(peakAllocated))
        }
    }

    public static func resetPeakMemory(on device: Device) throws {
        switch device {
        case .cpu: resetPeakMemory()
        case .cuda(let index): try check(ct_cuda_reset_peak(Int32(index)))
        }
    }

    /// The precision modes this process can run on `device`: fp32 always; bf16 on a CPU that
    /// computes it natively; bf16 and fp16 on CUDA.
    public static func precisions(on device: Device) -> [DType] {
        switch device {
        case .cpu: return cpuBFloat16Supported ? [.float32, .bfloat16] : [.float32]
        case .cuda: return cudaAvailable ? [.float32, .bfloat16, .float16] : []
        }
    }

    /// cuDNN benchmark mode: each convolution shape is timed once and the fastest algorithm kept.
    /// Switching it on needs CUDA.
    public static func setCuDNNBenchmark(_ on: Bool) throws { try check(ct_set_backend_flag(Int32(CT_BACKEND_CUDNN_BENCHMARK), on ? 1 : 0)) }
    /// TF32 tensor-core arithmetic for fp32 matmuls and convolutions on CUDA. Switching it on
    /// needs CUDA.
    public static func setTF32(_ on: Bool) throws { try check(ct_set_backend_flag(Int32(CT_BACKEND_TF32), on ? 1 : 0)) }
    /// Deterministic algorithms only (an op without one raises an error when used).
    public static func setDeterministic(_ on: Bool) throws { try check(ct_set_backend_flag(Int32(CT_BACKEND_DETERMINISTIC), on ? 1 : 0)) }

    public static var cuDNNBenchmark: Bool { backendFlag(CT_BACKEND_CUDNN_BENCHMARK) }
    public static var tf32: Bool { backendFlag(CT_BACKEND_TF32) }
    public static var deterministic: Bool { backendFlag(CT_BACKEND_DETERMINISTIC) }

    private static func backendFlag(_ flag: Int) -> Bool {
        var value: Int32 = 0
        // The flag codes are the shim's own constants: reading them cannot fail.
        if let err = ct_get_backend_flag(Int32(flag), &value) {
            ct_error_free(err)
            preconditionFailure("unknown backend flag \(flag)")
        }
        return value != 0
    }

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
