// The one place where CTorch's C++ depends on the libtorch version. Every other file of the shim
// uses only what this header provides (or API that is identical in every supported version):
// Debian's libtorch 1.13 and PyPI's torch 2.x wheels (2.11 and 2.15 are built and tested).
// Internal to the target (not part of the public include/ folder).
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/Allocator.h>
#include <torch/csrc/api/include/torch/version.h>

#include <stdexcept>
#include <string>

#if !defined(TORCH_VERSION_MAJOR)
#error "CTorch: libtorch's torch/version.h defines no TORCH_VERSION_MAJOR"
#endif

#define CT_TORCH_AT_LEAST(major, minor) \
    (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// The device-generic allocator statistics (at::accelerator::getDeviceStats) are used from 2.11,
// the oldest 2.x built and tested here; older libtorch reports them as unavailable.
#define CT_HAS_DEVICE_STATS CT_TORCH_AT_LEAST(2, 11)
#if CT_HAS_DEVICE_STATS
#include <ATen/DeviceAccelerator.h>
#endif

namespace ctorch_compat {

// c10::Allocator::allocate is const in 1.x and non-const from 2.0 on (where copy_data is also
// pure virtual). CT_ALLOCATE_QUALIFIER goes between `allocate(size_t n)` and `override`.
#if TORCH_VERSION_MAJOR >= 2
#define CT_ALLOCATE_QUALIFIER
#define CT_ALLOCATOR_HAS_COPY_DATA 1
#else
#define CT_ALLOCATE_QUALIFIER const
#define CT_ALLOCATOR_HAS_COPY_DATA 0
#endif

// ---- autocast: one flag and one dtype per device type (2.x), separate CPU/GPU functions (1.x) ----
inline bool autocast_enabled(c10::DeviceType device) {
#if CT_TORCH_AT_LEAST(2, 4)
    return at::autocast::is_autocast_enabled(device);
#else
    return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(c10::DeviceType device, bool enabled) {
#if CT_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(device, enabled);
#else
    if (device == c10::DeviceType::CUDA) at::autocast::set_enabled(enabled);
    else at::autocast::set_cpu_enabled(enabled);
#endif
}

inline at::ScalarType autocast_dtype(c10::DeviceType device) {
#if CT_TORCH_AT_LEAST(2, 4)
    return at::autocast::get_autocast_dtype(device);
#else
    return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) {
#if CT_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_dtype(device, dtype);
#else
    if (device == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(dtype);
    else at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

// ---- CUDA device services that libtorch reaches without linking libtorch_cuda ----
inline void synchronize_cuda(c10::DeviceIndex index) { at::detail::getCUDAHooks().deviceSynchronize(index); }

struct DeviceMemory {
    int64_t allocated = 0, peak_allocated = 0, reserved = 0, peak_reserved = 0;
};

// The CUDA caching allocator's statistics (aggregate over pools) for one device.
inline DeviceMemory cuda_memory(c10::DeviceIndex index) {
#if CT_HAS_DEVICE_STATS
    auto stats = at::accelerator::getDeviceStats(index);
    constexpr size_t all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    DeviceMemory m;
    m.allocated = stats.allocated_bytes[all].current;
    m.peak_allocated = stats.allocated_bytes[all].peak;
    m.reserved = stats.reserved_bytes[all].current;
    m.peak_reserved = stats.reserved_bytes[all].peak;
    return m;
#else
    (void)index;
    throw std::runtime_error("CUDA memory statistics need libtorch 2.11 or newer (this is " TORCH_VERSION ")");
#endif
}

inline void cuda_reset_peak(c10::DeviceIndex index) {
#if CT_HAS_DEVICE_STATS
    at::accelerator::resetPeakStats(index);
#else
    (void)index;
    throw std::runtime_error("CUDA memory statistics need libtorch 2.11 or newer (this is " TORCH_VERSION ")");
#endif
}


// ---- c10d (only for distributed.cpp, which defines CT_COMPAT_C10D: the other files need neither
// these headers nor gloo's): in 1.x ProcessGroupGloo is a ProcessGroup; from 2.0 it is a Backend that a
// ProcessGroup dispatches to, and the Reducer's constructor changed with it ----
#if defined(CT_COMPAT_C10D)
}  // namespace ctorch_compat
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#include <memory>
#include <vector>
namespace ctorch_compat {
inline c10::intrusive_ptr<c10d::ProcessGroup> process_group_for_reducer(const c10::intrusive_ptr<c10d::Store> &store,
                                                                        const c10::intrusive_ptr<c10d::ProcessGroupGloo> &gloo,
                                                                        int rank, int size) {
#if TORCH_VERSION_MAJOR >= 2
    auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
    group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::GLOO, gloo);
    group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    return group;
#else
    (void)store; (void)rank; (void)size;
    return gloo;
#endif
}

inline std::unique_ptr<c10d::Reducer> make_reducer(const std::vector<at::Tensor> &params,
                                                   const std::vector<std::vector<size_t>> &bucket_indices,
                                                   const std::vector<size_t> &bucket_limits,
                                                   const c10::intrusive_ptr<c10d::ProcessGroup> &group, int64_t bucket_bytes,
                                                   bool find_unused, int64_t first_bucket_bytes) {
    std::vector<bool> sparse(params.size(), false);
#if TORCH_VERSION_MAJOR >= 2
    (void)bucket_limits;
    return std::make_unique<c10d::Reducer>(params, bucket_indices, group, sparse, bucket_bytes, find_unused,
                                           /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{},
                                           first_bucket_bytes, /*skip_all_reduce_unused_params=*/false,
                                           /*use_python_reducer=*/false, std::vector<int64_t>{});
#else
    return std::make_unique<c10d::Reducer>(params, bucket_indices, bucket_limits, group, sparse, bucket_bytes, find_unused,
                                           /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{},
                                           first_bucket_bytes);
#endif
}
#endif  // CT_COMPAT_C10D

}  // namespace ctorch_compat
