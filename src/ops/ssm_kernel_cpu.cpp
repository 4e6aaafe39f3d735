// CPU fast path of ssm_vandermonde: kernels/ssm_kernel.cuh in at::parallel_for over channels.
// Per channel, a table exp(j w_n) (j < kSsmTile) is built once; each tile of positions then
// needs one anchor exp(l0 w_n) per mode. Nothing of size (H, N/2, L) is ever allocated; the
// scratch is O(N/2 kSsmTile + L) per thread.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "kernels/ssm_kernel.cuh"
#include "ops/ssm_kernel_impl.h"

namespace herd::ops::detail {
namespace {

using kernels::Cplx;
using kernels::kSsmLanes;
using kernels::kSsmTile;
using kernels::SsmPowerWalk;

// Decaying modes reach subnormal magnitudes late in the kernel, where each float operation
// costs ~100 cycles (8x slower tiles, measured). Flushing them to zero for the duration of
// a loop changes K by less than the smallest normal number.
class FlushSubnormals {
 public:
#if defined(__SSE2__)
  // MXCSR bits FTZ (0x8000) and DAZ (0x40).
  FlushSubnormals() : saved_(_mm_getcsr()) {
    _mm_setcsr(saved_ | 0x8040u);
  }
  ~FlushSubnormals() {
    _mm_setcsr(saved_);
  }

 private:
  unsigned saved_;
#else
  // Elsewhere subnormals stay: slower, same results to rounding.
  FlushSubnormals() {}
  ~FlushSubnormals() {}
#endif
};

// exp(j w_n) for j < kSsmTile as re and im planes of [modes][kSsmTile].
template <typename T>
void fill_table(const Cplx<T>* w, int64_t modes, std::vector<T>& re, std::vector<T>& im) {
  re.resize(modes * kSsmTile);
  im.resize(modes * kSsmTile);
  for (int64_t n = 0; n < modes; ++n) {
    SsmPowerWalk<T> walk(w[n], 0, 1);
    for (int64_t j = 0; j < kSsmTile; ++j) {
      const Cplx<T> e = walk.next();
      re[n * kSsmTile + j] = e.re;
      im[n * kSsmTile + j] = e.im;
    }
  }
}

template <typename T>
void forward(const Cplx<T>* Ct, const Cplx<T>* w, int64_t H, int64_t N2, int64_t L, T* K) {
  at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
    FlushSubnormals ftz;
    std::vector<T> tre, tim;
    std::vector<Cplx<T>> q(N2);
    std::vector<SsmPowerWalk<T>> anchor;
    for (int64_t h = h0; h < h1; ++h) {
      const Cplx<T>* c = Ct + h * N2;
      const Cplx<T>* wh = w + h * N2;
      fill_table(wh, N2, tre, tim);
      anchor.clear();
      for (int64_t n = 0; n < N2; ++n) anchor.emplace_back(wh[n], 0, kSsmTile);
      for (int64_t l0 = 0; l0 < L; l0 += kSsmTile) {
        for (int64_t n = 0; n < N2; ++n) q[n] = kernels::cmul(c[n], anchor[n].next());
        kernels::ssm_forward_tile(q.data(), N2, tre.data(), tim.data(), kSsmTile,
                                  std::min(kSsmTile, L - l0), K + h * L + l0);
      }
    }
  });
}

// Per mode: the anchors exp(t kSsmTile w) of every tile, then kSsmLanes in-tile positions
// at a time summed over all tiles, then exp(j w) folded in (ssm_backward_lanes' order).
template <typename T>
void backward(const Cplx<T>* Ct, const Cplx<T>* w, const T* g, int64_t H, int64_t N2, int64_t L,
              Cplx<T>* gCt, Cplx<T>* gw) {
  const int64_t tiles = (L + kSsmTile - 1) / kSsmTile;
  at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
    FlushSubnormals ftz;
    std::vector<T> tre, tim, ar(tiles), ai(tiles);
    std::vector<T> gp(tiles * kSsmTile, T(0)), gl(tiles * kSsmTile, T(0));  // zero-padded
    Cplx<T> U[kSsmLanes], V[kSsmLanes];
    for (int64_t h = h0; h < h1; ++h) {
      const Cplx<T>* wh = w + h * N2;
      const T* gh = g + h * L;
      for (int64_t l = 0; l < L; ++l) {
        gp[l] = gh[l];
        gl[l] = static_cast<T>(l) * gh[l];
      }
      fill_table(wh, N2, tre, tim);
      for (int64_t n = 0; n < N2; ++n) {
        SsmPowerWalk<T> anchor(wh[n], 0, kSsmTile);
        for (int64_t t = 0; t < tiles; ++t) {
          const Cplx<T> a = anchor.next();
          ar[t] = a.re;
          ai[t] = a.im;
        }
        Cplx<T> gC{T(0), T(0)}, S{T(0), T(0)};
        for (int64_t j0 = 0; j0 < kSsmTile; j0 += kSsmLanes) {
          kernels::ssm_backward_lanes(gp.data() + j0, gl.data() + j0, kSsmTile, ar.data(),
                                      ai.data(), tiles, U, V);
          for (int64_t k = 0; k < kSsmLanes; ++k) {
            const int64_t j = n * kSsmTile + j0 + k;
            kernels::ssm_bwd_anchor(Cplx<T>{tre[j], tim[j]}, U[k], V[k], gC, S);
          }
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
