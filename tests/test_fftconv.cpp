// FFT long convolution vs the direct O(L^2) sums, its gradient, and the implicit filter.
#include "ops/fft_conv.h"
#include "ops/implicit_filter.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;
namespace ops = herd::ops;

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

TEST(FftConv, FastSizeHasSmallPrimeFactors) {
  EXPECT_EQ(ops::fft_fast_size(1), 1);
  EXPECT_EQ(ops::fft_fast_size(11), 12);
  EXPECT_EQ(ops::fft_fast_size(13), 14);
  EXPECT_EQ(ops::fft_fast_size(127), 128);
  EXPECT_EQ(ops::fft_fast_size(129), 135);
  EXPECT_THROW(ops::fft_fast_size(0), herd::Error);
}

// Kernel lengths shorter than, equal to and longer than L, odd and even L.
TEST(FftConv, CausalMatchesDirect) {
  torch::manual_seed(1);
  for (int64_t L : {1, 2, 7, 33, 64, 101}) {
    for (int64_t Lk : {L, L / 2 + 1, L + 5}) {
      auto x = torch::randn({2, 3, L}, f64), k = torch::randn({3, Lk}, f64);
      auto D = torch::randn({3}, f64);
      auto ref = ops::long_conv_direct(x, k, D);
      EXPECT_LE(max_abs(ops::fft_conv(x, k, D) - ref), 1e-10 * (1 + max_abs(ref)))
          << "L=" << L << " Lk=" << Lk;
    }
  }
}

TEST(FftConv, CausalDirectIsTheFormula) {
  torch::manual_seed(2);
  const int64_t L = 7;
  auto x = torch::randn({1, 2, L}, f64), k = torch::randn({2, L}, f64), D = torch::randn({2}, f64);
  auto y = ops::long_conv_direct(x, k, D);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t t = 0; t < L; ++t) {
      double s = D[c].item<double>() * x[0][c][t].item<double>();
      for (int64_t j = 0; j <= t; ++j) s += k[c][t - j].item<double>() * x[0][c][j].item<double>();
      EXPECT_NEAR(y[0][c][t].item<double>(), s, 1e-12);
    }
}

TEST(FftConv, BidirectionalMatchesDirect) {
  torch::manual_seed(3);
  for (int64_t L : {1, 2, 7, 33, 64, 101}) {
    for (int64_t Lk : {L, L / 2 + 1, L + 3}) {
      auto x = torch::randn({2, 3, L}, f64), D = torch::randn({3}, f64);
      auto kf = torch::randn({3, Lk}, f64), kr = torch::randn({3, Lk}, f64);
      auto ref = ops::long_conv_bidirectional_direct(x, kf, kr, D);
      EXPECT_LE(max_abs(ops::fft_conv_bidirectional(x, kf, kr, D) - ref),
                1e-10 * (1 + max_abs(ref)))
          << "L=" << L << " Lk=" << Lk;
    }
  }
}

// kr[0] taps s = t+1 and kr[L-1] never contributes (M2's layout).
TEST(FftConv, BidirectionalReverseTapConvention) {
  const int64_t L = 9;
  auto x = torch::zeros({1, 1, L}, f64);
  x[0][0][5] = 1.0;  // impulse at s = 5
  auto kf = torch::zeros({1, L}, f64), kr = torch::arange(1, L + 1, f64).view({1, L});
  auto y = ops::fft_conv_bidirectional(x, kf, kr);
  for (int64_t t = 0; t < L; ++t)
    EXPECT_NEAR(y[0][0][t].item<double>(), t < 5 ? kr[0][5 - t - 1].item<double>() : 0.0, 1e-12);
  auto kr2 = kr.clone().requires_grad_(true);
  auto xr = torch::randn({2, 1, L}, f64);
  ops::fft_conv_bidirectional(xr, kf, kr2).sum().backward();
  EXPECT_EQ(kr2.grad()[0][L - 1].item<double>(), 0.0);
  EXPECT_NE(kr2.grad()[0][L - 2].item<double>(), 0.0);
}

TEST(FftConv, CircularFftOfSizeLWouldDiffer) {
  // Guards the test itself: a wrapped convolution is detectably different from the linear one.
  torch::manual_seed(4);
  const int64_t L = 16;
  auto x = torch::randn({1, 2, L}, f64), k = torch::randn({2, L}, f64);
  auto circ = torch::fft::irfft(torch::fft::rfft(x, L, -1) * torch::fft::rfft(k, L, -1), L, -1);
  EXPECT_GT(max_abs(circ - ops::fft_conv(x, k)), 1e-3);
}

TEST(FftConv, GradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  for (bool bidir : {false, true}) {
    const int64_t L = 11;
    auto x = torch::randn({2, 3, L}, f64).requires_grad_(true);
    auto kf = torch::randn({3, L}, f64).requires_grad_(true);
    auto kr = torch::randn({3, L}, f64).requires_grad_(true);
    auto D = torch::randn({3}, f64).requires_grad_(true);
    auto f = [&] {
      return bidir ? ops::fft_conv_bidirectional(x, kf, kr, D) : ops::fft_conv(x, kf, D);
    };
    std::vector<std::pair<std::string, torch::Tensor>> wrt{{"x", x}, {"kf", kf}, {"D", D}};
    if (bidir) wrt.emplace_back("kr", kr);
    herd::testing::expect_grads_match_fd(f, wrt, 1e-6, 1e-7, 40);
  }
}

