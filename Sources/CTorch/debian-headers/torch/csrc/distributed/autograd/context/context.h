// Debian's libtorch-dev 1.13 ships c10d/reducer.hpp but not the distributed-autograd header it
// includes. reducer.hpp needs only two names from it: the type of a gradient callback (checked
// by a static_assert) and the context pointer it holds as a member (a shared_ptr, whose size does
// not depend on the pointee). Both are declared here with libtorch 1.13's definitions; Concord
// never creates or touches a distributed-autograd context. Only on the include path of builds
// against Debian's libtorch (Package.swift); PyPI's wheels ship the real header.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
  public:
    using GradCallback = std::function<bool(at::Tensor &)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
