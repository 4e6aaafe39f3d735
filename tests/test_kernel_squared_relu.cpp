// Fused bias + squared ReLU (kernels/squared_relu.cuh) against relu(x + b).square(): forward
// and gradients (dx, dbias) in float64/float32/bfloat16, odd and power-of-two widths, strided
// inputs, exact zeros at x + b <= 0, finite differences, double backward, deterministic
// dbias, dispatch, the MLP that calls it, and the CUDA kernel when a GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "layers/mlp.h"
#include "ops/squared_relu.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;
using Fn = torch::Tensor (*)(const torch::Tensor&, const torch::Tensor&);

// y, dx, dbias of sum(f(x, b) * g) for x = a transposed view of a leaf [F, rows] (strided on
// purpose); dbias undefined without a bias.
std::vector<torch::Tensor> run(const torch::Tensor& leaf, const torch::Tensor& bias,
                               const torch::Tensor& g, Fn f) {
  leaf.mutable_grad() = torch::Tensor();
  if (bias.defined()) bias.mutable_grad() = torch::Tensor();
  auto y = f(leaf.transpose(0, 1), bias);
  y.backward(g);
  return {y.detach(), leaf.grad(), bias.defined() ? bias.grad() : torch::Tensor()};
}

void compare(torch::ScalarType dt, torch::Device dev, double tol, bool with_bias) {
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  for (int64_t rows : {1, 7, 64, 333}) {
    for (int64_t F : {1, 5, 32, 129}) {
      auto leaf = torch::randn({F, rows}, o);
      auto bias = with_bias ? (0.5 * torch::randn({F}, o)).requires_grad_(true) : torch::Tensor();
      {
        torch::NoGradGuard no_grad;
        // The kink: x + b == 0 exactly gives 0 and gradient 0 on both paths.
        if (with_bias)
          leaf.index_put_({0, 0}, -bias[0]);
        else
          leaf.index_put_({0, 0}, 0.0);
      }
      leaf.requires_grad_(true);
      auto g = torch::randn({rows, F}, o);
      auto got = run(leaf, bias, g, ops::squared_relu_fused),
           want = run(leaf, bias, g, ops::squared_relu_reference);
      for (int i = 0; i < (with_bias ? 3 : 2); ++i) {
        ASSERT_EQ(got[i].sizes(), want[i].sizes());
        // dbias sums `rows` terms: the tolerance grows with it.
        const double t = i == 2 ? tol * (1 + rows / 8.0) : tol;
        EXPECT_TRUE(torch::allclose(got[i].cpu().to(torch::kDouble),
                                    want[i].cpu().to(torch::kDouble), t, t))
            << dt << " rows=" << rows << " F=" << F
            << (i == 0   ? " y"
                : i == 1 ? " dx"
                         : " dbias");
      }
    }
  }
}

TEST(KernelSquaredRelu, CpuMatchesReference) {
  torch::manual_seed(1);
  for (bool with_bias : {false, true}) {
    compare(torch::kDouble, torch::kCPU, 1e-12, with_bias);
    compare(torch::kFloat, torch::kCPU, 1e-5, with_bias);
    // bf16 results are rounded once (fused, from float) vs per op (reference).
    compare(torch::kBFloat16, torch::kCPU, 4e-2, with_bias);
  }
}

TEST(KernelSquaredRelu, FiniteDifferencesFloat64) {
  torch::manual_seed(2);
  // Away from the kink at 0, where the second derivative jumps.
  auto x = (torch::rand({4, 5}, torch::kDouble) + 0.1) * (torch::randint(0, 2, {4, 5}) * 2 - 1);
  x.requires_grad_(true);
  herd::testing::expect_grads_match_fd([&] { return ops::squared_relu_fused(x); }, {{"x", x}}, 1e-6,
                                       1e-8, 20);
  auto b = (torch::rand({5}, torch::kDouble) * 0.05).requires_grad_(true);
  herd::testing::expect_grads_match_fd([&] { return ops::squared_relu_fused(x, b); },
                                       {{"x", x}, {"bias", b}}, 1e-6, 1e-8, 20);
}

TEST(KernelSquaredRelu, DoubleBackwardMatchesReference) {
  torch::manual_seed(3);
  auto x = torch::randn({6, 5}, torch::kDouble).requires_grad_(true);
  auto b = torch::randn({5}, torch::kDouble).requires_grad_(true);
  auto second = [&](Fn f) {
    auto g = torch::autograd::grad({f(x, b).pow(3).sum()}, {x, b}, {}, true, true);
    return torch::autograd::grad({g[0].sum() + g[1].sum()}, {x, b});
  };
  auto got = second(ops::squared_relu_fused), want = second(ops::squared_relu_reference);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-12, 1e-12)) << i;
}

