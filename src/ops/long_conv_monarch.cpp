#include "ops/long_conv_monarch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "core/error.h"
#include "kernels/monarch_conv.cuh"

namespace herd::ops {
namespace {

std::atomic<int>& path_slot() {
  static std::atomic<int> slot{[] {
    const char* env = std::getenv("HERD_LONG_CONV_CUDA");
    return static_cast<int>(env && *env ? parse_long_conv_cuda_path(env)
                                        : LongConvCudaPath::automatic);
  }()};
  return slot;
}

}  // namespace

LongConvCudaPath long_conv_cuda_path() {
  return static_cast<LongConvCudaPath>(path_slot().load());
}

LongConvCudaPath set_long_conv_cuda_path(LongConvCudaPath p) {
  return static_cast<LongConvCudaPath>(path_slot().exchange(static_cast<int>(p)));
}

const char* long_conv_cuda_path_name(LongConvCudaPath p) {
  switch (p) {
    case LongConvCudaPath::cufft:
      return "cufft";
    case LongConvCudaPath::monarch:
      return "monarch";
    default:
      return "auto";
  }
}

LongConvCudaPath parse_long_conv_cuda_path(const std::string& s) {
  for (auto p : {LongConvCudaPath::automatic, LongConvCudaPath::cufft, LongConvCudaPath::monarch})
    if (s == long_conv_cuda_path_name(p)) return p;
  throw Error(str("HERD_LONG_CONV_CUDA: expected auto|cufft|monarch, got \"", s, "\""));
}

std::string long_conv_cuda_path_summary() {
  std::string device = "no CUDA device";
#ifdef HERD_HAVE_CUDA_KERNELS
  if (const int64_t n = kernels::monarch_conv_max_fft()) device = str("this device: N <= ", n);
#endif
  return str(long_conv_cuda_path_name(long_conv_cuda_path()),
             " (HERD_LONG_CONV_CUDA=auto|cufft|monarch): bfloat16 rows through the Monarch "
             "tensor-core kernel for N ",
             kernels::kMonarchMinFft, "..", kernels::kMonarchMaxFft, " (", device,
             "), cuFFT otherwise");
}

int64_t long_conv_monarch_size(int64_t L, int64_t Lk, int64_t Lk_rev) {
  const int64_t Lf = std::min(Lk, L);
  int64_t need = std::max<int64_t>(L + Lf - 1, 1);
  if (Lk_rev >= 0) need = std::max(need, L + std::min(Lk_rev, L - 1));
  int64_t N = kernels::kMonarchMinFft;
  while (N < need) N *= 2;
  return N;
}

}  // namespace herd::ops
