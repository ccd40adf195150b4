// Devices, memory formats and mixed precision for the C ABI (ctorch.h, "devices, memory formats,
// precision"). CUDA is never linked: libtorch_cuda.so is opened at process start when it lies
// next to the loaded libtorch_cpu.so, so one binary runs on CPU-only and GPU machines alike, and
// Debian's CPU libtorch needs no CUDA library at all. Every CUDA request without CUDA fails through
// require_cuda with the reason.
#include "ctorch.h"
#include "boundary.h"
#include "compat.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>

#include <string>
#include <vector>

namespace {

struct CudaLoader {
    bool loaded = false;
    std::string status;
    std::string torch_cpu_path;

    CudaLoader() {
        try {
            load();
        } catch (const std::exception &e) {
            status = std::string("CUDA support not loaded: ") + e.what();
        } catch (...) {
            status = "CUDA support not loaded: unknown error";
        }
    }

    void load() {
        // The loaded libtorch_cpu, whatever its folder (a wheel's torch/lib, /usr/lib/...).
        dl_iterate_phdr(
            [](struct dl_phdr_info *info, size_t, void *data) -> int {
                std::string name = info->dlpi_name ? info->dlpi_name : "";
                auto slash = name.rfind('/');
                std::string file = slash == std::string::npos ? name : name.substr(slash + 1);
                if (file.rfind("libtorch_cpu.so", 0) == 0) {
                    *static_cast<std::string *>(data) = name;
                    return 1;
                }
                return 0;
            },
            &torch_cpu_path);
        if (torch_cpu_path.empty()) {
            status = "libtorch_cpu is not among the loaded libraries, so there is no folder to look for libtorch_cuda in";
            return;
        }
        std::string folder = torch_cpu_path.substr(0, torch_cpu_path.rfind('/'));
        std::string cuda = folder + "/libtorch_cuda.so";
        struct stat st;
        if (stat(cuda.c_str(), &st) != 0) {
            status = "no libtorch_cuda.so next to " + torch_cpu_path + " (a CPU-only libtorch)";
            return;
        }
        // RTLD_GLOBAL: libtorch_cuda's static initialisers register its kernels and CUDA hooks
        // with libtorch_cpu's registries; nothing in Concord references its symbols directly.
        if (!dlopen(cuda.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
            const char *why = dlerror();
            status = cuda + " exists but could not be loaded: " + (why ? why : "unknown dlopen error");
            return;
        }
        loaded = true;
        status = "loaded " + cuda;
    }
};

CudaLoader &cuda_loader() {
    static CudaLoader loader;
    return loader;
}

// At start, before anything asks libtorch for its CUDA hooks (libtorch caches the first answer).
[[maybe_unused]] const bool cuda_loaded_at_start = (cuda_loader(), true);

at::DeviceType device_type(int dev) {
    if (dev == 0) return at::kCPU;
    if (dev == 1) return at::kCUDA;
    throw std::invalid_argument("unknown device type code " + std::to_string(dev) + " (0 CPU, 1 CUDA)");
}

int cuda_devices() {
    if (!cuda_loader().loaded || !at::hasCUDA()) return 0;
    return static_cast<int>(at::detail::getCUDAHooks().getNumGPUs());
}

void require_cuda_device(int index, const char *what) {
    require_cuda(what);
    int n = cuda_devices();
    if (index < 0 || index >= n)
        throw std::invalid_argument(std::string(what) + ": CUDA device " + std::to_string(index) + " does not exist (" +
                                    std::to_string(n) + " visible)");
}

// The CUDA driver API, looked up at run time (stable C signatures; no CUDA headers needed).
template <typename F>
F driver(const char *name) {
    void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY);
    if (!lib) throw std::runtime_error("the CUDA driver (libcuda.so.1) cannot be loaded");
    void *f = dlsym(lib, name);
    if (!f) throw std::runtime_error(std::string("the CUDA driver has no ") + name);
    return reinterpret_cast<F>(f);
}

at::MemoryFormat memory_format(int format) {
    switch (format) {
    case CT_FORMAT_CONTIGUOUS: return at::MemoryFormat::Contiguous;
    case CT_FORMAT_CHANNELS_LAST: return at::MemoryFormat::ChannelsLast;
    case CT_FORMAT_CHANNELS_LAST_3D: return at::MemoryFormat::ChannelsLast3d;
    default: throw std::invalid_argument("unknown memory format code " + std::to_string(format));
    }
}

}  // namespace

