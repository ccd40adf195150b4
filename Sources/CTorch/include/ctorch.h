/*
 * ctorch.h: Concord's C ABI over libtorch.
 *
 * The contract, kept by every function in shim.cpp:
 *  - Handles are opaque. A ct_tensor owns one at::Tensor (a reference-counted view); free it
 *    with ct_free exactly once.
 *  - Every function that can fail returns ct_error: NULL on success, otherwise a string with
 *    libtorch's message that the caller frees with ct_error_free (when even that string cannot be
 *    allocated, a static "out of memory" message is returned, which ct_error_free leaves alone).
 *    No C++ exception ever crosses this boundary (one crossing into Swift would abort the
 *    process). Getters report a NULL handle as an error too.
 *  - Results come back through the last parameter(s) (`out`). On failure outputs are untouched.
 *  - Optional tensors are passed as NULL.
 *  - dtype codes are c10::ScalarType values (see CT_* below; any other code is an error);
 *    device type 0 = CPU, 1 = CUDA.
 */
#ifndef CONCORD_CTORCH_H
#define CONCORD_CTORCH_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef char *ct_error;

enum {
    CT_UINT8 = 0, CT_INT8 = 1, CT_INT16 = 2, CT_INT32 = 3, CT_INT64 = 4,
    CT_FLOAT16 = 5, CT_FLOAT32 = 6, CT_FLOAT64 = 7, CT_BOOL = 11, CT_BFLOAT16 = 15
};

/* ---- lifetime, data, metadata ---- */
void ct_error_free(ct_error err);
void ct_free(ct_tensor t);
const char *ct_version(void);
/* A tensor holding a copy of `nbytes` bytes at `data`, which must be exactly numel * element size. */
ct_error ct_from_data(const void *data, size_t nbytes, int dtype, const int64_t *shape, int ndim, ct_tensor *out);
/* Copies the tensor's values (converted to CPU, contiguous) into dst, which holds nbytes. */
ct_error ct_copy_data(ct_tensor t, void *dst, size_t nbytes);
ct_error ct_ndim(ct_tensor t, int *out);
/* Writes the sizes into dims, which has room for `capacity` entries (at least ct_ndim). */
ct_error ct_shape(ct_tensor t, int64_t *dims, int capacity);
ct_error ct_dtype(ct_tensor t, int *out);
/* type: 0 CPU, 1 CUDA (any other device is an error); index: the CUDA device (0 on the CPU). */
ct_error ct_device(ct_tensor t, int *type, int *index);
ct_error ct_numel(ct_tensor t, int64_t *out);
ct_error ct_item(ct_tensor t, double *out);
ct_error ct_clone_handle(ct_tensor t, ct_tensor *out); /* a second handle to the same tensor */

/* ---- creation ---- */
ct_error ct_full(const int64_t *shape, int ndim, double value, int dtype, int dev, int dev_index, ct_tensor *out);
ct_error ct_rand(const int64_t *shape, int ndim, int normal, int dtype, int dev, int dev_index, ct_tensor *out);
ct_error ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, ct_tensor *out);
ct_error ct_arange(double start, double end, double step, int dtype, ct_tensor *out);
/* non_blocking: the copy may return before it completes (host -> CUDA from pinned memory). */
ct_error ct_to(ct_tensor t, int dtype, int dev, int dev_index, int non_blocking, ct_tensor *out);