TEST(FftConv, Float32CloseToFloat64) {
  torch::manual_seed(6);
  const int64_t L = 257;
  auto x = torch::randn({2, 4, L}, f64), kf = torch::randn({4, L}, f64) / 16;
  auto kr = torch::randn({4, L}, f64) / 16;
  auto ref = ops::long_conv_bidirectional_direct(x, kf, kr);
  auto y =
      ops::fft_conv_bidirectional(x.to(torch::kFloat), kf.to(torch::kFloat), kr.to(torch::kFloat));
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_LE(max_abs(y.to(torch::kFloat64) - ref), 1e-5 * max_abs(ref));
}

TEST(FftConv, RejectsBadShapes) {
  auto x = torch::randn({2, 3, 8});
  EXPECT_THROW(ops::fft_conv(x, torch::randn({4, 8})), herd::Error);
  EXPECT_THROW(ops::fft_conv(x, torch::randn({3, 8}), torch::randn({2})), herd::Error);
  EXPECT_THROW(ops::fft_conv(torch::randn({8}), torch::randn({1, 8})), herd::Error);
}

TEST(ImplicitFilter, InitAndNames) {
  ops::ImplicitFilterOptions o;
  o.channels = 6;
  o.l_max = 16;
  o.order = 8;
  o.emb_dim = 5;
  o.w = 14;
  o.bidirectional = true;
  ops::ImplicitFilter f(o);
  std::vector<std::string> names;
  for (const auto& p : f->named_parameters()) names.push_back(p.key());
  const std::vector<std::string> want = {"bias",
                                         "pos_emb.z",
                                         "implicit_filter.0.weight",
                                         "implicit_filter.0.bias",
                                         "implicit_filter.1.freq",
                                         "implicit_filter.2.weight",
                                         "implicit_filter.2.bias",
                                         "implicit_filter.4.weight",
                                         "implicit_filter.4.bias",
                                         "implicit_filter.6.weight",
                                         "implicit_filter_rev.0.weight",
                                         "implicit_filter_rev.0.bias",
                                         "implicit_filter_rev.2.weight",
                                         "implicit_filter_rev.2.bias",
                                         "implicit_filter_rev.4.weight",
                                         "implicit_filter_rev.4.bias",
                                         "implicit_filter_rev.6.weight"};
  EXPECT_EQ(names, want);  // the shared Sin's freq appears once
  EXPECT_EQ(f->implicit_filter->linears.back()->bias.defined(), false);
  // z = [t, cos(f w), -sin(f w)] with f = linspace(1e-4, 1, 2) and w_n = 2 pi n / l_max.
  auto z = f->pos_emb->z.to(torch::kFloat64);
  const int64_t n = 3;
  const double w = 2 * M_PI * n / 16;
  EXPECT_NEAR(z[0][n][0].item<double>(), n / 15.0, 1e-6);
  EXPECT_NEAR(z[0][n][1].item<double>(), std::cos(1e-4 * w), 1e-6);
  EXPECT_NEAR(z[0][n][2].item<double>(), std::cos(1.0 * w), 1e-6);
  EXPECT_NEAR(z[0][n][3].item<double>(), -std::sin(1e-4 * w), 1e-6);
  EXPECT_NEAR(z[0][n][4].item<double>(), -std::sin(1.0 * w), 1e-6);
  auto d = f->modulation->deltas.to(torch::kFloat64).view(-1);
  EXPECT_NEAR(d[0].item<double>(), std::log(1e-2) / 1.5, 1e-6);
  EXPECT_NEAR(d[5].item<double>(), std::log(1e-2) / 0.3, 1e-6);
  EXPECT_EQ(f->named_buffers().size(), 2u);  // pos_emb.t, modulation.deltas
  EXPECT_EQ(f->filter(9).sizes(), (std::vector<int64_t>{6, 9}));
  EXPECT_THROW(f->filter(17), herd::Error);
  o.emb_dim = 4;
  EXPECT_THROW(ops::ImplicitFilter{o}, herd::Error);
}

// Shared Sin: its gradient sums all uses, forward and reverse; rows >= L of z get exactly 0.
TEST(ImplicitFilter, SharedSinAndTruncationGradients) {
  torch::manual_seed(8);
  ops::ImplicitFilterOptions o;
  o.channels = 3;
  o.l_max = 12;
  o.order = 4;
  o.emb_dim = 3;
  o.w = 2;
  o.bidirectional = true;
  ops::ImplicitFilter f(o);
  f->to(torch::kFloat64);
  const int64_t L = 7;
  herd::testing::expect_grads_match_fd(
      [&] {
        return torch::cat({f->filter(L), f->filter_rev(L)}, 1);
      },
      herd::testing::fd_targets(*f, torch::zeros({1}, f64).requires_grad_(true)), 1e-6, 1e-6);
  f->zero_grad();
  (f->filter(L).sum() + f->filter_rev(L).sum()).backward();
  EXPECT_EQ(max_abs(f->pos_emb->z.grad().narrow(1, L, o.l_max - L)), 0.0);
  EXPECT_GT(max_abs(f->pos_emb->z.grad().narrow(1, 0, L)), 0.0);
}

}  // namespace
