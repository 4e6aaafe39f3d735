// ProcessGroupNCCL from libtorch_cuda; compiled with NCCL when CMake found the CUDA toolkit and
// nccl.h (HERD_HAVE_NCCL), otherwise a clear error at run time.
#include "dist/backends.h"

#ifdef HERD_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/error.h"

namespace herd::dist {

bool nccl_compiled() {
#ifdef HERD_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    at::Device device) {
#ifdef HERD_HAVE_NCCL
  c10::cuda::set_device(device.index());  // NCCL communicators belong to the current device
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
  pg->setBoundDeviceId(device);
  pg->eagerConnectSingleDevice(device);  // a bad setup fails here, not at the first step
  return pg;
#else
  (void)store, (void)rank, (void)size, (void)timeout, (void)device;
  throw Error(
      str("train.backend: nccl requested but this herd was built without NCCL (no CUDA "
          "toolkit or nccl.h at configure time); use train.backend: gloo"));
#endif
}

}  // namespace herd::dist
