// CPU fast path of ssm_vandermonde: kernels/ssm_kernel.cuh in at::parallel_for over channels.
// Per channel, a table exp(j w_n) (j < kSsmTile) is built once; each tile of positions then
// needs one exact exp(l0 w_n) per mode. Nothing of size (H, N/2, L) is ever allocated.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "kernels/ssm_kernel.cuh"
#include "ops/ssm_kernel_impl.h"

namespace herd::ops::detail {
namespace {

using kernels::Cplx;
using kernels::kSsmTile;

// exp(j w_n) for j < kSsmTile as re and im planes of [modes][kSsmTile].
template <typename T>
void fill_table(const Cplx<T>* w, int64_t modes, std::vector<T>& re, std::vector<T>& im) {
  re.resize(modes * kSsmTile);
  im.resize(modes * kSsmTile);
  for (int64_t n = 0; n < modes; ++n)
    for (int64_t j = 0; j < kSsmTile; ++j) {
      const Cplx<T> e = kernels::ssm_power(w[n], j);
      re[n * kSsmTile + j] = e.re;
      im[n * kSsmTile + j] = e.im;
    }
}

template <typename T>
void forward(const Cplx<T>* Ct, const Cplx<T>* w, int64_t H, int64_t N2, int64_t L, T* K) {
  at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> tre, tim;
    std::vector<Cplx<T>> q(N2);
    for (int64_t h = h0; h < h1; ++h) {
      const Cplx<T>* c = Ct + h * N2;
      const Cplx<T>* wh = w + h * N2;
      fill_table(wh, N2, tre, tim);
      for (int64_t l0 = 0; l0 < L; l0 += kSsmTile) {
        for (int64_t n = 0; n < N2; ++n) q[n] = kernels::cmul(c[n], kernels::ssm_power(wh[n], l0));
        kernels::ssm_forward_tile(q.data(), N2, tre.data(), tim.data(), kSsmTile,
                                  std::min(kSsmTile, L - l0), K + h * L + l0);
      }
    }
  });
}

template <typename T>
void backward(const Cplx<T>* Ct, const Cplx<T>* w, const T* g, int64_t H, int64_t N2, int64_t L,
              Cplx<T>* gCt, Cplx<T>* gw) {
  at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<T> tre, tim;
    for (int64_t h = h0; h < h1; ++h) {
      const Cplx<T>* wh = w + h * N2;
      const T* gh = g + h * L;
      fill_table(wh, N2, tre, tim);
      for (int64_t n = 0; n < N2; ++n) {
        Cplx<T> gC{T(0), T(0)}, S{T(0), T(0)};
        for (int64_t l0 = 0; l0 < L; l0 += kSsmTile) {
          Cplx<T> P{T(0), T(0)}, Q{T(0), T(0)};
          kernels::ssm_backward_tile(gh + l0, tre.data() + n * kSsmTile, tim.data() + n * kSsmTile,
                                     std::min(kSsmTile, L - l0), P, Q);
          kernels::ssm_bwd_anchor(kernels::ssm_power(wh[n], l0), static_cast<T>(l0), P, Q, gC, S);
        }
        const int64_t i = h * N2 + n;
        kernels::ssm_bwd_finish(Ct[i], gC, S, gCt ? gCt + i : nullptr, gw ? gw + i : nullptr);
      }
    }
  });
}

template <typename T>
Cplx<T>* cplx_ptr(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<Cplx<T>*>(t.data_ptr<T>()) : nullptr;
}

}  // namespace

torch::Tensor ssm_kernel_forward_cpu(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  const int64_t H = Ct.size(0), N2 = Ct.size(1);
  auto K = torch::empty({H, L}, Ct.options());
  AT_DISPATCH_FLOATING_TYPES(Ct.scalar_type(), "ssm_kernel_forward_cpu", [&] {
    forward<scalar_t>(cplx_ptr<scalar_t>(Ct), cplx_ptr<scalar_t>(w), H, N2, L,
                      K.data_ptr<scalar_t>());
  });
  return K;
}

std::array<torch::Tensor, 2> ssm_kernel_backward_cpu(const torch::Tensor& Ct,
                                                     const torch::Tensor& w, const torch::Tensor& g,
                                                     bool need_Ct, bool need_w) {
  torch::Tensor gCt, gw;
  if (need_Ct) gCt = torch::empty_like(Ct);
  if (need_w) gw = torch::empty_like(w);
  if (!need_Ct && !need_w) return {gCt, gw};
  const int64_t H = Ct.size(0), N2 = Ct.size(1), L = g.size(1);
  AT_DISPATCH_FLOATING_TYPES(Ct.scalar_type(), "ssm_kernel_backward_cpu", [&] {
    backward<scalar_t>(cplx_ptr<scalar_t>(Ct), cplx_ptr<scalar_t>(w), g.data_ptr<scalar_t>(), H, N2,
                       L, cplx_ptr<scalar_t>(gCt), cplx_ptr<scalar_t>(gw));
  });
  return {gCt, gw};
}

}  // namespace herd::ops::detail
