// Fused squared ReLU (kernels/squared_relu.cuh) against relu(x).square(): forward and gradient
// in float64/float32/bfloat16, strided inputs, exact zeros at x <= 0, finite differences,
// double backward, dispatch, and the CUDA kernel when a GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "ops/squared_relu.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;

// y and dx of sum(f(x) * g) for x = a transposed view of a leaf (strided on purpose).
std::vector<torch::Tensor> run(const torch::Tensor& leaf, const torch::Tensor& g,
                               torch::Tensor (*f)(const torch::Tensor&)) {
  leaf.mutable_grad() = torch::Tensor();
  auto y = f(leaf.transpose(0, 1));
  y.backward(g);
  return {y.detach(), leaf.grad()};
}

void compare(torch::ScalarType dt, torch::Device dev, double tol) {
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  for (int64_t n : {1, 7, 33, 1000}) {
    auto leaf = torch::randn({n, 3}, o);
    leaf.index_put_({0, 0}, 0.0);  // the kink: both paths give 0 and gradient 0
    leaf.requires_grad_(true);
    auto g = torch::randn({3, n}, o);
    auto got = run(leaf, g, ops::squared_relu_fused),
         want = run(leaf, g, ops::squared_relu_reference);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(got[i].sizes(), want[i].sizes());
      EXPECT_TRUE(torch::allclose(got[i].cpu().to(torch::kDouble), want[i].cpu().to(torch::kDouble),
                                  tol, tol))
          << dt << " n=" << n << (i ? " dx" : " y");
    }
  }
}

TEST(KernelSquaredRelu, CpuMatchesReference) {
  torch::manual_seed(1);
  compare(torch::kDouble, torch::kCPU, 1e-12);
  compare(torch::kFloat, torch::kCPU, 1e-6);
  // bf16 results are rounded once (fused, from float) vs per op (reference): one ulp apart.
  compare(torch::kBFloat16, torch::kCPU, 2e-2);
}

TEST(KernelSquaredRelu, FiniteDifferencesFloat64) {
  torch::manual_seed(2);
  // Away from the kink at 0, where the second derivative jumps.
  auto x = (torch::rand({4, 5}, torch::kDouble) + 0.1) * (torch::randint(0, 2, {4, 5}) * 2 - 1);
  x.requires_grad_(true);
  herd::testing::expect_grads_match_fd([&] { return ops::squared_relu_fused(x); }, {{"x", x}}, 1e-6,
                                       1e-8, 20);
}

TEST(KernelSquaredRelu, DoubleBackwardMatchesReference) {
  torch::manual_seed(3);
  auto x = torch::randn({6, 5}, torch::kDouble).requires_grad_(true);
  auto second = [&](auto f) {
    auto gx = torch::autograd::grad({f(x).pow(3).sum()}, {x}, {}, true, true)[0];
    return torch::autograd::grad({gx.sum()}, {x})[0];
  };
  EXPECT_TRUE(torch::allclose(second(ops::squared_relu_fused), second(ops::squared_relu_reference),
                              1e-12, 1e-12));
}

TEST(KernelSquaredRelu, DispatchAndFallback) {
  auto x = torch::randn({4, 5});
  // The CPU kernel is not dispatched to (no clear win over ATen), yet agrees bitwise in float.
  EXPECT_EQ(ops::squared_relu_path(x), ops::KernelPath::reference);
  EXPECT_TRUE(torch::equal(ops::squared_relu(x), ops::squared_relu_fused(x)));
  EXPECT_EQ(ops::squared_relu_path(x.to(torch::kHalf)), ops::KernelPath::reference);
  EXPECT_EQ(ops::squared_relu_path(torch::empty({0})), ops::KernelPath::reference);
  EXPECT_THROW(ops::squared_relu_fused(x.to(torch::kHalf)), herd::Error);
  EXPECT_TRUE(torch::equal(ops::squared_relu(x.to(torch::kHalf)),
                           ops::squared_relu_reference(x.to(torch::kHalf))));
}

TEST(KernelSquaredRelu, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(4);
  EXPECT_EQ(ops::squared_relu_path(torch::randn({2}, torch::kCUDA)), ops::KernelPath::cuda);
  compare(torch::kDouble, torch::kCUDA, 1e-12);
  compare(torch::kFloat, torch::kCUDA, 1e-6);
  compare(torch::kBFloat16, torch::kCUDA, 2e-2);
}

}  // namespace