void ctorch_detail::require_cuda(const char *what) {
    auto &loader = cuda_loader();
    if (!loader.loaded) throw std::runtime_error(std::string(what) + " needs CUDA, which is not available: " + loader.status);
    if (!at::hasCUDA())
        throw std::runtime_error(std::string(what) + " needs CUDA: libtorch_cuda is loaded but no CUDA device is usable "
                                                     "(no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides every device)");
}

extern "C" {

int ct_cuda_loaded(void) { return cuda_loader().loaded ? 1 : 0; }
const char *ct_cuda_status(void) { return cuda_loader().status.c_str(); }
const char *ct_libtorch_path(void) { return cuda_loader().torch_cpu_path.c_str(); }

int ct_cuda_is_available(void) {
    try { return cuda_devices() > 0 ? 1 : 0; } catch (...) { return 0; }
}
int ct_cuda_device_count(void) {
    try { return cuda_devices(); } catch (...) { return 0; }
}

ct_error ct_cuda_device_info(int index, char *name, int capacity, int64_t *total_bytes) {
    CT_TRY(
        require_cuda_device(index, "CUDA device information");
        if (!name || capacity < 1) throw std::invalid_argument("ct_cuda_device_info: no room for the name");
        using init_fn = int (*)(unsigned);
        using get_fn = int (*)(int *, int);
        using name_fn = int (*)(char *, int, int);
        using mem_fn = int (*)(size_t *, int);
        int dev = 0; size_t bytes = 0;
        if (driver<init_fn>("cuInit")(0) != 0) throw std::runtime_error("cuInit failed");
        if (driver<get_fn>("cuDeviceGet")(&dev, index) != 0) throw std::runtime_error("cuDeviceGet failed");
        if (driver<name_fn>("cuDeviceGetName")(name, capacity, dev) != 0) throw std::runtime_error("cuDeviceGetName failed");
        name[capacity - 1] = 0;
        if (driver<mem_fn>("cuDeviceTotalMem_v2")(&bytes, dev) != 0) throw std::runtime_error("cuDeviceTotalMem failed");
        *total_bytes = static_cast<int64_t>(bytes))
}

ct_error ct_cuda_synchronize(int index) {
    CT_TRY(require_cuda_device(index, "CUDA synchronize"); ctorch_compat::synchronize_cuda(static_cast<c10::DeviceIndex>(index)))
}

ct_error ct_cuda_memory(int index, int64_t *allocated, int64_t *peak_allocated, int64_t *reserved, int64_t *peak_reserved) {
    CT_TRY(
        require_cuda_device(index, "CUDA memory statistics");
        auto m = ctorch_compat::cuda_memory(static_cast<c10::DeviceIndex>(index));
        *allocated = m.allocated; *peak_allocated = m.peak_allocated; *reserved = m.reserved; *peak_reserved = m.peak_reserved)
}

ct_error ct_cuda_reset_peak(int index) {
    CT_TRY(require_cuda_device(index, "CUDA memory statistics"); ctorch_compat::cuda_reset_peak(static_cast<c10::DeviceIndex>(index)))
}

int ct_cpu_bf16_supported(void) {
    // Native bf16 arithmetic: AVX-512 BF16 (CPUID leaf 7, subleaf 1, EAX bit 5) or AMX-BF16
    // (leaf 7, subleaf 0, EDX bit 22); oneDNN (MKLDNN) runs libtorch's bf16 convolutions on them.
    if (!at::hasMKLDNN()) return 0;
    unsigned a, b, c, d;
    bool avx512_bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
    bool amx_bf16 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22));
    return avx512_bf16 || amx_bf16 ? 1 : 0;
}

ct_error ct_contiguous_format(ct_tensor t, int format, ct_tensor *out) {
    CT_TRY(*out = wrap(T(t).contiguous(memory_format(format))))
}
ct_error ct_is_contiguous_format(ct_tensor t, int format, int *out) {
    CT_TRY(*out = T(t).is_contiguous(memory_format(format)) ? 1 : 0)
}

