// Chunked linear + cross-entropy (kernels/cross_entropy.cuh, ops/cross_entropy.h) against
// linear + torch cross_entropy: loss, argmax count and gradients (dx, dweight, dbias) in
// float64/float32/bfloat16 and under bf16 autocast, across chunk boundaries, with ignored
// rows, strided x, finite differences, double backward and a retained graph, the softmax
// exponential's accuracy, dispatch, and the CUDA pass when a GPU is present.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "kernels/cross_entropy.cuh"
#include "ops/cross_entropy.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;

struct Case {
  torch::Tensor x, w, b, t;  // x is a transposed view of a [D, N] leaf (strided on purpose)
  torch::Tensor x_leaf;
};

Case make_case(int64_t N, int64_t D, int64_t V, torch::TensorOptions o, bool bias,
               int64_t ignored) {
  Case c;
  c.x_leaf = torch::randn({D, N}, o).requires_grad_(true);
  c.x = c.x_leaf.t();
  c.w = (torch::randn({V, D}, o) * 0.5).requires_grad_(true);
  if (bias) c.b = torch::randn({V}, o).requires_grad_(true);
  c.t = torch::randint(0, V, {N}, o.dtype(torch::kLong));
  for (int64_t i = 0; i < ignored && i < N; ++i) c.t.index_put_({(i * 7) % N}, -100);
  return c;
}

// {loss, correct, dx, dw, db} of loss * 1.7 (a non-unit incoming gradient).
std::vector<torch::Tensor> run(Case& c, bool fused, int64_t chunk = 0) {
  for (auto* p : {&c.x_leaf, &c.w, &c.b})
    if (p->defined()) p->mutable_grad() = torch::Tensor();
  torch::Tensor correct;
  auto loss = fused ? ops::linear_cross_entropy_fused(c.x, c.w, c.b, c.t, -100, &correct, chunk)
                    : ops::linear_cross_entropy_reference(c.x, c.w, c.b, c.t, -100, &correct);
  (loss * 1.7).backward();
  return {loss.detach(), correct, c.x_leaf.grad(), c.w.grad(),
          c.b.defined() ? c.b.grad() : torch::Tensor()};
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                  double tol, const std::string& what) {
  const char* names[] = {"loss", "correct", "dx", "dweight", "dbias"};
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].defined()) continue;
    ASSERT_TRUE(got[i].defined()) << what << " " << names[i];
    ASSERT_EQ(got[i].sizes(), want[i].sizes()) << what << " " << names[i];
    EXPECT_EQ(got[i].scalar_type(), want[i].scalar_type()) << what << " " << names[i];
    auto g = got[i].cpu().to(torch::kDouble), w = want[i].cpu().to(torch::kDouble);
    EXPECT_TRUE(torch::allclose(g, w, tol, tol))
        << what << " " << names[i] << " max diff " << (g - w).abs().max().item<double>();
  }
}

void compare(torch::ScalarType dt, torch::Device dev, double tol) {
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  struct Shape {
    int64_t N, D, V, chunk, ignored;
    bool bias;
  };
  for (const auto& s :
       {Shape{1, 4, 3, 0, 0, false}, Shape{7, 5, 33, 3, 2, true}, Shape{64, 16, 128, 16, 0, false},
        Shape{65, 8, 257, 64, 5, true}, Shape{130, 32, 1000, 0, 1, true}}) {
    auto c = make_case(s.N, s.D, s.V, o, s.bias, s.ignored);
    const std::string what = std::string(c10::toString(dt)) + " N=" + std::to_string(s.N) +
                             " V=" + std::to_string(s.V) + " chunk=" + std::to_string(s.chunk);
    auto want = run(c, false);
    expect_close(run(c, true, s.chunk), want, tol, what);
    EXPECT_EQ(want[1].item<int64_t>(), run(c, true, s.chunk)[1].item<int64_t>()) << what;
  }
}

TEST(KernelCrossEntropy, CpuMatchesReference) {
  torch::manual_seed(1);
  compare(torch::kDouble, torch::kCPU, 1e-12);
  compare(torch::kFloat, torch::kCPU, 2e-5);
  compare(torch::kBFloat16, torch::kCPU, 3e-2);
}

