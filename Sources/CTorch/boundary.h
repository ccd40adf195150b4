// The exception boundary shared by every C++ file of CTorch: each entry point of ctorch.h runs its
// body inside CT_TRY, which turns any C++ exception into a returned error string. Internal to the
// target (not part of the public include/ folder).
#pragma once

#include "ctorch.h"
#include "compat.h"

#include <ATen/ATen.h>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

struct ct_tensor_s {
    at::Tensor t;
};

namespace ctorch_detail {

// Returned when the message of an error cannot be allocated: a failure must never read as success
// (NULL). ct_error_free recognises it and leaves it alone.
extern char out_of_memory_error[];

inline char *make_error(const char *msg) {
    size_t n = std::strlen(msg);
    char *s = static_cast<char *>(std::malloc(n + 1));
    if (!s) return out_of_memory_error;
    std::memcpy(s, msg, n + 1);
    return s;
}

// A dtype code from the C ABI: only the codes of ctorch.h's enum are accepted (a cast of any
// other integer to at::ScalarType would be undefined or silently mean something else).
inline at::ScalarType scalar_type(int code) {
    switch (code) {
    case CT_UINT8: case CT_INT8: case CT_INT16: case CT_INT32: case CT_INT64:
    case CT_FLOAT16: case CT_FLOAT32: case CT_FLOAT64: case CT_BOOL: case CT_BFLOAT16:
        return static_cast<at::ScalarType>(code);
    default:
        throw std::invalid_argument("unknown dtype code " + std::to_string(code) + " (supported: uint8 0, int8 1, int16 2, "
                                    "int32 3, int64 4, float16 5, float32 6, float64 7, bool 11, bfloat16 15)");
    }
}

// Every CUDA request goes through here: without CUDA it fails with the reason (never a crash).
void require_cuda(const char *what);

inline ct_tensor wrap(at::Tensor t) { return new ct_tensor_s{std::move(t)}; }
inline at::Tensor &T(ct_tensor h) {
    if (!h) throw std::invalid_argument("null tensor handle");
    return h->t;
}
inline c10::optional<at::Tensor> opt(ct_tensor h) {
    if (!h) return c10::nullopt;
    return h->t;
}
inline at::IntArrayRef ints(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }
inline at::Device device(int type, int index) {
    if (type == 1) {
        require_cuda("a CUDA tensor");
        return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    if (type != 0) throw std::invalid_argument("unknown device type code " + std::to_string(type) + " (0 CPU, 1 CUDA)");
    return at::Device(at::kCPU);
}
inline at::TensorOptions options(int dtype, int dev, int index) {
    return at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev, index));
}

}  // namespace ctorch_detail

using namespace ctorch_detail;

// One exception boundary for the whole shim. c10::Error is caught first for its message without
// the C++ backtrace, which means nothing to a Swift user.
#define CT_TRY(...)                                                                   \
    try {                                                                             \
        __VA_ARGS__;                                                                  \
        return nullptr;                                                               \
    } catch (const c10::Error &e) {                                                   \
        return make_error(e.what_without_backtrace());                                \
    } catch (const std::exception &e) {                                               \
        return make_error(e.what());                                                  \
    } catch (...) {                                                                   \
        return make_error("unknown C++ exception in libtorch");                       \
    }

