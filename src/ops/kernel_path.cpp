#include "ops/kernel_path.h"

#include <cstdlib>
#include <cstring>

namespace herd::ops {

const char* path_name(KernelPath p) {
  switch (p) {
    case KernelPath::cpu:
      return "cpu";
    case KernelPath::cuda:
      return "cuda";
    case KernelPath::reference:
      break;
  }
  return "reference";
}

bool fused_kernels_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("HERD_KERNELS");
    return !(v && std::strcmp(v, "reference") == 0);
  }();
  return enabled;
}

bool cuda_kernels_compiled() {
#ifdef HERD_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

std::vector<std::string> fused_op_lines() {
  const bool cu = cuda_kernels_compiled();
  const std::string tail = std::string(", reference (any)") +
                           (fused_kernels_enabled() ? "" : "  [off: HERD_KERNELS=reference]");
  // One entry per op with a kernels/<op>.cuh.
  return {
      std::string("short_conv    cpu (float, double)") + (cu ? ", cuda (float, double)" : "") +
          tail,
      std::string("squared_relu  ") + (cu ? "cuda (float, double, bfloat16), " : "") +
          "cpu kernel not dispatched (no clear win over ATen)" + tail,
  };
}

}  // namespace herd::ops
