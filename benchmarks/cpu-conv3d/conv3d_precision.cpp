// One 3D convolution layer, forward + backward, on the CPU in four configurations: NCDHW or
// channels-last (NDHWC) memory format, fp32 or bf16 (through CPU autocast, as Concord's Autocast
// does). Prints GFLOP/s per configuration (3 convolutions per step: forward, grad input, grad weight).
//
//   ./run [LIBTORCH]        builds this file against LIBTORCH (default: Debian's /usr) and runs it
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

static void set_cpu_autocast(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, on);
#else
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
#endif
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    int size = argc > 2 ? std::atoi(argv[2]) : 64;
    int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
    at::set_num_threads(threads);
    const int64_t batch = 2, channels = 32, k = 3;
    double flops = 3.0 * 2.0 * batch * channels * channels * k * k * k * double(size) * size * size;
    std::printf("libtorch %s, %d threads, conv3d %lld -> %lld, %d^3 kernel, batch %lld x %d^3, forward + backward\n",
                TORCH_VERSION, threads, (long long)channels, (long long)channels, (int)k, (long long)batch, size);
    for (bool channels_last : {false, true}) {
        for (bool bf16 : {false, true}) {
            auto format = channels_last ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::Contiguous;
            auto x = at::randn({batch, channels, size, size, size}).contiguous(format).set_requires_grad(true);
            auto w = (at::randn({channels, channels, k, k, k}) * 0.05).contiguous(format).set_requires_grad(true);
            std::vector<double> times;
            for (int i = 0; i < repeats + 1; ++i) {
                auto start = std::chrono::steady_clock::now();
                set_cpu_autocast(bf16);
                auto y = at::conv3d(x, w, {}, 1, 1);
                auto loss = y.to(at::kFloat).square().mean();
                set_cpu_autocast(false);
                at::autocast::clear_cache();
                loss.backward();
                x.mutable_grad().reset();
                w.mutable_grad().reset();
                double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                if (i > 0) times.push_back(s);  // the first run is warm-up
            }
            std::sort(times.begin(), times.end());
            double median = times[times.size() / 2];
            std::printf("  %-13s %-4s median %.3f s (min %.3f)  %.0f GFLOP/s\n", channels_last ? "channels-last" : "NCDHW",
                        bf16 ? "bf16" : "fp32", median, times.front(), flops / median / 1e9);
        }
    }
}
