// The tensor ops of the C ABI over libtorch: each entry point of ctorch.h wrapped in CT_TRY
// (boundary.h), which turns any C++ exception into a returned error string. Adding an op is one
// line here (CT_UNARY/CT_BINARY/...) and one Swift method.
#include "ctorch.h"
#include "boundary.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <cstring>
#include <dlfcn.h>
#include <unistd.h>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <cstdlib>
#include <string>
#include <vector>

#define CT_UNARY(name, expr) \
    ct_error ct_##name(ct_tensor a_, ct_tensor *out) { CT_TRY(auto &a = T(a_); *out = wrap(expr)) }
#define CT_BINARY(name, expr) \
    ct_error ct_##name(ct_tensor a_, ct_tensor b_, ct_tensor *out) { CT_TRY(auto &a = T(a_); auto &b = T(b_); *out = wrap(expr)) }
#define CT_SCALAR(name, expr) \
    ct_error ct_##name(ct_tensor a_, double s, ct_tensor *out) { CT_TRY(auto &a = T(a_); *out = wrap(expr)) }
#define CT_DIMS(name, expr)                                                                      \
    ct_error ct_##name(ct_tensor a_, const int64_t *dims_, int n, int keepdim, ct_tensor *out) { \
        CT_TRY(auto &a = T(a_); auto dims = ints(dims_, n); *out = wrap(expr))                  \
    }
#define CT_SHAPE(name, expr) \
    ct_error ct_##name(ct_tensor a_, const int64_t *p, int n, ct_tensor *out) { CT_TRY(auto &a = T(a_); auto s = ints(p, n); *out = wrap(expr)) }

char ctorch_detail::out_of_memory_error[] = "out of memory (while reporting an error from libtorch)";

extern "C" {

void ct_error_free(ct_error err) {
    if (err != out_of_memory_error) std::free(err);
}
void ct_free(ct_tensor t) { delete t; }

const char *ct_version(void) {
#ifdef TORCH_VERSION
    return TORCH_VERSION;
#else
    return "unknown";
#endif
}

ct_error ct_from_data(const void *data, size_t nbytes, int dtype, const int64_t *shape, int ndim, ct_tensor *out) {
    CT_TRY(
        auto t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(scalar_type(dtype)));
        size_t need = static_cast<size_t>(t.numel()) * t.element_size();
        if (need != nbytes) throw std::invalid_argument("ct_from_data: a " + std::string(c10::toString(t.scalar_type())) +
                                                        " tensor of shape " + c10::str(t.sizes()) + " needs " +
                                                        std::to_string(need) + " bytes, got " + std::to_string(nbytes));
        if (need > 0) {
            if (!data) throw std::invalid_argument("ct_from_data: NULL data");
            std::memcpy(t.data_ptr(), data, need);
        }
        *out = wrap(std::move(t)))
}

ct_error ct_copy_data(ct_tensor t_, void *dst, size_t nbytes) {
    CT_TRY(
        auto t = T(t_).detach().to(at::kCPU).contiguous();
        size_t have = static_cast<size_t>(t.numel()) * t.element_size();
        if (have != nbytes) throw std::invalid_argument("ct_copy_data: tensor holds " + std::to_string(have) +
                                                        " bytes, destination " + std::to_string(nbytes));
        if (have > 0) std::memcpy(dst, t.data_ptr(), have))
}

