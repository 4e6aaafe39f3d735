// Fused residual add + LayerNorm (kernels/add_layer_norm.cuh) against h + delta and
// torch::layer_norm: both outputs and every gradient (dh, ddelta, dweight, dbias) in
// float64/float32/bfloat16 and the autocast mix (float h, bf16 delta), with and without a
// delta, odd and power-of-two widths, strided inputs, finite differences, double backward,
// deterministic parameter gradients, dispatch, and the CUDA kernel when a GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "ops/add_layer_norm.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;
using Fn = ops::AddNorm (*)(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                            const torch::Tensor&, double);

struct Case {
  torch::Tensor h, delta, w, b;  // leaves; h and delta are used through transposed views
};

Case make_case(int64_t rows, int64_t D, torch::TensorOptions o, bool with_delta,
               torch::ScalarType delta_dtype) {
  Case c;
  c.h = (torch::randn({D, rows}, o) * 2 + 0.5).requires_grad_(true);
  if (with_delta) c.delta = torch::randn({D, rows}, o.dtype(delta_dtype)).requires_grad_(true);
  c.w = (1 + 0.3 * torch::randn({D}, o)).requires_grad_(true);
  c.b = (0.1 * torch::randn({D}, o)).requires_grad_(true);
  return c;
}

// {sum, normed, dh, ddelta, dw, db} of sum(s * g1) + sum(y * g2).
std::vector<torch::Tensor> run(Case& c, const torch::Tensor& g1, const torch::Tensor& g2, Fn f,
                               double eps = 1e-5) {
  for (auto* t : {&c.h, &c.delta, &c.w, &c.b})
    if (t->defined()) t->mutable_grad() = torch::Tensor();
  auto out =
      f(c.h.transpose(0, 1), c.delta.defined() ? c.delta.transpose(0, 1) : c.delta, c.w, c.b, eps);
  ((out.sum.to(g1.scalar_type()) * g1).sum() + (out.normed * g2).sum()).backward();
  return {out.sum.detach(), out.normed.detach(),
          c.h.grad(),       c.delta.defined() ? c.delta.grad() : torch::Tensor(),
          c.w.grad(),       c.b.grad()};
}

void compare(torch::ScalarType dt, torch::Device dev, double tol, bool with_delta,
             torch::ScalarType delta_dtype) {
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  const char* names[] = {"sum", "normed", "dh", "ddelta", "dweight", "dbias"};
  const std::pair<int64_t, int64_t> shapes[] = {{1, 5}, {7, 32}, {64, 129}, {33, 768}, {333, 16}};
  for (const auto& [rows, D] : shapes) {
    {
      auto c = make_case(rows, D, o, with_delta, delta_dtype);
      auto g1 = torch::randn({rows, D}, o), g2 = torch::randn({rows, D}, o);
      auto got = run(c, g1, g2, ops::add_layer_norm_fused),
           want = run(c, g1, g2, ops::add_layer_norm_reference);
      for (int i = 0; i < 6; ++i) {
        if (!want[i].defined()) continue;
        ASSERT_TRUE(got[i].defined()) << names[i];
        ASSERT_EQ(got[i].sizes(), want[i].sizes()) << names[i];
        EXPECT_EQ(got[i].scalar_type(), want[i].scalar_type()) << names[i];
        // Parameter gradients sum `rows` terms: the tolerance grows with them. A bf16 delta's
        // gradient is rounded to bf16 by both paths, which may land one bf16 ulp apart.
        double t = i >= 4 ? tol * (1 + rows / 16.0) : tol;
        if (i == 3 && delta_dtype == torch::kBFloat16) t = std::max(t, 2e-2);
        EXPECT_TRUE(torch::allclose(got[i].cpu().to(torch::kDouble),
                                    want[i].cpu().to(torch::kDouble), t, t))
            << dt << " rows=" << rows << " D=" << D << " " << names[i] << " max diff "
            << (got[i].cpu().to(torch::kDouble) - want[i].cpu().to(torch::kDouble)).abs().max();
      }
    }
  }
}