TEST(KernelCrossEntropy, ArgmaxCountsCorrectRows) {
  // Logits = x W^T with W = I: row i's argmax is the position of its largest entry.
  auto x = torch::tensor({{0.1, 3.0, 0.2}, {5.0, 1.0, 1.0}, {0.0, 0.0, 9.0}, {2.0, 2.0, 1.0}},
                         torch::kDouble);
  auto w = torch::eye(3, torch::kDouble);
  auto t = torch::tensor({1, 2, 2, 0}, torch::kLong);  // rows 0, 2 and 3 (tie: first) are right
  torch::Tensor correct;
  ops::linear_cross_entropy_fused(x, w, {}, t, -100, &correct, 2);
  EXPECT_EQ(correct.item<int64_t>(), 3);
  t.index_put_({0}, -100);  // ignored rows never count
  ops::linear_cross_entropy_fused(x, w, {}, t, -100, &correct, 2);
  EXPECT_EQ(correct.item<int64_t>(), 2);
}

TEST(KernelCrossEntropy, AutocastBf16MatchesReferenceUnderAutocast) {
  torch::manual_seed(2);
  auto c = make_case(70, 16, 300, torch::TensorOptions(), true, 3);
  std::vector<torch::Tensor> got, want;
  {
    at::autocast::set_autocast_enabled(torch::kCPU, true);
    at::autocast::set_autocast_dtype(torch::kCPU, torch::kBFloat16);
    EXPECT_EQ(ops::linear_cross_entropy_path(c.x, c.w, c.b, c.t), ops::KernelPath::cpu);
    want = run(c, false);
    got = run(c, true, 32);
    at::autocast::set_autocast_enabled(torch::kCPU, false);
    at::autocast::clear_cache();
  }
  // Both upcast bf16 logits to fp32: the loss is fp32, the gradients the parameters' dtype.
  EXPECT_EQ(got[0].scalar_type(), torch::kFloat);
  EXPECT_EQ(got[3].scalar_type(), torch::kFloat);
  expect_close(got, want, 3e-2, "autocast");
}

TEST(KernelCrossEntropy, FiniteDifferencesFloat64) {
  torch::manual_seed(3);
  auto o = torch::TensorOptions().dtype(torch::kDouble);
  auto x = torch::randn({5, 4}, o).requires_grad_(true);
  auto w = torch::randn({9, 4}, o).requires_grad_(true);
  auto b = torch::randn({9}, o).requires_grad_(true);
  auto t = torch::tensor({3, -100, 0, 8, 3}, torch::kLong);
  herd::testing::expect_grads_match_fd(
      [&] { return ops::linear_cross_entropy_fused(x, w, b, t, -100, nullptr, 2); },
      {{"x", x}, {"weight", w}, {"bias", b}}, 1e-6, 1e-7, 40);
}

TEST(KernelCrossEntropy, DoubleBackwardAndRetainedGraphRecompute) {
  torch::manual_seed(4);
  auto o = torch::TensorOptions().dtype(torch::kDouble);
  auto x = torch::randn({6, 4}, o).requires_grad_(true);
  auto w = torch::randn({11, 4}, o).requires_grad_(true);
  auto t = torch::randint(0, 11, {6}, torch::kLong);
  auto second = [&](bool fused) {
    auto loss = fused ? ops::linear_cross_entropy_fused(x, w, {}, t, -100, nullptr, 4)
                      : ops::linear_cross_entropy_reference(x, w, {}, t);
    auto g = torch::autograd::grad({loss}, {x, w}, {}, true, true);
    return torch::autograd::grad({g[0].square().sum() + g[1].sum()}, {x, w});
  };
  auto got = second(true), want = second(false);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-10, 1e-10)) << i;
  // Two backward passes through one retained graph: the second recomputes.
  auto loss = ops::linear_cross_entropy_fused(x, w, {}, t, -100, nullptr, 4);
  auto first = torch::autograd::grad({loss}, {x, w}, {}, true);
  auto again = torch::autograd::grad({loss}, {x, w});
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(torch::allclose(first[i], again[i], 1e-12, 1e-12)) << i;
}