ct_error ct_ndim(ct_tensor t, int *out) { CT_TRY(*out = static_cast<int>(T(t).dim())) }
ct_error ct_shape(ct_tensor t_, int64_t *dims, int capacity) {
    CT_TRY(
        auto &t = T(t_);
        if (t.dim() > capacity) throw std::invalid_argument("ct_shape: the tensor has " + std::to_string(t.dim()) +
                                                            " dims, the buffer room for " + std::to_string(capacity));
        for (int64_t i = 0; i < t.dim(); ++i) dims[i] = t.size(i))
}
ct_error ct_dtype(ct_tensor t, int *out) { CT_TRY(*out = static_cast<int>(T(t).scalar_type())) }
ct_error ct_device(ct_tensor t_, int *type, int *index) {
    CT_TRY(
        auto d = T(t_).device();
        if (d.is_cpu()) { *type = 0; *index = 0; }
        else if (d.is_cuda()) { *type = 1; *index = d.has_index() ? d.index() : 0; }
        else throw std::invalid_argument("tensor on unsupported device " + d.str()))
}
ct_error ct_numel(ct_tensor t, int64_t *out) { CT_TRY(*out = T(t).numel()) }
ct_error ct_item(ct_tensor t, double *out) { CT_TRY(*out = T(t).item<double>()) }
ct_error ct_clone_handle(ct_tensor t, ct_tensor *out) { CT_TRY(*out = wrap(T(t))) }

ct_error ct_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int index, ct_tensor *out) {
    CT_TRY(*out = wrap(at::full(ints(shape, ndim), value, options(dtype, dev, index))))
}
ct_error ct_rand(const int64_t *shape, int ndim, int normal, int dtype, int dev, int index, ct_tensor *out) {
    CT_TRY(auto o = options(dtype, dev, index);
           *out = wrap(normal ? at::randn(ints(shape, ndim), o) : at::rand(ints(shape, ndim), o)))
}
ct_error ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, ct_tensor *out) {
    CT_TRY(*out = wrap(at::randint(low, high, ints(shape, ndim), at::TensorOptions().dtype(scalar_type(dtype)))))
}
ct_error ct_arange(double start, double end, double step, int dtype, ct_tensor *out) {
    CT_TRY(*out = wrap(at::arange(start, end, step, at::TensorOptions().dtype(scalar_type(dtype)))))
}
ct_error ct_to(ct_tensor t, int dtype, int dev, int index, int non_blocking, ct_tensor *out) {
    CT_TRY(*out = wrap(T(t).to(device(dev, index), scalar_type(dtype), non_blocking != 0)))
}

CT_UNARY(neg, at::neg(a))
CT_UNARY(exp, at::exp(a))
CT_UNARY(log, at::log(a))
CT_UNARY(sqrt, at::sqrt(a))
CT_UNARY(rsqrt, at::rsqrt(a))
CT_UNARY(abs, at::abs(a))
CT_UNARY(square, at::square(a))
CT_UNARY(sign, at::sign(a))
CT_UNARY(floor, at::floor(a))
CT_UNARY(round, at::round(a))
CT_UNARY(cos, at::cos(a))
CT_UNARY(sin, at::sin(a))
CT_UNARY(relu, at::relu(a))
CT_UNARY(sigmoid, at::sigmoid(a))
CT_UNARY(tanh, at::tanh(a))
CT_UNARY(gelu, at::gelu(a))
CT_UNARY(logical_not, at::logical_not(a))
CT_UNARY(isfinite, at::isfinite(a))
CT_UNARY(contiguous, a.contiguous())
CT_UNARY(clone, a.clone())
CT_UNARY(detach, a.detach())
CT_UNARY(sum_all, a.sum())
CT_UNARY(mean_all, a.mean())
CT_UNARY(max_all, a.max())
CT_UNARY(min_all, a.min())
CT_UNARY(nonzero, at::nonzero(a))

CT_BINARY(add, at::add(a, b))
CT_BINARY(sub, at::sub(a, b))
CT_BINARY(mul, at::mul(a, b))
CT_BINARY(div, at::div(a, b))
CT_BINARY(pow, at::pow(a, b))
CT_BINARY(maximum, at::maximum(a, b))
CT_BINARY(minimum, at::minimum(a, b))
CT_BINARY(eq, at::eq(a, b))
CT_BINARY(ne, at::ne(a, b))
CT_BINARY(lt, at::lt(a, b))
CT_BINARY(le, at::le(a, b))
CT_BINARY(gt, at::gt(a, b))
CT_BINARY(ge, at::ge(a, b))
CT_BINARY(logical_and, at::logical_and(a, b))
CT_BINARY(logical_or, at::logical_or(a, b))
CT_BINARY(matmul, at::matmul(a, b))
CT_BINARY(bmm, at::bmm(a, b))
CT_BINARY(mse_loss, at::mse_loss(a, b))
CT_BINARY(bce_with_logits, at::binary_cross_entropy_with_logits(a, b))