/* ---- elementwise ---- */
#define CT_DECL_UNARY(name) ct_error ct_##name(ct_tensor a, ct_tensor *out);
#define CT_DECL_BINARY(name) ct_error ct_##name(ct_tensor a, ct_tensor b, ct_tensor *out);
#define CT_DECL_SCALAR(name) ct_error ct_##name(ct_tensor a, double s, ct_tensor *out);
CT_DECL_UNARY(neg) CT_DECL_UNARY(exp) CT_DECL_UNARY(log) CT_DECL_UNARY(sqrt) CT_DECL_UNARY(rsqrt)
CT_DECL_UNARY(abs) CT_DECL_UNARY(square) CT_DECL_UNARY(sign) CT_DECL_UNARY(floor) CT_DECL_UNARY(round)
CT_DECL_UNARY(relu) CT_DECL_UNARY(sigmoid) CT_DECL_UNARY(tanh) CT_DECL_UNARY(gelu)
CT_DECL_UNARY(logical_not) CT_DECL_UNARY(isfinite) CT_DECL_UNARY(contiguous) CT_DECL_UNARY(clone)
CT_DECL_UNARY(detach) CT_DECL_UNARY(sum_all) CT_DECL_UNARY(mean_all) CT_DECL_UNARY(max_all)
CT_DECL_UNARY(min_all) CT_DECL_UNARY(nonzero) CT_DECL_UNARY(cos) CT_DECL_UNARY(sin)
CT_DECL_BINARY(add) CT_DECL_BINARY(sub) CT_DECL_BINARY(mul) CT_DECL_BINARY(div) CT_DECL_BINARY(pow)
CT_DECL_BINARY(maximum) CT_DECL_BINARY(minimum) CT_DECL_BINARY(eq) CT_DECL_BINARY(ne)
CT_DECL_BINARY(lt) CT_DECL_BINARY(le) CT_DECL_BINARY(gt) CT_DECL_BINARY(ge)
CT_DECL_BINARY(logical_and) CT_DECL_BINARY(logical_or) CT_DECL_BINARY(matmul) CT_DECL_BINARY(bmm)
CT_DECL_BINARY(mse_loss) CT_DECL_BINARY(bce_with_logits)
CT_DECL_SCALAR(add_scalar) CT_DECL_SCALAR(mul_scalar) CT_DECL_SCALAR(pow_scalar)
CT_DECL_SCALAR(rsub_scalar) CT_DECL_SCALAR(rdiv_scalar)
CT_DECL_SCALAR(eq_scalar) CT_DECL_SCALAR(lt_scalar) CT_DECL_SCALAR(gt_scalar)
CT_DECL_SCALAR(le_scalar) CT_DECL_SCALAR(ge_scalar) CT_DECL_SCALAR(leaky_relu)
ct_error ct_clamp(ct_tensor a, double lo, double hi, int has_lo, int has_hi, ct_tensor *out);
ct_error ct_where(ct_tensor cond, ct_tensor a, ct_tensor b, ct_tensor *out);

/* ---- reductions ---- */
ct_error ct_sum_dims(ct_tensor a, const int64_t *dims, int n, int keepdim, ct_tensor *out);
ct_error ct_mean_dims(ct_tensor a, const int64_t *dims, int n, int keepdim, ct_tensor *out);
ct_error ct_amax_dims(ct_tensor a, const int64_t *dims, int n, int keepdim, ct_tensor *out);
ct_error ct_amin_dims(ct_tensor a, const int64_t *dims, int n, int keepdim, ct_tensor *out);
ct_error ct_logsumexp(ct_tensor a, const int64_t *dims, int n, int keepdim, ct_tensor *out);
ct_error ct_argmax(ct_tensor a, int64_t dim, int keepdim, ct_tensor *out);
ct_error ct_var_dims(ct_tensor a, const int64_t *dims, int n, int unbiased, int keepdim, ct_tensor *out);

/* ---- shape ---- */
ct_error ct_reshape(ct_tensor a, const int64_t *shape, int n, ct_tensor *out);
ct_error ct_permute(ct_tensor a, const int64_t *dims, int n, ct_tensor *out);
ct_error ct_expand(ct_tensor a, const int64_t *shape, int n, ct_tensor *out);
ct_error ct_flip(ct_tensor a, const int64_t *dims, int n, ct_tensor *out);
ct_error ct_repeat(ct_tensor a, const int64_t *reps, int n, ct_tensor *out);
ct_error ct_roll(ct_tensor a, const int64_t *shifts, const int64_t *dims, int n, ct_tensor *out);
ct_error ct_transpose(ct_tensor a, int64_t d0, int64_t d1, ct_tensor *out);
ct_error ct_narrow(ct_tensor a, int64_t dim, int64_t start, int64_t length, ct_tensor *out);
ct_error ct_squeeze(ct_tensor a, int64_t dim, ct_tensor *out);
ct_error ct_unsqueeze(ct_tensor a, int64_t dim, ct_tensor *out);
ct_error ct_cat(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out);
ct_error ct_stack(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out);
ct_error ct_index_select(ct_tensor a, int64_t dim, ct_tensor index, ct_tensor *out);
ct_error ct_gather(ct_tensor a, int64_t dim, ct_tensor index, ct_tensor *out);
ct_error ct_masked_fill(ct_tensor a, ct_tensor mask, double value, ct_tensor *out);

