// The FFT convolution as Monarch-decomposed matrix products (ops/monarch_fft.h): the DFT in
// its permuted layout equals torch's FFT, and the convolution equals the exact long-conv
// reference in float64 and float32 and within bfloat16 rounding with bfloat16 GEMMs, for odd
// and power-of-two lengths up to 16k (beyond the 8k of safari's fftconv).
#include <gtest/gtest.h>

#include <iostream>

#include "core/error.h"
#include "ops/long_conv.h"
#include "ops/monarch_fft.h"

namespace herd::ops {
namespace {

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

TEST(MonarchFft, DftInItsLayoutIsTorchsFft) {
  torch::manual_seed(1);
  for (int64_t N : {2, 8, 32, 128, 2048}) {
    const auto p = MonarchFft::plan(N);
    EXPECT_EQ(p.N1 * p.N2, N);
    auto x = torch::randn({3, N}, torch::kFloat64);
    auto [re, im] = monarch_dft(x, p, torch::kFloat64);
    // C[k1, k2] = X[k1 + N1 k2]: transpose the last two axes to get the natural order.
    auto want = torch::fft::fft(x);
    auto got =
        torch::complex(re.transpose(-1, -2).reshape({3, N}), im.transpose(-1, -2).reshape({3, N}));
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-9 * N) << "N " << N;
    // And back.
    EXPECT_LT((monarch_idft_real(re, im, p, torch::kFloat64) - x).abs().max().item<double>(), 1e-12)
        << "N " << N;
  }
  EXPECT_THROW(MonarchFft::plan(12), herd::Error);
}

TEST(MonarchFft, ConvolutionMatchesTheExactReference) {
  torch::manual_seed(2);
  struct Case {
    int64_t B, C, L, Lk;
  };
  for (const Case c : {Case{2, 3, 1, 1}, Case{2, 3, 7, 7}, Case{1, 4, 64, 20},
                       Case{2, 2, 1000, 1000}, Case{1, 2, 8192, 8192}, Case{1, 1, 16384, 16384}}) {
    for (auto dt : {torch::kFloat64, torch::kFloat32}) {
      auto u = torch::randn({c.B, c.C, c.L}, dt);
      auto k = torch::randn({c.C, c.Lk}, dt) / std::sqrt(static_cast<double>(c.Lk));
      auto D = torch::randn({c.C}, dt);
      auto want = long_conv_reference(
          {u.to(torch::kFloat64), k.to(torch::kFloat64), D.to(torch::kFloat64)});
      auto got = monarch_fft_conv(u, k, D, dt).to(torch::kFloat64);
      const double tol = dt == torch::kFloat64 ? 1e-11 : 2e-5;
      EXPECT_LT(rel(got, want), tol) << "L " << c.L << " " << dt;
    }
    // bfloat16 GEMMs (what tensor cores take): within a few bfloat16 roundings per step.
    auto u = torch::randn({c.B, c.C, c.L});
    auto k = torch::randn({c.C, c.Lk}) / std::sqrt(static_cast<double>(c.Lk));
    auto want = long_conv_reference({u.to(torch::kFloat64), k.to(torch::kFloat64)});
    const double err = rel(monarch_fft_conv(u, k, {}, torch::kBFloat16).to(torch::kFloat64), want);
    EXPECT_LT(err, 1.5e-2) << "L " << c.L << " bf16";
    std::cout << "bf16 GEMMs, L " << c.L << ": max error " << err << " of the max\n";
  }
}

}  // namespace
}  // namespace herd::ops