CT_SCALAR(add_scalar, at::add(a, s))
CT_SCALAR(mul_scalar, at::mul(a, s))
CT_SCALAR(pow_scalar, at::pow(a, s))
CT_SCALAR(rsub_scalar, at::rsub(a, s))
CT_SCALAR(rdiv_scalar, at::reciprocal(a) * s)
CT_SCALAR(eq_scalar, at::eq(a, s))
CT_SCALAR(lt_scalar, at::lt(a, s))
CT_SCALAR(gt_scalar, at::gt(a, s))
CT_SCALAR(le_scalar, at::le(a, s))
CT_SCALAR(ge_scalar, at::ge(a, s))
CT_SCALAR(leaky_relu, at::leaky_relu(a, s))

ct_error ct_clamp(ct_tensor a, double lo, double hi, int has_lo, int has_hi, ct_tensor *out) {
    CT_TRY(c10::optional<at::Scalar> l, h; if (has_lo) l = lo; if (has_hi) h = hi;
           *out = wrap(at::clamp(T(a), l, h)))
}
ct_error ct_where(ct_tensor c, ct_tensor a, ct_tensor b, ct_tensor *out) { CT_TRY(*out = wrap(at::where(T(c), T(a), T(b)))) }

CT_DIMS(sum_dims, at::sum(a, dims, keepdim != 0))
CT_DIMS(mean_dims, at::mean(a, dims, keepdim != 0))
CT_DIMS(amax_dims, at::amax(a, dims, keepdim != 0))
CT_DIMS(amin_dims, at::amin(a, dims, keepdim != 0))
CT_DIMS(logsumexp, at::logsumexp(a, dims, keepdim != 0))
ct_error ct_argmax(ct_tensor a, int64_t dim, int keepdim, ct_tensor *out) { CT_TRY(*out = wrap(at::argmax(T(a), dim, keepdim != 0))) }
ct_error ct_var_dims(ct_tensor a, const int64_t *dims, int n, int unbiased, int keepdim, ct_tensor *out) {
    CT_TRY(*out = wrap(at::var(T(a), ints(dims, n), unbiased != 0, keepdim != 0)))
}

CT_SHAPE(reshape, a.reshape(s))
CT_SHAPE(permute, a.permute(s))
CT_SHAPE(expand, a.expand(s))
CT_SHAPE(flip, at::flip(a, s))
CT_SHAPE(repeat, a.repeat(s))
ct_error ct_roll(ct_tensor a, const int64_t *shifts, const int64_t *dims, int n, ct_tensor *out) {
    CT_TRY(*out = wrap(at::roll(T(a), ints(shifts, n), ints(dims, n))))
}
ct_error ct_transpose(ct_tensor a, int64_t d0, int64_t d1, ct_tensor *out) { CT_TRY(*out = wrap(T(a).transpose(d0, d1))) }
ct_error ct_narrow(ct_tensor a, int64_t dim, int64_t start, int64_t length, ct_tensor *out) {
    CT_TRY(*out = wrap(T(a).narrow(dim, start, length)))
}
ct_error ct_squeeze(ct_tensor a, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(T(a).squeeze(dim))) }
ct_error ct_unsqueeze(ct_tensor a, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(T(a).unsqueeze(dim))) }

