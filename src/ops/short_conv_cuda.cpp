// CUDA half of short_conv: allocates, picks the current stream and calls the launchers of
// kernels/short_conv.cu (which never see torch headers).
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include "core/error.h"
#include "kernels/short_conv.cuh"
#include "ops/short_conv_impl.h"

namespace herd::ops::detail {
namespace {

kernels::Strided3 dims(const torch::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.stride(0), t.stride(1), t.stride(2)};
}

void check_launch(int err, const char* what) {
  HERD_CHECK(err == 0, "short_conv: CUDA ", what, " failed: ", kernels::cuda_error_string(err));
}

// A [B, C, L] output in the layout the kernel writes for input dims d (short_conv_point_of):
// channels-last ([B, L, C] memory) when the input is, contiguous rows otherwise.
torch::Tensor output_like(const kernels::Strided3& d, const torch::TensorOptions& o) {
  if (kernels::short_conv_channels_last(d)) return torch::empty({d.B, d.L, d.C}, o).transpose(1, 2);
  return torch::empty({d.B, d.C, d.L}, o);
}

// Calls f.template operator()<T, W>() for the launcher types of x and w: float/float,
// double/double, bfloat16 (as uint16_t) with float or bfloat16 taps.
template <typename F>
void dispatch_types(const torch::Tensor& x, const torch::Tensor& w, F&& f) {
  const auto xt = x.scalar_type(), wt = w.scalar_type();
  if (xt == torch::kBFloat16 && wt == torch::kFloat) return f(uint16_t{}, float{});
  if (xt == torch::kBFloat16 && wt == torch::kBFloat16) return f(uint16_t{}, uint16_t{});
  if (xt == torch::kFloat && wt == torch::kFloat) return f(float{}, float{});
  if (xt == torch::kDouble && wt == torch::kDouble) return f(double{}, double{});
  throw Error(str("short_conv: no CUDA kernel for ", xt, " activations with ", wt, " taps"));
}

// data_ptr as the launcher's element type (bfloat16 as its uint16_t bits); null if undefined.
template <typename T>
T* raw(const torch::Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

}  // namespace

torch::Tensor short_conv_forward_cuda(const torch::Tensor& x, const torch::Tensor& w,
                                      const torch::Tensor& bias) {
  c10::DeviceGuard guard(x.device());
  const auto xd = dims(x);
  auto y = output_like(xd, x.options());
  dispatch_types(x, w, [&](auto t, auto wt) {
    using T = decltype(t);
    using W = decltype(wt);
    check_launch(kernels::short_conv_forward_cuda<T, W>(raw<const T>(x), xd, raw<const W>(w),
                                                        w.size(2), raw<const W>(bias), raw<T>(y),
                                                        at::cuda::getCurrentCUDAStream().stream()),
                 "forward");
  });
  return y;
}

std::array<torch::Tensor, 3> short_conv_backward_cuda(const torch::Tensor& x,
                                                      const torch::Tensor& w,
                                                      const torch::Tensor& dy, bool need_dx,
                                                      bool need_dw, bool need_dbias) {
  c10::DeviceGuard guard(x.device());
  const auto xd = dims(x), dyd = dims(dy);
  torch::Tensor dx, dw, db;
  if (need_dx) dx = output_like(dyd, x.options());
  if (need_dw) dw = torch::empty_like(w, at::MemoryFormat::Contiguous);
  if (need_dbias) db = torch::empty({x.size(1)}, w.options());
  dispatch_types(x, w, [&](auto t, auto wt) {
    using T = decltype(t);
    using W = decltype(wt);
    check_launch(kernels::short_conv_backward_cuda<T, W>(
                     raw<const T>(x), xd, raw<const W>(w), w.size(2), raw<const T>(dy), dyd,
                     raw<T>(dx), raw<W>(dw), raw<W>(db), at::cuda::getCurrentCUDAStream().stream()),
                 "backward");
  });
  return {dx, dw, db};
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
