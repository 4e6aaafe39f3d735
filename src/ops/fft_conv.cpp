#include "ops/fft_conv.h"

#include <ATen/autocast_mode.h>

#include <algorithm>

#include "core/error.h"

namespace herd::ops {
namespace {

namespace F = torch::nn::functional;

void check_args(const char* op, const torch::Tensor& x, const torch::Tensor& k,
                const torch::Tensor& D) {
  HERD_CHECK(x.dim() >= 2, op, ": x must be [..., C, L], got ", x.sizes());
  HERD_CHECK(k.dim() == 2 && k.size(0) == x.size(-2), op, ": kernel must be [C=", x.size(-2),
             ", Lk], got ", k.sizes());
  HERD_CHECK(!D.defined() || (D.dim() == 1 && D.size(0) == x.size(-2)), op,
             ": skip D must be [C=", x.size(-2), "], got ", D.sizes());
}

// FFTs of half/bfloat16 are slow or unsupported for odd sizes; they run in float32.
torch::ScalarType compute_dtype(const torch::Tensor& x) {
  const auto t = x.scalar_type();
  return (t == torch::kHalf || t == torch::kBFloat16) ? torch::kFloat : t;
}

// y = irfft(rfft(x, n) * rfft(kc, n))[..., :L] + D x for a length-n circular kernel kc that
// the caller laid out so that no product wraps into [0, L).
torch::Tensor circular_apply(const torch::Tensor& x, const torch::Tensor& kc, int64_t n,
                             const torch::Tensor& D) {
  const auto dt = compute_dtype(x);
  const int64_t L = x.size(-1);
  auto xc = x.to(dt);
  auto y =
      torch::fft::irfft(torch::fft::rfft(xc, n, -1) * torch::fft::rfft(kc.to(dt), n, -1), n, -1)
          .narrow(-1, 0, L);
  if (D.defined()) y = y + xc * D.to(dt).unsqueeze(-1);
  return y.to(x.scalar_type());
}

}  // namespace

AutocastOff::AutocastOff(c10::DeviceType device)
    : device_(device), was_enabled_(at::autocast::is_autocast_enabled(device)) {
  if (was_enabled_) at::autocast::set_autocast_enabled(device_, false);
}

AutocastOff::~AutocastOff() {
  if (was_enabled_) at::autocast::set_autocast_enabled(device_, true);
}

int64_t fft_fast_size(int64_t n) {
  HERD_CHECK(n >= 1, "fft_fast_size: n must be >= 1, got ", n);
  for (int64_t m = n;; ++m) {
    int64_t r = m;
    for (int64_t p : {2, 3, 5, 7})
      while (r % p == 0) r /= p;
    if (r == 1) return m;
  }
}

torch::Tensor fft_conv(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& D) {
  check_args("fft_conv", x, k, D);
  const int64_t L = x.size(-1), Lk = std::min<int64_t>(k.size(1), L);
  if (Lk == 0) return D.defined() ? x * D.unsqueeze(-1) : torch::zeros_like(x);
  // Linear convolution of lengths L and Lk has L+Lk-1 terms; any n >= that is exact.
  const int64_t n = fft_fast_size(L + Lk - 1);
  return circular_apply(x, k.narrow(1, 0, Lk), n, D);
}

torch::Tensor fft_conv_bidirectional(const torch::Tensor& x, const torch::Tensor& kf,
                                     const torch::Tensor& kr, const torch::Tensor& D) {
  check_args("fft_conv_bidirectional", x, kf, D);
  check_args("fft_conv_bidirectional", x, kr, D);
  const int64_t L = x.size(-1), C = x.size(-2);
  const int64_t Lf = std::min<int64_t>(kf.size(1), L);
  const int64_t Lr = std::min<int64_t>(kr.size(1), L - 1);  // kr[L-1] reaches s = t+L >= L
  // One circular kernel: lags 0..Lf-1 at the front, lag -(m+1) (tap kr[m]) at index n-1-m.
  // n >= L+Lf-1 keeps causal taps from wrapping; n >= L+Lr keeps anti-causal ones from wrapping.
  const int64_t n = fft_fast_size(std::max<int64_t>({L + Lf - 1, L + Lr, 1}));
  auto gap = torch::zeros({C, n - Lf - Lr}, kf.options());
  auto kc = torch::cat({kf.narrow(1, 0, Lf), gap, kr.narrow(1, 0, Lr).to(kf.dtype()).flip(-1)}, 1);
  return circular_apply(x, kc, n, D);
}

torch::Tensor long_conv_direct(const torch::Tensor& x, const torch::Tensor& k,
                               const torch::Tensor& D) {
  check_args("long_conv_direct", x, k, D);
  const int64_t L = x.size(-1), Lk = std::min<int64_t>(k.size(1), L);
  auto y = D.defined() ? x * D.unsqueeze(-1) : torch::zeros_like(x);
  for (int64_t j = 0; j < Lk; ++j)  // lag j: y[t] += k[j] x[t-j]
    y = y +
        F::pad(x.narrow(-1, 0, L - j) * k.select(1, j).unsqueeze(-1), F::PadFuncOptions({j, 0}));
  return y;
}

torch::Tensor long_conv_bidirectional_direct(const torch::Tensor& x, const torch::Tensor& kf,
                                             const torch::Tensor& kr, const torch::Tensor& D) {
  check_args("long_conv_bidirectional_direct", x, kr, D);
  auto y = long_conv_direct(x, kf, D);
  const int64_t L = x.size(-1), Lr = std::min<int64_t>(kr.size(1), L - 1);
  for (int64_t m = 0; m < Lr; ++m)  // tap m: y[t] += kr[m] x[t+1+m]
    y = y + F::pad(x.narrow(-1, m + 1, L - 1 - m) * kr.select(1, m).unsqueeze(-1),
                   F::PadFuncOptions({0, m + 1}));
  return y;
}

}  // namespace herd::ops
