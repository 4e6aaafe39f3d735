// CUDA half of add_layer_norm: allocation, current stream, and kernels/add_layer_norm.cu.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "kernels/add_layer_norm.cuh"
#include "ops/add_layer_norm_impl.h"

namespace herd::ops::detail {
namespace {

void check_launch(int err, const char* what) {
  HERD_CHECK(err == 0, "add_layer_norm: CUDA ", what, " failed: ", kernels::cuda_error_string(err));
}

// The launchers take bfloat16 as its uint16_t bits; float and double pass through.
template <typename F>
void dispatch(torch::ScalarType t, F&& f) {
  if (t == torch::kFloat) return f(float{});
  if (t == torch::kDouble) return f(double{});
  HERD_CHECK(t == torch::kBFloat16, "add_layer_norm: CUDA kernel has no ", t, " version");
  f(uint16_t{});
}

template <typename T>
T* raw(const torch::Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

void* stream() {
  return at::cuda::getCurrentCUDAStream().stream();
}

}  // namespace

AddNormForward add_layer_norm_forward_cuda(const torch::Tensor& h, const torch::Tensor& delta,
                                           const torch::Tensor& weight, const torch::Tensor& bias,
                                           double eps) {
  c10::DeviceGuard guard(h.device());
  const int64_t D = h.size(-1), rows = h.numel() / D;
  AddNormForward out;
  if (delta.defined()) out.sum = torch::empty_like(h);
  out.normed = torch::empty_like(h);
  const auto acc = h.options().dtype(acc_dtype(h.scalar_type()));
  out.mean = torch::empty({rows}, acc);
  out.rstd = torch::empty({rows}, acc);
  if (delta.defined() && delta.scalar_type() != h.scalar_type()) {
    HERD_CHECK(h.scalar_type() == torch::kFloat && delta.scalar_type() == torch::kBFloat16,
               "add_layer_norm: no CUDA kernel for ", h.scalar_type(), " + ", delta.scalar_type());
    check_launch(kernels::add_layer_norm_forward_cuda<float, uint16_t>(
                     raw<float>(h), raw<uint16_t>(delta), raw<float>(weight), raw<float>(bias), eps,
                     raw<float>(out.sum), raw<float>(out.normed), out.mean.data_ptr(),
                     out.rstd.data_ptr(), rows, D, stream()),
                 "forward");
    return out;
  }
  dispatch(h.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(
        kernels::add_layer_norm_forward_cuda<T, T>(
            raw<T>(h), raw<T>(delta), raw<T>(weight), raw<T>(bias), eps, raw<T>(out.sum),
            raw<T>(out.normed), out.mean.data_ptr(), out.rstd.data_ptr(), rows, D, stream()),
        "forward");
  });
  return out;
}

AddNormGrads add_layer_norm_backward_cuda(const torch::Tensor& s, const torch::Tensor& weight,
                                          const torch::Tensor& mean, const torch::Tensor& rstd,
                                          const torch::Tensor& dy, const torch::Tensor& ds_in,
                                          bool need_ds, bool need_dweight, bool need_dbias) {
  c10::DeviceGuard guard(s.device());
  const int64_t D = s.size(-1), rows = s.numel() / D;
  AddNormGrads g;
  if (need_ds) g.ds = torch::empty_like(s);
  if (need_dweight) g.dweight = torch::empty_like(weight);
  if (need_dbias) g.dbias = torch::empty_like(weight);
  torch::Tensor partial;
  if (need_dweight || need_dbias)
    partial = torch::empty({2 * std::min(rows, kernels::kAddLayerNormParamBlocks), D},
                           s.options().dtype(acc_dtype(s.scalar_type())));
  dispatch(s.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(kernels::add_layer_norm_backward_cuda<T>(
                     raw<T>(s), raw<T>(weight), mean.data_ptr(), rstd.data_ptr(), raw<T>(dy),
                     raw<T>(ds_in), raw<T>(g.ds), raw<T>(g.dweight), raw<T>(g.dbias),
                     partial.defined() ? partial.data_ptr() : nullptr, rows, D, stream()),
                 "backward");
  });
  return g;
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