/* ---- neural network functions ---- */
/* Convolution of any spatial rank (1-3), plain or transposed; bias may be NULL. Arrays have
 * `nd` entries (the spatial rank). */
ct_error ct_convolution(ct_tensor input, ct_tensor weight, ct_tensor bias, int nd,
                        const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                        int transposed, const int64_t *output_padding, int64_t groups, ct_tensor *out);
/* kind: 0 max, 1 avg (count_include_pad = false). */
ct_error ct_pool(ct_tensor input, int kind, int nd, const int64_t *kernel, const int64_t *stride,
                 const int64_t *padding, ct_tensor *out);
ct_error ct_adaptive_pool(ct_tensor input, int kind, int nd, const int64_t *size, ct_tensor *out);
/* Sampling modes of ct_interpolate and ct_grid_sample (and only these codes). */
enum { CT_SAMPLE_NEAREST = 0, CT_SAMPLE_LINEAR = 1 /* linear, bilinear or trilinear by rank */ };
ct_error ct_interpolate(ct_tensor input, int nd, const int64_t *size, int mode, int align_corners, ct_tensor *out);
/* mode: CT_SAMPLE_*; padding: 0 zeros, 1 border, 2 reflection. */
ct_error ct_grid_sample(ct_tensor input, ct_tensor grid, int mode, int padding, int align_corners, ct_tensor *out);
ct_error ct_affine_grid(ct_tensor theta, const int64_t *size, int n, int align_corners, ct_tensor *out);
ct_error ct_softmax(ct_tensor a, int64_t dim, ct_tensor *out);
ct_error ct_log_softmax(ct_tensor a, int64_t dim, ct_tensor *out);
ct_error ct_dropout(ct_tensor a, double p, int train, ct_tensor *out);
ct_error ct_one_hot(ct_tensor a, int64_t num_classes, ct_tensor *out);
ct_error ct_batch_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor running_mean,
                       ct_tensor running_var, int training, double momentum, double eps, ct_tensor *out);
ct_error ct_instance_norm(ct_tensor input, ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out);
ct_error ct_group_norm(ct_tensor input, int64_t groups, ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out);
ct_error ct_layer_norm(ct_tensor input, const int64_t *shape, int n, ct_tensor weight, ct_tensor bias,
                       double eps, ct_tensor *out);
ct_error ct_linear(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out);
/* target: int64 class indices (N, ...) or probabilities shaped like logits. reduction 0 none, 1 mean, 2 sum. */
ct_error ct_cross_entropy(ct_tensor logits, ct_tensor target, ct_tensor weight, int reduction,
                          int64_t ignore_index, double label_smoothing, ct_tensor *out);

/* ---- autograd ---- */
ct_error ct_set_requires_grad(ct_tensor t, int flag);
ct_error ct_requires_grad(ct_tensor t, int *out);
/* *out is set to NULL when the tensor has no gradient. */
ct_error ct_grad(ct_tensor t, ct_tensor *out);
ct_error ct_zero_grad(ct_tensor t);
ct_error ct_backward(ct_tensor t, ct_tensor gradient, int retain_graph);
int ct_set_grad_enabled(int enabled); /* returns the previous mode */
int ct_is_grad_enabled(void);

/* ---- in place (optimizers, EMA, buffers); all run without recording gradients ---- */
ct_error ct_add_(ct_tensor a, ct_tensor b, double alpha);
ct_error ct_mul_scalar_(ct_tensor a, double s);
ct_error ct_add_scalar_(ct_tensor a, double s);
ct_error ct_addcmul_(ct_tensor a, ct_tensor t1, ct_tensor t2, double value);
ct_error ct_addcdiv_(ct_tensor a, ct_tensor t1, ct_tensor t2, double value);
ct_error ct_copy_(ct_tensor dst, ct_tensor src);
ct_error ct_fill_(ct_tensor a, double value);
ct_error ct_lerp_(ct_tensor a, ct_tensor end, double weight);

