// The exception boundary shared by every C++ file of CTorch: each entry point of ctorch.h runs its
// body inside CT_TRY, which turns any C++ exception into a returned error string. Internal to the
// target (not part of the public include/ folder).
#pragma once

#include "ctorch.h"

#include <ATen/ATen.h>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

struct ct_tensor_s {
    at::Tensor t;
};

namespace ctorch_detail {

inline char *make_error(const char *msg) {
    size_t n = std::strlen(msg);
    char *s = static_cast<char *>(std::malloc(n + 1));
    if (s) std::memcpy(s, msg, n + 1);
    return s;
}

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
    if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
    return at::Device(at::kCPU);
}
inline at::TensorOptions options(int dtype, int dev, int index) {
    return at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)).device(device(dev, index));
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

