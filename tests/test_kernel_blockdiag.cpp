// The fused block-diagonal linear (per-block GEMMs on strided views) against its reference
// (pad, transpose, bmm): forward and gradients in float32 and float64, strided inputs, finite
// differences, double backward, and the dispatch rules (ragged sizes take the reference).
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "ops/blockdiag_linear.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;

struct Grads {
  torch::Tensor y, dx, dw, db;
};

// x may be a view of `leaf`; dx is the leaf's gradient.
Grads run(bool fused, const torch::Tensor& leaf, const torch::Tensor& x, const torch::Tensor& w,
          const torch::Tensor& b, int64_t out, const torch::Tensor& g) {
  for (auto t : {leaf, w, b})
    if (t.defined()) t.mutable_grad() = torch::Tensor();
  auto y = fused ? ops::blockdiag_linear_fused(x, w, out, b)
                 : ops::blockdiag_linear_reference(x, w, out, b);
  y.backward(g);
  return {y.detach(), leaf.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / (b.abs().max().item<double>() + 1e-30);
}

TEST(KernelBlockdiag, FusedMatchesReference) {
  struct S {
    int64_t rows, in, out, nb;
    bool bias;
  };
  for (auto dt : {torch::kFloat, torch::kDouble})
    for (S s : {S{7, 12, 20, 4, true}, S{33, 64, 256, 4, false}, S{1, 6, 6, 1, true},
                S{16, 96, 48, 8, true}}) {
      torch::manual_seed(1);
      auto o = torch::TensorOptions().dtype(dt);
      // x is a strided view (every other row of a wider leaf) over a leading batch dim.
      auto leaf = torch::randn({2, 2 * s.rows, s.in}, o).requires_grad_(true);
      auto x = leaf.slice(1, 0, 2 * s.rows, 2);
      auto w = torch::randn({s.nb, s.out / s.nb, s.in / s.nb}, o).requires_grad_(true);
      torch::Tensor b;
      if (s.bias) b = torch::randn({s.out}, o).requires_grad_(true);
      ASSERT_EQ(ops::blockdiag_linear_path(x, w, s.out, b), ops::KernelPath::cpu);
      auto g = torch::randn({2, s.rows, s.out}, o);
      auto ref = run(false, leaf, x, w, b, s.out, g);
      auto got = run(true, leaf, x, w, b, s.out, g);
      const double tol = dt == torch::kDouble ? 1e-13 : 1e-5;
      EXPECT_LE(rel(got.y, ref.y), tol);
      EXPECT_LE(rel(got.dx, ref.dx), tol);
      EXPECT_LE(rel(got.dw, ref.dw), tol);
      if (s.bias) {
        EXPECT_LE(rel(got.db, ref.db), tol);
      }
    }
}

TEST(KernelBlockdiag, FiniteDifferencesAndDoubleBackward) {
  torch::manual_seed(2);
  auto o = torch::TensorOptions().dtype(torch::kDouble);
  auto x = torch::randn({3, 8}, o).requires_grad_(true);
  auto w = torch::randn({2, 3, 4}, o).requires_grad_(true);
  auto b = torch::randn({6}, o).requires_grad_(true);
  herd::testing::expect_grads_match_fd([&] { return ops::blockdiag_linear_fused(x, w, 6, b); },
                                       {{"x", x}, {"w", w}, {"b", b}});
  auto second = [&](bool fused) {
    auto y = fused ? ops::blockdiag_linear_fused(x, w, 6, b)
                   : ops::blockdiag_linear_reference(x, w, 6, b);
    auto gx = torch::autograd::grad({y.square().sum()}, {x}, {}, true, true)[0];
    return torch::autograd::grad({gx.sum()}, {w})[0];
  };
  EXPECT_LE(rel(second(true), second(false)), 1e-12);
}

TEST(KernelBlockdiag, DispatchRules) {
  auto x = torch::randn({4, 10});
  auto w = torch::randn({3, 3, 4});  // in 10 < 12, out 7 < 9: padding and truncation
  EXPECT_EQ(ops::blockdiag_linear_path(x, w, 7), ops::KernelPath::reference);
  EXPECT_THROW(ops::blockdiag_linear_fused(x, w, 7), herd::Error);
  auto x2 = torch::randn({4, 12});
  EXPECT_EQ(ops::blockdiag_linear_path(x2, w, 9), ops::KernelPath::cpu);
  EXPECT_EQ(ops::blockdiag_linear_path(x2.to(torch::kBFloat16), w.to(torch::kBFloat16), 9),
            ops::KernelPath::cpu);
  EXPECT_EQ(ops::blockdiag_linear_path(x2.to(torch::kHalf), w.to(torch::kHalf), 9),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::blockdiag_linear_path(x2, w.to(torch::kDouble), 9), ops::KernelPath::reference);
  // The dispatcher gives the reference's values on both paths.
  EXPECT_LE(rel(ops::blockdiag_linear(x, w, 7), ops::blockdiag_linear_reference(x, w, 7)), 0);
  EXPECT_THROW(ops::blockdiag_linear(torch::randn({2, 13}), w, 9), herd::Error);
}

// Under bfloat16 autocast the fused path runs (x and weight cast as the reference's bmm would
// be, the float bias added after, as its `y + bias` promotes): same dtype as the reference,
// values and float gradients within bfloat16 rounding.
TEST(KernelBlockdiag, AutocastRunsTheFusedPathInBfloat16) {
  torch::manual_seed(3);
  auto w = torch::randn({4, 6, 5}).requires_grad_(true);
  auto b = torch::randn({24}).requires_grad_(true);
  auto x = torch::randn({7, 20}).requires_grad_(true);
  auto g = torch::randn({7, 24});
  auto run_with = [&](bool fused) {
    for (auto t : {x, w, b}) t.mutable_grad() = torch::Tensor();
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    if (fused) {
      EXPECT_EQ(ops::blockdiag_linear_path(x.to(torch::kBFloat16), w.to(torch::kBFloat16), 24),
                ops::KernelPath::cpu);
    }
    auto y =
        fused ? ops::blockdiag_linear(x, w, 24, b) : ops::blockdiag_linear_reference(x, w, 24, b);
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
    y.backward(g.to(y.scalar_type()));
    return Grads{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  auto got = run_with(true), want = run_with(false);
  EXPECT_EQ(got.y.scalar_type(), want.y.scalar_type());
  EXPECT_EQ(got.dw.scalar_type(), torch::kFloat);
  EXPECT_LT(rel(got.y.to(torch::kFloat), want.y.to(torch::kFloat)), 2e-2);
  EXPECT_LT(rel(got.dx, want.dx), 3e-2);
  EXPECT_LT(rel(got.dw, want.dw), 3e-2);
  EXPECT_LT(rel(got.db, want.db), 1e-6);
}

}  // namespace