/* ---- process-wide settings ---- */
ct_error ct_manual_seed(uint64_t seed);
ct_error ct_rng_state(ct_tensor *out);     /* CPU generator state (uint8 tensor) */
ct_error ct_set_rng_state(ct_tensor state);
void ct_set_num_threads(int n);
int ct_get_num_threads(void);
int ct_mkldnn_is_available(void);
/* Sets OpenBLAS's thread count through openblas_set_num_threads when the BLAS in the process is
 * OpenBLAS; returns 1 if it was, 0 otherwise (reference BLAS, MKL). */
int ct_set_blas_threads(int n);
/* Installs Concord's caching CPU allocator for large tensor buffers (freed activation buffers are
 * reused instead of returned to the kernel and page-faulted back in on the next step). Call before
 * creating tensors. Returns 1 when installed. */
int ct_tune_allocator(void);
/* Live and peak bytes of CPU tensors allocated through Concord's allocator (after
 * ct_tune_allocator); ct_allocator_reset_peak sets the peak to the live value. */
void ct_allocator_stats(int64_t *live, int64_t *peak);
void ct_allocator_reset_peak(void);

/* ---- devices, memory formats, precision ---- */
/* libtorch's CUDA support is never linked: libtorch_cuda.so is opened when the process starts if it
 * lies next to the loaded libtorch_cpu.so, so that its kernels register. */
int ct_cuda_loaded(void);                 /* 1 when libtorch_cuda was opened */
const char *ct_cuda_status(void);         /* what was opened, or why CUDA is not there */
const char *ct_libtorch_path(void);       /* the file libtorch_cpu was loaded from */
int ct_cuda_is_available(void);           /* CUDA loaded and at least one device usable */
int ct_cuda_device_count(void);
/* The device's name (NUL-terminated, truncated to `capacity`) and total memory in bytes. */
ct_error ct_cuda_device_info(int index, char *name, int capacity, int64_t *total_bytes);
ct_error ct_cuda_synchronize(int index);
/* The CUDA caching allocator's bytes in use and reserved, now and at their peaks. */
ct_error ct_cuda_memory(int index, int64_t *allocated, int64_t *peak_allocated, int64_t *reserved,
                        int64_t *peak_reserved);
ct_error ct_cuda_reset_peak(int index);
/* 1 when the CPU runs bf16 convolutions and matmuls natively (oneDNN with AVX-512 BF16/AMX). */
int ct_cpu_bf16_supported(void);

enum { CT_FORMAT_CONTIGUOUS = 0, CT_FORMAT_CHANNELS_LAST = 1 /* 4-D */, CT_FORMAT_CHANNELS_LAST_3D = 2 /* 5-D */ };
ct_error ct_contiguous_format(ct_tensor t, int format, ct_tensor *out);
ct_error ct_is_contiguous_format(ct_tensor t, int format, int *out);
/* A copy in page-locked host memory (for non-blocking host -> CUDA copies); needs CUDA. */
ct_error ct_pin_memory(ct_tensor t, ct_tensor *out);
ct_error ct_is_pinned(ct_tensor t, int *out);

/* Autocast (automatic mixed precision) on device type `dev`: ct_autocast_enter switches it on
 * with `dtype` for this thread and returns the previous state, which ct_autocast_exit restores. */
ct_error ct_autocast_enter(int dev, int dtype, int *prev_enabled, int *prev_dtype);
ct_error ct_autocast_exit(int dev, int prev_enabled, int prev_dtype);
ct_error ct_autocast_state(int dev, int *enabled, int *dtype);

/* Multiplies every gradient by inv_scale in place and sets *found_nonfinite to a 0-D float32
 * tensor (on the gradients' device) that is 1 when any gradient holds inf or NaN, else 0: no host
 * synchronisation until the caller reads it. NULL entries (parameters without gradient) are skipped. */
ct_error ct_unscale_grads(const ct_tensor *grads, int n, double inv_scale, ct_tensor *found_nonfinite);

/* Process-wide backend switches. */
enum { CT_BACKEND_CUDNN_BENCHMARK = 0, CT_BACKEND_TF32 = 1 /* cuBLAS and cuDNN */, CT_BACKEND_DETERMINISTIC = 2 };
ct_error ct_set_backend_flag(int flag, int value);
ct_error ct_get_backend_flag(int flag, int *value);

