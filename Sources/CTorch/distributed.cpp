// Data-parallel training on libtorch's c10d: a TCPStore for the rendezvous (rank 0 hosts it), a
// ProcessGroupGloo for the collectives, and c10d's Reducer, which all-reduces gradients in buckets
// from autograd hooks while backward runs. Every entry point runs inside CT_TRY (boundary.h), as
// in shim.cpp; what differs between libtorch 1.13 and 2.x (ProcessGroup vs Backend, the Reducer's
// constructor) lives in compat.h.
#define CT_COMPAT_C10D 1
// ProcessGroupGloo.hpp declares its class only under this flag, which libtorch itself was built with.
#define USE_C10D_GLOO 1
#include "ctorch.h"
#include "boundary.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct ct_dist_s {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
    // What the Reducer takes: the Gloo group itself (1.x) or a ProcessGroup wrapping it (2.x).
    c10::intrusive_ptr<c10d::ProcessGroup> group;
    int rank = 0;
    int size = 1;
    std::chrono::milliseconds timeout{0};
};

struct ct_reducer_s {
    std::unique_ptr<c10d::Reducer> reducer;
};

namespace {

ct_dist_s &D(ct_dist h) {
    if (!h) throw std::invalid_argument("null process group handle");
    return *h;
}

std::vector<uint8_t> bytes(const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string text(const std::vector<uint8_t> &b) { return std::string(b.begin(), b.end()); }

// Waits for `key` in the store at most `timeout`; false when it did not appear in time.
bool wait_for(c10d::Store &store, const std::string &key, std::chrono::milliseconds timeout) {
    try {
        store.wait({key}, timeout);
        return true;
    } catch (const c10::Error &e) {
        std::string what = e.what_without_backtrace();
        if (what.find("imeout") != std::string::npos || what.find("imed out") != std::string::npos) return false;
        throw;
    }
}

void wait_work(const c10::intrusive_ptr<c10d::Work> &work, std::chrono::milliseconds timeout) {
    if (!work->wait(timeout)) throw std::runtime_error("collective did not complete");
}

}  // namespace

extern "C" {

ct_error ct_dist_init(const char *host, int port, int rank, int world_size, int64_t timeout_ms, const char *interface_host,
                      ct_dist *out) {
    CT_TRY(
        if (!host || !*host) throw std::invalid_argument("no master address");
        if (port <= 0 || port > 65535) throw std::invalid_argument("master port " + std::to_string(port) + " is not in 1...65535");
        if (world_size < 1) throw std::invalid_argument("world size " + std::to_string(world_size) + " is below 1");
        if (rank < 0 || rank >= world_size)
            throw std::invalid_argument("rank " + std::to_string(rank) + " is outside 0..<" + std::to_string(world_size));
        if (timeout_ms <= 0) throw std::invalid_argument("timeout must be positive");
        auto timeout = std::chrono::milliseconds(timeout_ms);

        c10d::TCPStoreOptions options;
        options.port = static_cast<std::uint16_t>(port);
        options.isServer = rank == 0;
        options.numWorkers = static_cast<std::size_t>(world_size);
        // Nobody waits inside the constructor: the join below checks world sizes and ranks first,
        // so a mismatch is an error naming both sides instead of a wait until the timeout.
        options.waitWorkers = false;
        options.timeout = timeout;
        c10::intrusive_ptr<c10d::Store> store;
        try {
            store = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
        } catch (const std::exception &e) {
            std::string what = e.what();
            if (const auto *c10error = dynamic_cast<const c10::Error *>(&e)) what = c10error->what_without_backtrace();
            if (rank == 0)
                throw std::runtime_error("rank 0 could not host the rendezvous store on port " + std::to_string(port) +
                                         " (is the port in use? choose another with MASTER_PORT or --master-port): " + what);
            throw std::runtime_error("rank " + std::to_string(rank) + " could not reach the rendezvous store of rank 0 at " +
                                     host + ":" + std::to_string(port) + " within " + std::to_string(timeout_ms / 1000) +
                                     " s: " + what);
        }

        // The join: every rank says its world size; a rank number taken twice is refused.
        const std::string me = std::to_string(rank);
        if (store->add("concord/rank-taken/" + me, 1) > 1)
            throw std::runtime_error("rank " + me + " was started twice (check RANK / SLURM_PROCID)");
        store->set("concord/world-size/" + me, bytes(std::to_string(world_size)));
        if (rank == 0) {
            std::string verdict = "ok";
            for (int r = 1; r < world_size && verdict == "ok"; r++) {
                const std::string key = "concord/world-size/" + std::to_string(r);
                if (!wait_for(*store, key, timeout)) {
                    verdict = "rank " + std::to_string(r) + " did not join within " + std::to_string(timeout_ms / 1000) +
                              " s (of a world of " + std::to_string(world_size) + ")";
                } else if (std::stoi(text(store->get(key))) != world_size) {
                    verdict = "rank " + std::to_string(r) + " was started with world size " + text(store->get(key)) +
                              ", rank 0 with " + std::to_string(world_size);
                }
            }
            store->set("concord/join", bytes(verdict));
            if (verdict != "ok") throw std::runtime_error(verdict);
        } else {
            if (!wait_for(*store, "concord/world-size/0", timeout))
                throw std::runtime_error("rank 0 did not join within " + std::to_string(timeout_ms / 1000) + " s");
            std::string theirs = text(store->get("concord/world-size/0"));
            if (std::stoi(theirs) != world_size)
                throw std::runtime_error("rank " + me + " was started with world size " + std::to_string(world_size) +
                                         ", rank 0 with " + theirs);
            if (!wait_for(*store, "concord/join", timeout))
                throw std::runtime_error("rank 0 did not finish the join within " + std::to_string(timeout_ms / 1000) + " s");
            std::string verdict = text(store->get("concord/join"));
            if (verdict != "ok") throw std::runtime_error("rank 0 stopped the join: " + verdict);
        }

        auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
        const std::string bind = interface_host && *interface_host ? interface_host : "";
        gloo_options->devices.push_back(bind.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                                     : c10d::ProcessGroupGloo::createDeviceForHostname(bind));
        // The Gloo group's own keys under a prefix, apart from the join's.
        auto prefixed = c10::make_intrusive<c10d::PrefixStore>("concord/gloo", store);
        auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world_size, gloo_options);
        auto handle = std::make_unique<ct_dist_s>();
        handle->store = store;
        handle->gloo = gloo;
        handle->group = ctorch_compat::process_group_for_reducer(prefixed, gloo, rank, world_size);
        handle->rank = rank;
        handle->size = world_size;
        handle->timeout = timeout;
        *out = handle.release();
    )
}

void ct_dist_free(ct_dist d) {
    try {
        delete d;
    } catch (...) {
        // A group whose peers are gone may fail to shut down cleanly; the process is exiting.
    }
}

ct_error ct_dist_broadcast(ct_dist d, ct_tensor *tensors, int n, int root) {
    CT_TRY(
        auto &g = D(d);
        if (root < 0 || root >= g.size) throw std::invalid_argument("broadcast root " + std::to_string(root) + " outside the world");
        for (int i = 0; i < n; i++) {
            // One call per tensor: c10d reads a vector of tensors as one tensor's replicas.
            std::vector<at::Tensor> one{T(tensors[i])};
            c10d::BroadcastOptions options;
            options.rootRank = root;
            options.timeout = g.timeout;
            wait_work(g.gloo->broadcast(one, options), g.timeout);
        }
    )
}

ct_error ct_dist_allreduce(ct_dist d, ct_tensor *tensors, int n, int op) {
    CT_TRY(
        auto &g = D(d);
        c10d::AllreduceOptions options;
        switch (op) {
        case 0: options.reduceOp = c10d::ReduceOp::SUM; break;
        case 1: options.reduceOp = c10d::ReduceOp::MAX; break;
        case 2: options.reduceOp = c10d::ReduceOp::MIN; break;
        default: throw std::invalid_argument("unknown reduce op code " + std::to_string(op) + " (0 sum, 1 max, 2 min)");
        }
        options.timeout = g.timeout;
        for (int i = 0; i < n; i++) {
            std::vector<at::Tensor> one{T(tensors[i])};
            wait_work(g.gloo->allreduce(one, options), g.timeout);
        }
    )
}

ct_error ct_dist_store_set(ct_dist d, const char *key, const void *data, size_t n) {
    CT_TRY(
        auto &g = D(d);
        if (!key) throw std::invalid_argument("null key");
        const auto *p = static_cast<const uint8_t *>(data);
        g.store->set(std::string("concord/user/") + key, std::vector<uint8_t>(p, p + n));
    )
}

ct_error ct_dist_store_get(ct_dist d, const char *key, int64_t timeout_ms, int *found, void **data, size_t *n) {
    CT_TRY(
        auto &g = D(d);
        if (!key) throw std::invalid_argument("null key");
        *found = 0; *data = nullptr; *n = 0;
        const std::string full = std::string("concord/user/") + key;
        if (!wait_for(*g.store, full, std::chrono::milliseconds(timeout_ms))) return nullptr;
        auto value = g.store->get(full);
        void *buffer = std::malloc(value.empty() ? 1 : value.size());
        if (!buffer) throw std::bad_alloc();
        if (!value.empty()) std::memcpy(buffer, value.data(), value.size());
        *data = buffer; *n = value.size(); *found = 1;
    )
}

ct_error ct_dist_store_add(ct_dist d, const char *key, int64_t amount, int64_t *out) {
    CT_TRY(
        auto &g = D(d);
        if (!key) throw std::invalid_argument("null key");
        *out = g.store->add(std::string("concord/user/") + key, amount);
    )
}

void ct_dist_buffer_free(void *data) { std::free(data); }

ct_error ct_reducer_new(ct_dist d, ct_tensor *params, int n, int64_t bucket_bytes, int find_unused, ct_reducer *out) {
    CT_TRY(
        auto &g = D(d);
        if (n <= 0) throw std::invalid_argument("the reducer needs at least one parameter");
        if (bucket_bytes <= 0) throw std::invalid_argument("bucket size must be positive");
        std::vector<at::Tensor> tensors;
        for (int i = 0; i < n; i++) {
            const auto &t = T(params[i]);
            if (!t.requires_grad()) throw std::invalid_argument("parameter " + std::to_string(i) + " does not require grad");
            tensors.push_back(t);
        }
        // As PyTorch's DistributedDataParallel: a small first bucket (its gradients, those of the
        // last layers, arrive first), then buckets of bucket_bytes, in reverse parameter order.
        const size_t first_bucket = std::min<size_t>(1024 * 1024, static_cast<size_t>(bucket_bytes));
        auto assignment = c10d::compute_bucket_assignment_by_size(
            tensors, {first_bucket, static_cast<size_t>(bucket_bytes)}, std::vector<bool>(tensors.size(), false));
        auto indices = std::get<0>(assignment);
        auto limits = std::get<1>(assignment);
        std::reverse(indices.begin(), indices.end());
        std::reverse(limits.begin(), limits.end());
        auto handle = std::make_unique<ct_reducer_s>();
        handle->reducer = ctorch_compat::make_reducer(tensors, indices, limits, g.group, bucket_bytes, find_unused != 0,
                                                      static_cast<int64_t>(first_bucket));
        *out = handle.release();
    )
}

ct_error ct_reducer_prepare(ct_reducer r, ct_tensor *outputs, int n) {
    CT_TRY(
        if (!r) throw std::invalid_argument("null reducer handle");
        auto &reducer = *r->reducer;
        // What DistributedDataParallel.forward does around the forward pass: rebuild the buckets
        // in gradient-arrival order after the first iteration (a collective), mark the forward,
        // and name the outputs whose graph decides which parameters go unused.
        reducer.rebuild_buckets();
        reducer.prepare_for_forward();
        std::vector<at::Tensor> roots;
        for (int i = 0; i < n; i++) roots.push_back(T(outputs[i]));
        reducer.prepare_for_backward(roots);
    )
}

void ct_reducer_free(ct_reducer r) {
    try {
        delete r;
    } catch (...) {
        // ~Reducer is noexcept(false); a reducer left mid-reduction by a failed peer may throw.
    }
}

}  // extern "C"