void compare_all(torch::Device dev) {
  for (bool with_delta : {false, true}) {
    compare(torch::kDouble, dev, 1e-11, with_delta, torch::kDouble);
    compare(torch::kFloat, dev, 1e-4, with_delta, torch::kFloat);
    compare(torch::kBFloat16, dev, 6e-2, with_delta, torch::kBFloat16);
  }
  // Autocast's mix: a float residual stream plus a bfloat16 branch output.
  compare(torch::kFloat, dev, 1e-4, true, torch::kBFloat16);
}

TEST(KernelAddLayerNorm, CpuMatchesReference) {
  torch::manual_seed(1);
  compare_all(torch::kCPU);
}

TEST(KernelAddLayerNorm, FiniteDifferencesFloat64) {
  torch::manual_seed(2);
  auto o = torch::TensorOptions().dtype(torch::kDouble);
  auto h = torch::randn({3, 6}, o).requires_grad_(true);
  auto d = torch::randn({3, 6}, o).requires_grad_(true);
  auto w = (1 + 0.3 * torch::randn({6}, o)).requires_grad_(true);
  auto b = torch::randn({6}, o).requires_grad_(true);
  // Both outputs reach the loss: f returns them side by side.
  herd::testing::expect_grads_match_fd(
      [&] {
        auto r = ops::add_layer_norm_fused(h, d, w, b, 1e-5);
        return torch::cat({r.sum, r.normed}, 1);
      },
      {{"h", h}, {"delta", d}, {"weight", w}, {"bias", b}}, 1e-6, 1e-7, 20);
  herd::testing::expect_grads_match_fd(
      [&] { return ops::add_layer_norm_fused(h, {}, w, b, 1e-5).normed; },
      {{"h", h}, {"weight", w}, {"bias", b}}, 1e-6, 1e-7, 20);
}

TEST(KernelAddLayerNorm, DoubleBackwardMatchesReference) {
  torch::manual_seed(3);
  auto o = torch::TensorOptions().dtype(torch::kDouble);
  auto h = torch::randn({4, 7}, o).requires_grad_(true);
  auto d = torch::randn({4, 7}, o).requires_grad_(true);
  auto w = torch::randn({7}, o).requires_grad_(true);
  auto b = torch::randn({7}, o).requires_grad_(true);
  auto second = [&](Fn f) {
    auto r = f(h, d, w, b, 1e-5);
    auto loss = (r.normed.pow(3) + r.sum.sin() * r.normed).sum();
    auto g = torch::autograd::grad({loss}, {h, d, w}, {}, true, true);
    return torch::autograd::grad({g[0].square().sum() + g[1].sum() + g[2].square().sum()},
                                 {h, d, w, b}, {}, false, false, true);
  };
  auto got = second(ops::add_layer_norm_fused), want = second(ops::add_layer_norm_reference);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(got[i].defined(), want[i].defined()) << i;
    if (want[i].defined()) {
      EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-10, 1e-10)) << i;
    }
  }
}

TEST(KernelAddLayerNorm, EitherOutputAloneGivesTheReferenceGradients) {
  torch::manual_seed(6);
  for (int used : {0, 1}) {  // 0: only the sum reaches the loss, 1: only the norm
    auto c = make_case(9, 24, torch::TensorOptions().dtype(torch::kDouble), true, torch::kDouble);
    auto g = torch::randn({9, 24}, torch::kDouble);
    auto grads = [&](Fn f) {
      auto r = f(c.h.t(), c.delta.t(), c.w, c.b, 1e-5);
      auto loss = ((used ? r.normed : r.sum) * g).sum();
      return torch::autograd::grad({loss}, {c.h, c.delta, c.w, c.b}, {}, false, false, true);
    };
    auto got = grads(ops::add_layer_norm_fused), want = grads(ops::add_layer_norm_reference);
    const torch::Tensor inputs[] = {c.h, c.delta, c.w, c.b};
    for (int i = 0; i < 4; ++i) {
      // Unused parameters: the reference leaves them undefined, the fused op gives zeros.
      auto zero_if_none = [&](const torch::Tensor& t) {
        return t.defined() ? t : torch::zeros_like(inputs[i]);
      };
      EXPECT_TRUE(torch::allclose(zero_if_none(got[i]), zero_if_none(want[i]), 1e-12, 1e-12))
          << used << " " << i;
    }
  }
}