#ifdef __cplusplus
}
#endif
#endif

/* ==== TorchScript modules (jit.cpp) ==== BEGIN
 * A ct_script_module owns one torch::jit::Module; free it with ct_jit_free exactly once.
 * Attribute names may not contain dots. Extra files are byte strings stored beside the module in
 * its archive (`extra/NAME`, what PyTorch's `_extra_files` reads). */
#ifndef CONCORD_CTORCH_JIT_H
#define CONCORD_CTORCH_JIT_H
#ifdef __cplusplus
extern "C" {
#endif
typedef struct ct_script_module_s *ct_script_module;
ct_error ct_jit_new(const char *name, ct_script_module *out);
void ct_jit_free(ct_script_module m);
/* Registers (detached, sharing storage) `t` as a parameter (is_parameter = 1) or buffer. */
ct_error ct_jit_add_tensor(ct_script_module m, const char *name, ct_tensor t, int is_parameter);
/* Compiles TorchScript source (methods taking `self`) into the module. */
ct_error ct_jit_define(ct_script_module m, const char *source);
ct_error ct_jit_set_training(ct_script_module m, int on);
ct_error ct_jit_save(ct_script_module m, const char *path, const char *const *names, const char *const *data,
                     const size_t *sizes, int n);
/* Loads a saved module onto the CPU in eval mode. */
ct_error ct_jit_load(const char *path, ct_script_module *out);
/* One extra file of a saved module: *out is a malloc'ed, NUL-terminated copy (free with
 * ct_error_free), *size its length; an absent file reads as empty. */
ct_error ct_jit_read_extra(const char *path, const char *name, char **out, size_t *size);
/* Runs forward(inputs...) without recording gradients; the result must be a tensor. */
ct_error ct_jit_forward(ct_script_module m, const ct_tensor *inputs, int n, ct_tensor *out);

/* ==== Data parallelism on c10d (distributed.cpp) ==== */
typedef struct ct_dist_s *ct_dist;
typedef struct ct_reducer_s *ct_reducer;
/* Joins a group of world_size processes: rank 0 hosts a TCPStore on host:port, every rank connects
 * to it, world sizes are compared (a mismatch or a rank started twice is an error naming both),
 * then a Gloo process group forms. timeout_ms bounds the join and every collective.
 * interface_host: the address this rank's Gloo device binds to (NULL or "" = this host's name). */
ct_error ct_dist_init(const char *host, int port, int rank, int world_size, int64_t timeout_ms, const char *interface_host,
                      ct_dist *out);
void ct_dist_free(ct_dist d);
/* In place, one collective per tensor. */
ct_error ct_dist_broadcast(ct_dist d, ct_tensor *tensors, int n, int root);
/* op: 0 sum, 1 max, 2 min. In place, one collective per tensor. */
ct_error ct_dist_allreduce(ct_dist d, ct_tensor *tensors, int n, int op);
/* Small values through the rendezvous store (keys live under a prefix of their own). */
ct_error ct_dist_store_set(ct_dist d, const char *key, const void *data, size_t n);
/* Waits up to timeout_ms for key: *found 0 when it did not appear; otherwise *data (free with
 * ct_dist_buffer_free) holds *n bytes. */
ct_error ct_dist_store_get(ct_dist d, const char *key, int64_t timeout_ms, int *found, void **data, size_t *n);
ct_error ct_dist_store_add(ct_dist d, const char *key, int64_t amount, int64_t *out);
void ct_dist_buffer_free(void *data);
/* c10d's Reducer over params (each must require grad): while backward runs, gradients are averaged
 * over the group in buckets of bucket_bytes. find_unused: walk the graph from the outputs given
 * to ct_reducer_prepare and mark parameters it does not reach as ready. */
ct_error ct_reducer_new(ct_dist d, ct_tensor *params, int n, int64_t bucket_bytes, int find_unused, ct_reducer *out);
/* Before each backward (after the forward): what DistributedDataParallel.forward does. */
ct_error ct_reducer_prepare(ct_reducer r, ct_tensor *outputs, int n);
void ct_reducer_free(ct_reducer r);
#ifdef __cplusplus
}
#endif
#endif
/* ==== TorchScript modules (jit.cpp) ==== END */