TEST(KernelSquaredRelu, BiasGradientIsDeterministic) {
  torch::manual_seed(4);
  auto x = torch::randn({1000, 67}).requires_grad_(true);
  auto b = torch::randn({67}).requires_grad_(true);
  auto g = torch::randn({1000, 67});
  auto dbias = [&](int threads) {
    const int before = torch::get_num_threads();
    torch::set_num_threads(threads);
    b.mutable_grad() = torch::Tensor();
    ops::squared_relu_fused(x, b).backward(g);
    torch::set_num_threads(before);
    return b.grad().clone();
  };
  auto one = dbias(1);
  EXPECT_TRUE(torch::equal(one, dbias(2)));
  EXPECT_TRUE(torch::equal(one, dbias(2)));
}

TEST(KernelSquaredRelu, DispatchAndFallback) {
  auto x = torch::randn({4, 5});
  auto b = torch::randn({5});
  // The CPU kernel is dispatched to and agrees bitwise in float (one rounding either way).
  EXPECT_EQ(ops::squared_relu_path(x), ops::KernelPath::cpu);
  EXPECT_EQ(ops::squared_relu_path(x, b), ops::KernelPath::cpu);
  EXPECT_EQ(ops::squared_relu_path(x.to(torch::kBFloat16), b.to(torch::kBFloat16)),
            ops::KernelPath::cpu);
  EXPECT_TRUE(torch::equal(ops::squared_relu(x), ops::squared_relu_reference(x)));
  EXPECT_TRUE(torch::equal(ops::squared_relu(x, b), ops::squared_relu_reference(x, b)));
  // What the kernel does not take runs on the reference, and _fused refuses it.
  EXPECT_EQ(ops::squared_relu_path(x.to(torch::kHalf)), ops::KernelPath::reference);
  EXPECT_EQ(ops::squared_relu_path(torch::empty({0})), ops::KernelPath::reference);
  EXPECT_EQ(ops::squared_relu_path(x, b.to(torch::kDouble)), ops::KernelPath::reference);
  EXPECT_EQ(ops::squared_relu_path(x, torch::randn({4})), ops::KernelPath::reference);
  EXPECT_THROW(ops::squared_relu_fused(x.to(torch::kHalf)), herd::Error);
  EXPECT_THROW(ops::squared_relu_fused(x, torch::randn({3})), herd::Error);
  EXPECT_TRUE(torch::equal(ops::squared_relu(x.to(torch::kHalf)),
                           ops::squared_relu_reference(x.to(torch::kHalf))));
  // With fused kernels switched off everything is the reference.
  const bool before = ops::set_fused_kernels_enabled(false);
  EXPECT_EQ(ops::squared_relu_path(x, b), ops::KernelPath::reference);
  ops::set_fused_kernels_enabled(before);
}

TEST(KernelSquaredRelu, MlpCallsTheFusedOpWithFc1sBias) {
  torch::manual_seed(5);
  herd::Mlp mlp(8, 24, herd::Activation::squared_relu);
  mlp->to(torch::kDouble);
  auto x = torch::randn({2, 5, 8}, torch::kDouble);
  auto ref = mlp->fc2(torch::relu(mlp->fc1(x)).square());
  EXPECT_TRUE(torch::allclose(mlp(x), ref, 1e-12, 1e-12));
  // Same gradients for fc1's weight and bias as the unfused module.
  mlp(x).sum().backward();
  auto gw = mlp->fc1->weight.grad().clone(), gb = mlp->fc1->bias.grad().clone();
  mlp->zero_grad();
  ref.sum().backward();
  EXPECT_TRUE(torch::allclose(gw, mlp->fc1->weight.grad(), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(gb, mlp->fc1->bias.grad(), 1e-12, 1e-12));
  // Parameter names are those of checkpoints.
  std::vector<std::string> names;
  for (const auto& p : mlp->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
}

TEST(KernelSquaredRelu, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(6);
  EXPECT_EQ(ops::squared_relu_path(torch::randn({2}, torch::kCUDA)), ops::KernelPath::cuda);
  for (bool with_bias : {false, true}) {
    compare(torch::kDouble, torch::kCUDA, 1e-12, with_bias);
    compare(torch::kFloat, torch::kCUDA, 1e-5, with_bias);
    compare(torch::kBFloat16, torch::kCUDA, 4e-2, with_bias);
  }
}

}  // namespace