TEST(KernelCrossEntropy, NoGradientComputesTheLossOnly) {
  torch::manual_seed(5);
  auto c = make_case(40, 8, 77, torch::TensorOptions().dtype(torch::kDouble), true, 2);
  torch::NoGradGuard no_grad;
  auto got = ops::linear_cross_entropy_fused(c.x, c.w, c.b, c.t, -100, nullptr, 16);
  EXPECT_FALSE(got.requires_grad());
  EXPECT_NEAR(got.item<double>(),
              ops::linear_cross_entropy_reference(c.x, c.w, c.b, c.t).item<double>(), 1e-12);
  // Every row ignored: NaN, as torch's mean over no rows.
  auto ignored = torch::full({40}, -100, torch::kLong);
  EXPECT_TRUE(std::isnan(ops::linear_cross_entropy_fused(c.x, c.w, c.b, ignored).item<double>()));
  EXPECT_THROW(ops::linear_cross_entropy_fused(c.x, c.w, c.b, torch::full({40}, 77, torch::kLong)),
               herd::Error);
}

TEST(KernelCrossEntropy, SoftmaxExpIsAccurate) {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -88.0f * static_cast<float>(i) / 200000.0f;
    const double want = std::exp(static_cast<double>(x));
    if (want < 1e-37) continue;
    worst = std::max(worst, std::fabs(herd::kernels::softmax_exp(x, 0.0f) - want) / want);
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_EQ(herd::kernels::softmax_exp(1.5f, 1.5f), 1.0f);
  EXPECT_GE(herd::kernels::softmax_exp(-1000.0f, 0.0f), 0.0f);
  EXPECT_LT(herd::kernels::softmax_exp(-1000.0f, 0.0f), 1e-37f);
}

TEST(KernelCrossEntropy, ChunkRowsAndDispatch) {
  EXPECT_EQ(ops::cross_entropy_chunk_rows(10, 17), 10);  // all rows when they fit
  const int64_t big = ops::cross_entropy_chunk_rows(1 << 20, 50257);
  EXPECT_GE(big, 64);
  EXPECT_LE(big * 50257 * 4, int64_t(64) << 20);  // a chunk's fp32 logits stay bounded
  auto x = torch::randn({4, 3}), w = torch::randn({5, 3});
  auto t = torch::randint(0, 5, {4}, torch::kLong);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, w, {}, t), ops::KernelPath::cpu);
  EXPECT_EQ(ops::linear_cross_entropy_path(x.to(torch::kBFloat16), w.to(torch::kBFloat16), {}, t),
            ops::KernelPath::cpu);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, w.to(torch::kDouble), {}, t),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::linear_cross_entropy_path(x.to(torch::kHalf), w.to(torch::kHalf), {}, t),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, w, {}, t.to(torch::kInt)),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, torch::randn({5, 2}), {}, t),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, w, torch::randn({4}), t), ops::KernelPath::reference);
  EXPECT_THROW(ops::linear_cross_entropy_fused(x, w, {}, t.to(torch::kInt)), herd::Error);
  const bool before = ops::set_fused_kernels_enabled(false);
  EXPECT_EQ(ops::linear_cross_entropy_path(x, w, {}, t), ops::KernelPath::reference);
  ops::set_fused_kernels_enabled(before);
}

TEST(KernelCrossEntropy, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(6);
  auto x = torch::randn({4, 3}, torch::kCUDA), w = torch::randn({5, 3}, torch::kCUDA);
  EXPECT_EQ(
      ops::linear_cross_entropy_path(x, w, {}, torch::zeros({4}, x.options().dtype(torch::kLong))),
      ops::KernelPath::cuda);
  compare(torch::kDouble, torch::kCUDA, 1e-12);
  compare(torch::kFloat, torch::kCUDA, 2e-5);
  compare(torch::kBFloat16, torch::kCUDA, 3e-2);
}

}  // namespace