static std::vector<at::Tensor> tensor_list(const ct_tensor *ts, int n) {
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; ++i) v.push_back(T(ts[i]));
    return v;
}
ct_error ct_cat(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(at::cat(tensor_list(ts, n), dim))) }
ct_error ct_stack(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(at::stack(tensor_list(ts, n), dim))) }
ct_error ct_index_select(ct_tensor a, int64_t dim, ct_tensor index, ct_tensor *out) {
    CT_TRY(*out = wrap(at::index_select(T(a), dim, T(index))))
}
ct_error ct_gather(ct_tensor a, int64_t dim, ct_tensor index, ct_tensor *out) { CT_TRY(*out = wrap(at::gather(T(a), dim, T(index)))) }
ct_error ct_masked_fill(ct_tensor a, ct_tensor mask, double value, ct_tensor *out) {
    CT_TRY(*out = wrap(at::masked_fill(T(a), T(mask), value)))
}

ct_error ct_convolution(ct_tensor input, ct_tensor weight, ct_tensor bias, int nd, const int64_t *stride,
                        const int64_t *padding, const int64_t *dilation, int transposed,
                        const int64_t *output_padding, int64_t groups, ct_tensor *out) {
    // Through the rank-specific ops (which call at::convolution themselves, so the numbers are
    // the same): autocast lists conv1d/2d/3d and conv_transpose1d/2d/3d, not at::convolution.
    CT_TRY(
        auto &x = T(input); auto &w = T(weight); auto b = opt(bias);
        auto s = ints(stride, nd); auto p = ints(padding, nd); auto d = ints(dilation, nd);
        at::Tensor y;
        if (transposed == 0) {
            if (nd == 3) y = at::conv3d(x, w, b, s, p, d, groups);
            else if (nd == 2) y = at::conv2d(x, w, b, s, p, d, groups);
            else if (nd == 1) y = at::conv1d(x, w, b, s, p, d, groups);
            else throw std::invalid_argument("convolution of spatial rank " + std::to_string(nd));
        } else {
            auto op = ints(output_padding, nd);
            if (nd == 3) y = at::conv_transpose3d(x, w, b, s, p, op, groups, d);
            else if (nd == 2) y = at::conv_transpose2d(x, w, b, s, p, op, groups, d);
            else if (nd == 1) y = at::conv_transpose1d(x, w, b, s, p, op, groups, d);
            else throw std::invalid_argument("transposed convolution of spatial rank " + std::to_string(nd));
        }
        *out = wrap(y))
}

ct_error ct_pool(ct_tensor input, int kind, int nd, const int64_t *kernel, const int64_t *stride,
                 const int64_t *padding, ct_tensor *out) {
    CT_TRY(
        auto &x = T(input); auto k = ints(kernel, nd); auto s = ints(stride, nd); auto p = ints(padding, nd);
        at::Tensor y;
        if (kind == 0) {
            if (nd == 3) y = at::max_pool3d(x, k, s, p);
            else if (nd == 2) y = at::max_pool2d(x, k, s, p);
            else y = at::max_pool1d(x, k, s, p);
        } else {
            if (nd == 3) y = at::avg_pool3d(x, k, s, p, false, false);
            else if (nd == 2) y = at::avg_pool2d(x, k, s, p, false, false);
            else y = at::avg_pool1d(x, k, s, p, false, false);
        }
        *out = wrap(y))
}

ct_error ct_adaptive_pool(ct_tensor input, int kind, int nd, const int64_t *size, ct_tensor *out) {
    CT_TRY(
        auto &x = T(input); auto s = ints(size, nd); at::Tensor y;
        if (kind == 0) {
            if (nd == 3) y = std::get<0>(at::adaptive_max_pool3d(x, s));
            else if (nd == 2) y = std::get<0>(at::adaptive_max_pool2d(x, s));
            else y = std::get<0>(at::adaptive_max_pool1d(x, s));
        } else {
            if (nd == 3) y = at::adaptive_avg_pool3d(x, s);
            else if (nd == 2) y = at::adaptive_avg_pool2d(x, s);
            else y = at::adaptive_avg_pool1d(x, s);
        }
        *out = wrap(y))
}