ct_error ct_pin_memory(ct_tensor t, ct_tensor *out) {
    CT_TRY(
        auto &x = T(t);
        if (!x.device().is_cpu()) throw std::invalid_argument("pinned memory is for CPU tensors, this one is on " + x.device().str());
        require_cuda("pinned (page-locked) memory");
        *out = wrap(x.pin_memory()))
}
ct_error ct_is_pinned(ct_tensor t, int *out) {
    CT_TRY(auto &x = T(t); *out = (cuda_loader().loaded && at::hasCUDA() && x.device().is_cpu() && x.is_pinned()) ? 1 : 0)
}

ct_error ct_autocast_enter(int dev, int dtype, int *prev_enabled, int *prev_dtype) {
    CT_TRY(
        auto type = device_type(dev); auto st = scalar_type(dtype);
        if (type == at::kCUDA) {
            require_cuda("CUDA autocast");
            if (st != at::kBFloat16 && st != at::kHalf)
                throw std::invalid_argument("CUDA autocast runs in bfloat16 or float16, not " + std::string(c10::toString(st)));
        } else if (st != at::kBFloat16) {
            throw std::invalid_argument("CPU autocast runs in bfloat16, not " + std::string(c10::toString(st)));
        }
        *prev_enabled = ctorch_compat::autocast_enabled(type) ? 1 : 0;
        *prev_dtype = static_cast<int>(ctorch_compat::autocast_dtype(type));
        ctorch_compat::set_autocast_dtype(type, st);
        ctorch_compat::set_autocast_enabled(type, true);
        at::autocast::increment_nesting())
}

ct_error ct_autocast_exit(int dev, int prev_enabled, int prev_dtype) {
    CT_TRY(
        auto type = device_type(dev);
        // The casts of weights cached inside the region are dropped when the outermost region ends.
        if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
        ctorch_compat::set_autocast_enabled(type, prev_enabled != 0);
        ctorch_compat::set_autocast_dtype(type, scalar_type(prev_dtype)))
}

ct_error ct_autocast_state(int dev, int *enabled, int *dtype) {
    CT_TRY(auto type = device_type(dev);
           *enabled = ctorch_compat::autocast_enabled(type) ? 1 : 0;
           *dtype = static_cast<int>(ctorch_compat::autocast_dtype(type)))
}

ct_error ct_unscale_grads(const ct_tensor *grads, int n, double inv_scale, ct_tensor *found_nonfinite) {
    CT_TRY(
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> finite;
        at::Device where(at::kCPU);
        for (int i = 0; i < n; ++i) {
            if (!grads[i]) continue;
            auto &g = grads[i]->t;
            g.mul_(inv_scale);
            finite.push_back(at::isfinite(g).all());
            where = g.device();
        }
        at::Tensor found = finite.empty() ? at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(where))
                                          : at::logical_not(at::stack(finite).all()).to(at::kFloat);
        *found_nonfinite = wrap(found))
}

ct_error ct_set_backend_flag(int flag, int value) {
    CT_TRY(
        auto &ctx = at::globalContext(); bool on = value != 0;
        switch (flag) {
        case CT_BACKEND_CUDNN_BENCHMARK:
            if (on) require_cuda("cuDNN benchmark mode");
            ctx.setBenchmarkCuDNN(on);
            break;
        case CT_BACKEND_TF32:
            if (on) require_cuda("TF32 matmuls and convolutions");
            ctx.setAllowTF32CuBLAS(on);
            ctx.setAllowTF32CuDNN(on);
            break;
        case CT_BACKEND_DETERMINISTIC: ctx.setDeterministicAlgorithms(on, false); break;
        default: throw std::invalid_argument("unknown backend flag " + std::to_string(flag));
        })
}

ct_error ct_get_backend_flag(int flag, int *value) {
    CT_TRY(
        auto &ctx = at::globalContext();
        switch (flag) {
        case CT_BACKEND_CUDNN_BENCHMARK: *value = ctx.benchmarkCuDNN() ? 1 : 0; break;
        case CT_BACKEND_TF32: *value = ctx.allowTF32CuBLAS() && ctx.allowTF32CuDNN() ? 1 : 0; break;
        case CT_BACKEND_DETERMINISTIC: *value = ctx.deterministicAlgorithms() ? 1 : 0; break;
        default: throw std::invalid_argument("unknown backend flag " + std::to_string(flag));
        })
}

}  // extern "C"