TEST(KernelAddLayerNorm, ParameterGradientsAreDeterministic) {
  torch::manual_seed(4);
  auto c = make_case(1000, 67, torch::TensorOptions(), true, torch::kFloat);
  auto g1 = torch::randn({1000, 67}), g2 = torch::randn({1000, 67});
  auto grads = [&](int threads) {
    const int before = torch::get_num_threads();
    torch::set_num_threads(threads);
    auto r = run(c, g1, g2, ops::add_layer_norm_fused);
    torch::set_num_threads(before);
    return std::make_pair(r[4].clone(), r[5].clone());
  };
  auto one = grads(1), two = grads(2);
  EXPECT_TRUE(torch::equal(one.first, two.first));
  EXPECT_TRUE(torch::equal(one.second, two.second));
}

TEST(KernelAddLayerNorm, DispatchAndFallback) {
  auto h = torch::randn({4, 6}), d = torch::randn({4, 6});
  auto w = torch::ones({6}), b = torch::zeros({6});
  EXPECT_EQ(ops::add_layer_norm_path(h, d, w, b), ops::KernelPath::cpu);
  EXPECT_EQ(ops::add_layer_norm_path(h, {}, w, b), ops::KernelPath::cpu);
  EXPECT_EQ(ops::add_layer_norm_path(h, d.to(torch::kBFloat16), w, b), ops::KernelPath::cpu);
  // Broadcasting, other dtype mixes, half, mismatched parameters: the reference.
  EXPECT_EQ(ops::add_layer_norm_path(h, torch::randn({6}), w, b), ops::KernelPath::reference);
  EXPECT_EQ(ops::add_layer_norm_path(h, d.to(torch::kDouble), w, b), ops::KernelPath::reference);
  EXPECT_EQ(ops::add_layer_norm_path(h.to(torch::kHalf), d.to(torch::kHalf), w.to(torch::kHalf),
                                     b.to(torch::kHalf)),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::add_layer_norm_path(h, d, torch::ones({5}), b), ops::KernelPath::reference);
  EXPECT_EQ(ops::add_layer_norm_path(h, d, w.to(torch::kDouble), b), ops::KernelPath::reference);
  EXPECT_THROW(ops::add_layer_norm_fused(h, torch::randn({6}), w, b, 1e-5), herd::Error);
  // The reference broadcasts where the kernel does not.
  auto r = ops::add_layer_norm(h, torch::randn({6}), w, b, 1e-5);
  EXPECT_EQ(r.normed.sizes(), h.sizes());
  // The sum without a delta is h itself.
  EXPECT_TRUE(ops::add_layer_norm(h, {}, w, b, 1e-5).sum.is_same(h));
  const bool before = ops::set_fused_kernels_enabled(false);
  EXPECT_EQ(ops::add_layer_norm_path(h, d, w, b), ops::KernelPath::reference);
  ops::set_fused_kernels_enabled(before);
}

TEST(KernelAddLayerNorm, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(5);
  auto h = torch::randn({4, 6}, torch::kCUDA);
  EXPECT_EQ(ops::add_layer_norm_path(h, h, torch::ones({6}, torch::kCUDA),
                                     torch::zeros({6}, torch::kCUDA)),
            ops::KernelPath::cuda);
  compare_all(torch::kCUDA);
}

}  // namespace