ct_error ct_interpolate(ct_tensor input, int nd, const int64_t *size, int mode, int align_corners, ct_tensor *out) {
    CT_TRY(
        auto &x = T(input); auto s = ints(size, nd); at::Tensor y;
        if (mode == CT_SAMPLE_NEAREST) {
            if (nd == 3) y = at::upsample_nearest3d(x, s);
            else if (nd == 2) y = at::upsample_nearest2d(x, s);
            else y = at::upsample_nearest1d(x, s);
        } else if (mode == CT_SAMPLE_LINEAR) {
            if (nd == 3) y = at::upsample_trilinear3d(x, s, align_corners != 0);
            else if (nd == 2) y = at::upsample_bilinear2d(x, s, align_corners != 0);
            else y = at::upsample_linear1d(x, s, align_corners != 0);
        } else {
            throw std::invalid_argument("ct_interpolate: unknown mode " + std::to_string(mode));
        }
        *out = wrap(y))
}

ct_error ct_grid_sample(ct_tensor input, ct_tensor grid, int mode, int padding, int align_corners, ct_tensor *out) {
    // libtorch's own codes: 0 bilinear/trilinear, 1 nearest.
    CT_TRY(
        int64_t torch_mode;
        if (mode == CT_SAMPLE_LINEAR) torch_mode = 0;
        else if (mode == CT_SAMPLE_NEAREST) torch_mode = 1;
        else throw std::invalid_argument("ct_grid_sample: unknown mode " + std::to_string(mode));
        if (padding < 0 || padding > 2) throw std::invalid_argument("ct_grid_sample: unknown padding " + std::to_string(padding));
        *out = wrap(at::grid_sampler(T(input), T(grid), torch_mode, padding, align_corners != 0)))
}
ct_error ct_affine_grid(ct_tensor theta, const int64_t *size, int n, int align_corners, ct_tensor *out) {
    CT_TRY(*out = wrap(at::affine_grid_generator(T(theta), ints(size, n), align_corners != 0)))
}
ct_error ct_softmax(ct_tensor a, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(at::softmax(T(a), dim))) }
ct_error ct_log_softmax(ct_tensor a, int64_t dim, ct_tensor *out) { CT_TRY(*out = wrap(at::log_softmax(T(a), dim))) }
ct_error ct_dropout(ct_tensor a, double p, int train, ct_tensor *out) { CT_TRY(*out = wrap(at::dropout(T(a), p, train != 0))) }
ct_error ct_one_hot(ct_tensor a, int64_t num_classes, ct_tensor *out) { CT_TRY(*out = wrap(at::one_hot(T(a), num_classes))) }

ct_error ct_batch_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor running_mean,
                       ct_tensor running_var, int training, double momentum, double eps, ct_tensor *out) {
    CT_TRY(*out = wrap(at::batch_norm(T(input), opt(weight), opt(bias), opt(running_mean), opt(running_var),
                                      training != 0, momentum, eps, true)))
}
ct_error ct_instance_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out) {
    CT_TRY(*out = wrap(at::instance_norm(T(input), opt(weight), opt(bias), {}, {}, true, 0.1, eps, true)))
}
ct_error ct_group_norm(ct_tensor input, int64_t groups, ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out) {
    CT_TRY(*out = wrap(at::group_norm(T(input), groups, opt(weight), opt(bias), eps, true)))
}
ct_error ct_layer_norm(ct_tensor input, const int64_t *shape, int n, ct_tensor weight, ct_tensor bias, double eps,
                       ct_tensor *out) {
    CT_TRY(*out = wrap(at::layer_norm(T(input), ints(shape, n), opt(weight), opt(bias), eps, true)))
}
ct_error ct_linear(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out) {
    CT_TRY(*out = wrap(at::linear(T(input), T(weight), opt(bias))))
}
ct_error ct_cross_entropy(ct_tensor logits, ct_tensor target, ct_tensor weight, int reduction, int64_t ignore_index,
                          double label_smoothing, ct_tensor *out) {
    CT_TRY(*out = wrap(at::cross_entropy_loss(T(logits), T(target), opt(weight), reduction, ignore_index, label_smoothing)))
}

