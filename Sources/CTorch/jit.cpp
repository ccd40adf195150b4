// TorchScript modules through libtorch's C++ script API: build a module from tensors and
// TorchScript source, save it with extra files, load one back and run its forward. Every entry
// point runs inside CT_TRY (boundary.h), as in shim.cpp.
#include "ctorch.h"
#include "boundary.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <string>
#include <unordered_map>
#include <vector>

struct ct_script_module_s {
    torch::jit::Module module;
};

namespace {
torch::jit::Module &M(ct_script_module h) {
    if (!h) throw std::invalid_argument("null script module handle");
    return h->module;
}
const char *checked(const char *s, const char *what) {
    if (!s) throw std::invalid_argument(std::string("null ") + what);
    return s;
}
}  // namespace

extern "C" {

ct_error ct_jit_new(const char *name, ct_script_module *out) {
    CT_TRY(*out = new ct_script_module_s{torch::jit::Module(checked(name, "module name"))})
}

void ct_jit_free(ct_script_module m) { delete m; }

ct_error ct_jit_add_tensor(ct_script_module m, const char *name, ct_tensor t, int is_parameter) {
    CT_TRY(
        // Detached: the exported module owns plain values, not the training graph's leaves.
        auto value = T(t).detach();
        if (is_parameter) M(m).register_parameter(checked(name, "attribute name"), value, false);
        else M(m).register_buffer(checked(name, "attribute name"), value))
}

ct_error ct_jit_define(ct_script_module m, const char *source) {
    CT_TRY(M(m).define(checked(source, "TorchScript source")))
}

ct_error ct_jit_set_training(ct_script_module m, int on) {
    CT_TRY(if (on) M(m).train(true); else M(m).eval())
}

ct_error ct_jit_save(ct_script_module m, const char *path, const char *const *names, const char *const *data,
                     const size_t *sizes, int n) {
    CT_TRY(
        torch::jit::ExtraFilesMap extra;
        for (int i = 0; i < n; ++i) extra[checked(names[i], "extra file name")] = std::string(data[i], sizes[i]);
        M(m).save(checked(path, "path"), extra))
}

ct_error ct_jit_load(const char *path, ct_script_module *out) {
    CT_TRY(
        auto module = torch::jit::load(checked(path, "path"), c10::Device(c10::kCPU));
        module.eval();
        *out = new ct_script_module_s{std::move(module)})
}

ct_error ct_jit_read_extra(const char *path, const char *name, char **out, size_t *size) {
    CT_TRY(
        torch::jit::ExtraFilesMap extra{{checked(name, "extra file name"), std::string()}};
        auto module = torch::jit::load(checked(path, "path"), c10::Device(c10::kCPU), extra);
        (void)module;
        const std::string &value = extra[name];
        char *copy = static_cast<char *>(std::malloc(value.size() + 1));
        if (!copy) throw std::bad_alloc();
        std::memcpy(copy, value.data(), value.size());
        copy[value.size()] = 0;
        *out = copy;
        *size = value.size())
}

ct_error ct_jit_forward(ct_script_module m, const ct_tensor *inputs, int n, ct_tensor *out) {
    CT_TRY(
        c10::AutoGradMode no_grad(false);
        std::vector<c10::IValue> args;
        for (int i = 0; i < n; ++i) args.emplace_back(T(inputs[i]));
        auto result = M(m).forward(std::move(args));
        if (!result.isTensor()) throw std::runtime_error("the module's forward did not return a tensor");
        *out = wrap(result.toTensor()))
}

}  // extern "C"
