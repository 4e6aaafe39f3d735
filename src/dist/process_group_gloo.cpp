// ProcessGroupGloo from libtorch_cpu. The wheel's header needs USE_C10D_GLOO and Gloo's names
// (src/dist/gloo_api, see its README).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "dist/backends.h"

namespace herd::dist {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout) {
  // create_default picks the interface of this host's name, else loopback (GLOO_SOCKET_IFNAME
  // overrides, as with torch.distributed).
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace herd::dist