ct_error ct_set_requires_grad(ct_tensor t, int flag) { CT_TRY(T(t).set_requires_grad(flag != 0)) }
ct_error ct_requires_grad(ct_tensor t, int *out) { CT_TRY(*out = T(t).requires_grad() ? 1 : 0) }
ct_error ct_grad(ct_tensor t, ct_tensor *out) {
    CT_TRY(const auto &g = T(t).grad(); *out = g.defined() ? wrap(g) : nullptr)
}
ct_error ct_zero_grad(ct_tensor t) { CT_TRY(T(t).mutable_grad().reset()) }
ct_error ct_backward(ct_tensor t, ct_tensor gradient, int retain_graph) {
    CT_TRY(T(t).backward(gradient ? T(gradient) : at::Tensor(), retain_graph != 0))
}
int ct_set_grad_enabled(int enabled) {
    bool prev = at::GradMode::is_enabled();
    at::GradMode::set_enabled(enabled != 0);
    return prev ? 1 : 0;
}
int ct_is_grad_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }

// In-place updates are parameter/buffer maintenance, never part of a graph.
#define CT_INPLACE(body) CT_TRY(at::NoGradGuard guard; body)
ct_error ct_add_(ct_tensor a, ct_tensor b, double alpha) { CT_INPLACE(T(a).add_(T(b), alpha)) }
ct_error ct_mul_scalar_(ct_tensor a, double s) { CT_INPLACE(T(a).mul_(s)) }
ct_error ct_add_scalar_(ct_tensor a, double s) {
    // Integer tensors (counters such as num_batches_tracked) need an integer scalar.
    CT_INPLACE(auto &t = T(a);
               if (at::isIntegralType(t.scalar_type(), true)) t.add_(static_cast<int64_t>(s)); else t.add_(s))
}
ct_error ct_addcmul_(ct_tensor a, ct_tensor t1, ct_tensor t2, double v) { CT_INPLACE(T(a).addcmul_(T(t1), T(t2), v)) }
ct_error ct_addcdiv_(ct_tensor a, ct_tensor t1, ct_tensor t2, double v) { CT_INPLACE(T(a).addcdiv_(T(t1), T(t2), v)) }
ct_error ct_copy_(ct_tensor dst, ct_tensor src) { CT_INPLACE(T(dst).copy_(T(src))) }
ct_error ct_fill_(ct_tensor a, double value) { CT_INPLACE(T(a).fill_(value)) }
ct_error ct_lerp_(ct_tensor a, ct_tensor end, double w) { CT_INPLACE(T(a).lerp_(T(end), w)) }

ct_error ct_manual_seed(uint64_t seed) { CT_TRY(at::manual_seed(seed)) }
ct_error ct_rng_state(ct_tensor *out) { CT_TRY(at::Generator gen = at::detail::getDefaultCPUGenerator(); std::lock_guard<std::mutex> lock(gen.mutex()); *out = wrap(gen.get_state())) }
ct_error ct_set_rng_state(ct_tensor state) { CT_TRY(at::Generator gen = at::detail::getDefaultCPUGenerator(); std::lock_guard<std::mutex> lock(gen.mutex()); gen.set_state(T(state))) }
void ct_set_num_threads(int n) {
    try { at::set_num_threads(n); } catch (...) {}
}
int ct_get_num_threads(void) { return at::get_num_threads(); }
int ct_mkldnn_is_available(void) { return at::hasMKLDNN() ? 1 : 0; }
namespace {

// A caching CPU allocator for large tensor buffers. Training allocates and frees the same large
// activation buffers every step; glibc serves blocks above its mmap threshold (at most 32 MB) with
// fresh mmaps, so each step pays the syscalls and the page faults of zeroing them again. Measured
// on a 2x2x64^3 U-Net step on 2 cores: 2.78 s -> 2.1 s. Blocks of at least 1 MiB are rounded up
// to a size class (1/8 steps per power of two) and kept on a free list for reuse, up to a cache
// cap; smaller blocks go to malloc as before.
class CachingCPUAllocator final : public c10::Allocator {
  public:
    static constexpr size_t kMinCached = 1 << 20;
    static constexpr size_t kAlignment = 64;

    c10::DataPtr allocate(size_t n) CT_ALLOCATE_QUALIFIER override {
        size_t size = n < kMinCached ? n : size_class(n);
        account(n);
        void *p = nullptr;
        if (size >= kMinCached) {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = free_.find(size);
            if (it != free_.end() && !it->second.empty()) {
                p = it->second.back();
                it->second.pop_back();
                cached_bytes_ -= size;
            }
        }
        if (!p) {
            if (posix_memalign(&p, kAlignment, size == 0 ? kAlignment : size) != 0) throw std::bad_alloc();
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            sizes_[p] = Block{size, n};
        }
        return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
    }

    c10::DeleterFnPtr raw_deleter() const override { return &release; }

#if CT_ALLOCATOR_HAS_COPY_DATA
    void copy_data(void *dest, const void *src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

    static CachingCPUAllocator &instance() {
        static CachingCPUAllocator allocator;
        return allocator;
    }

    // At most a quarter of the physical memory stays cached.
    /// Bytes of live tensors allocated through this allocator, and the peak since the last reset.
    std::atomic<int64_t> live_bytes{0}, peak_bytes{0};

    void account(size_t n) const {
        auto &self = const_cast<CachingCPUAllocator &>(*this);
        int64_t now = self.live_bytes.fetch_add(int64_t(n)) + int64_t(n);
        int64_t peak = self.peak_bytes.load();
        while (now > peak && !self.peak_bytes.compare_exchange_weak(peak, now)) {}
    }

    size_t cap_bytes = [] {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        return pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : size_t(4) << 30;
    }();

  private:
    static size_t size_class(size_t n) {
        size_t power = 1;
        while (power < n) power <<= 1;
        size_t step = power / 8;
        return (n + step - 1) / step * step;
    }

    static void release(void *p) {
        if (!p) return;
        auto &self = instance();
        {
            std::lock_guard<std::mutex> lock(self.mutex_);
            auto it = self.sizes_.find(p);
            if (it != self.sizes_.end()) {
                size_t size = it->second.size;
                self.live_bytes.fetch_sub(int64_t(it->second.requested));
                self.sizes_.erase(it);
                if (size >= kMinCached && self.cached_bytes_ + size <= self.cap_bytes) {
                    self.free_[size].push_back(p);
                    self.cached_bytes_ += size;
                    return;
                }
            }
        }
        std::free(p);
    }

    struct Block {
        size_t size;       // allocated (size class)
        size_t requested;  // asked for
    };
    mutable std::mutex mutex_;
    mutable std::unordered_map<void *, Block> sizes_;
    mutable std::unordered_map<size_t, std::vector<void *>> free_;
    mutable size_t cached_bytes_ = 0;
};

}  // namespace

void ct_allocator_stats(int64_t *live, int64_t *peak) {
    auto &a = CachingCPUAllocator::instance();
    *live = a.live_bytes.load();
    *peak = a.peak_bytes.load();
}

void ct_allocator_reset_peak(void) {
    auto &a = CachingCPUAllocator::instance();
    a.peak_bytes.store(a.live_bytes.load());
}

int ct_tune_allocator(void) {
    try {
        c10::SetAllocator(c10::DeviceType::CPU, &CachingCPUAllocator::instance(), /*priority*/ 10);
        return 1;
    } catch (...) {
        return 0;
    }
}

int ct_set_blas_threads(int n) {
    // Looked up at run time: OPENBLAS_NUM_THREADS is read when the library loads, before any
    // Swift code runs, so the environment variable alone cannot be set from inside the process.
    using setter = void (*)(int);
    auto fn = reinterpret_cast<setter>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (!fn) return 0;
    fn(n);
    return 1;
}

}  // extern "C"
