// Fused short_conv (kernels/short_conv.cuh) against the ATen conv1d reference: forward and
// every gradient over a table of shapes, strides and dtypes, finite differences in float64,
// dispatch/fallback rules, double backward, and the CUDA kernel when a GPU is present.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/short_conv.cuh"
#include "ops/registry.h"
#include "ops/short_conv.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;

struct Case {
  int64_t B, C, L, K;
  bool bias, transposed;
  bool dy_rows = false;  // upstream gradient contiguous [B, C, L] (as the blocks' split gives)
};

std::string name(const Case& c, torch::ScalarType dt) {
  std::ostringstream s;
  s << "B" << c.B << " C" << c.C << " L" << c.L << " K" << c.K << (c.bias ? " bias" : "")
    << (c.transposed ? " transposed" : "") << (c.dy_rows ? " dy rows" : "") << " " << dt;
  return s.str();
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t L : {1, 2, 7, 33})
    for (int64_t K : {2, 3, 5})
      for (bool bias : {false, true})
        for (bool tr : {false, true}) out.push_back({2, 3, L, K, bias, tr});
  out.push_back({1, 1, 4, 1, true, false});    // K = 1: a per-channel scale
  out.push_back({3, 5, 3, 7, true, true});     // K > L: taps reach past the start
  out.push_back({2, 4, 65, 64, false, true});  // widest supported filter
  out.push_back({1, 32, 65, 4, true, true});   // transposed: two full channel tiles
  out.push_back({2, 37, 40, 3, true, true});   // and a partial one
  // Contiguous dy: the wide (64-channel) tiles of transposed x, full and partial, with dy
  // read 16 steps at a time, and the tap-by-tap dx rows.
  out.push_back({2, 100, 40, 3, true, true, true});
  out.push_back({1, 128, 65, 4, false, true, true});
  out.push_back({3, 5, 3, 7, true, true, true});
  out.push_back({2, 3, 33, 5, true, false, true});
  out.push_back({1, 4, 2, 3, true, false, true});  // L < K
  return out;
}

struct Inputs {
  torch::Tensor x_leaf, x, w, b, g;
};

// x is a [B, C, L] view of a leaf; transposed means the leaf is [B, L, C] as in the blocks.
// g (the upstream gradient) is a transposed view too, so the kernels see strided dy.
Inputs make(const Case& c, torch::ScalarType dt, torch::Device dev = torch::kCPU) {
  auto o = torch::TensorOptions().dtype(dt).device(dev);
  Inputs in;
  in.x_leaf = c.transposed ? torch::randn({c.B, c.L, c.C}, o) : torch::randn({c.B, c.C, c.L}, o);
  in.x_leaf.requires_grad_(true);
  in.x = c.transposed ? in.x_leaf.transpose(1, 2) : in.x_leaf;
  in.w = torch::randn({c.C, 1, c.K}, o).requires_grad_(true);
  if (c.bias) in.b = torch::randn({c.C}, o).requires_grad_(true);
  in.g = c.dy_rows ? torch::randn({c.B, c.C, c.L}, o)
                   : torch::randn({c.B, c.L, c.C}, o).transpose(1, 2);
  return in;
}

// Output and gradients (x, w, bias) of sum(f(x, w, b) * g).
std::vector<torch::Tensor> run(const Inputs& in,
                               torch::Tensor (*f)(const torch::Tensor&, const torch::Tensor&,
                                                  const torch::Tensor&)) {
  for (auto t : {in.x_leaf, in.w, in.b})
    if (t.defined()) t.mutable_grad() = torch::Tensor();
  auto y = f(in.x, in.w, in.b);
  y.backward(in.g);
  std::vector<torch::Tensor> out{y.detach(), in.x_leaf.grad(), in.w.grad()};
  if (in.b.defined()) out.push_back(in.b.grad());
  return out;
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                  double rtol, double atol, const std::string& what) {
  const char* names[] = {"y", "dx", "dw", "dbias"};
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(got[i].defined()) << what << " " << names[i];
    ASSERT_EQ(got[i].sizes(), want[i].sizes()) << what << " " << names[i];
    const auto g = got[i].cpu(), w = want[i].cpu();
    EXPECT_TRUE(torch::allclose(g, w, rtol, atol))
        << what << " " << names[i] << ": max |diff| " << (g - w).abs().max().item<double>();
  }
}

TEST(KernelShortConv, CpuMatchesReferenceFloat64) {
  torch::manual_seed(1);
  for (const auto& c : cases()) {
    auto in = make(c, torch::kDouble);
    EXPECT_EQ(ops::short_conv_path(in.x, in.w, in.b), ops::KernelPath::cpu)
        << name(c, torch::kDouble);
    expect_close(run(in, ops::short_conv_fused), run(in, ops::short_conv_reference), 1e-12, 1e-12,
                 name(c, torch::kDouble));
  }
}

TEST(KernelShortConv, CpuMatchesReferenceFloat32) {
  torch::manual_seed(2);
  for (const auto& c : cases()) {
    auto in = make(c, torch::kFloat);
    expect_close(run(in, ops::short_conv_fused), run(in, ops::short_conv_reference), 1e-5, 1e-5,
                 name(c, torch::kFloat));
  }
}

TEST(KernelShortConv, DispatcherIsTheFusedPathOnCpu) {
  torch::manual_seed(3);
  auto in = make({2, 6, 33, 3, true, true}, torch::kFloat);
  // Bitwise: short_conv() must run the very same kernel as short_conv_fused().
  EXPECT_TRUE(
      torch::equal(ops::short_conv(in.x, in.w, in.b), ops::short_conv_fused(in.x, in.w, in.b)));
}

TEST(KernelShortConv, FiniteDifferencesFloat64) {
  torch::manual_seed(4);
  for (bool tr : {false, true}) {
    auto in = make({2, 3, 7, 3, true, tr}, torch::kDouble);
    herd::testing::expect_grads_match_fd(
        [&] {
          return ops::short_conv_fused(tr ? in.x_leaf.transpose(1, 2) : in.x_leaf, in.w, in.b);
        },
        {{"x", in.x_leaf}, {"w", in.w}, {"bias", in.b}}, 1e-6, 1e-8, 64);
  }
}

TEST(KernelShortConv, DoubleBackwardMatchesReference) {
  torch::manual_seed(5);
  auto in = make({2, 3, 9, 3, true, true}, torch::kDouble);
  auto second = [&](auto f) {
    auto y = f(in.x, in.w, in.b);
    auto gx = torch::autograd::grad({(y * in.g).sum()}, {in.x_leaf}, {}, true, true)[0];
    return torch::autograd::grad({gx.square().sum()}, {in.w})[0];
  };
  auto got = second(ops::short_conv_fused), want = second(ops::short_conv_reference);
  EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12)) << (got - want).abs().max().item<double>();
}

TEST(KernelShortConv, UnsupportedInputsFallBackVisibly) {
  auto x = torch::randn({2, 3, 8}), w = torch::randn({3, 1, 3}), b = torch::randn({3});
  EXPECT_EQ(ops::short_conv_path(x, w, b), ops::KernelPath::cpu);
  const auto bf = torch::kBFloat16;
  EXPECT_EQ(ops::short_conv_path(x.to(bf), w.to(bf), b.to(bf)), ops::KernelPath::cpu);
  EXPECT_EQ(ops::short_conv_path(x.to(bf), w, b), ops::KernelPath::cpu);  // float taps
  EXPECT_EQ(ops::short_conv_path(x.to(bf), w, b.to(bf)), ops::KernelPath::reference);
  EXPECT_EQ(ops::short_conv_path(x.to(torch::kHalf), w.to(torch::kHalf), b.to(torch::kHalf)),
            ops::KernelPath::reference);
  EXPECT_EQ(ops::short_conv_path(x, w.to(torch::kDouble), b), ops::KernelPath::reference);
  EXPECT_EQ(ops::short_conv_path(x, torch::randn({3, 1, 65}), b), ops::KernelPath::reference);
  EXPECT_EQ(ops::short_conv_path(x, torch::randn({3, 2, 3}), b), ops::KernelPath::reference);
  EXPECT_EQ(ops::short_conv_path(torch::randn({2, 3, 0}), w, b), ops::KernelPath::reference);
  EXPECT_THROW(ops::short_conv_fused(x.to(bf), w.to(bf), b.to(torch::kHalf)), herd::Error);
  // The fallback still computes: half through conv1d.
  const auto h = torch::kHalf;
  auto y = ops::short_conv(x.to(h), w.to(h), b.to(h));
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), ops::short_conv_reference(x, w, b), 5e-2, 5e-2));
  EXPECT_FALSE(ops::fused_op_lines().empty());
}

TEST(KernelShortConv, Bfloat16ActivationsWithFloatTaps) {
  torch::manual_seed(7);
  for (bool tr : {false, true}) {
    auto in = make({2, 37, 50, 3, true, tr}, torch::kFloat);
    const auto xb = in.x.to(torch::kBFloat16);
    ASSERT_EQ(ops::short_conv_path(xb, in.w, in.b), ops::KernelPath::cpu);
    auto y = ops::short_conv_fused(xb, in.w, in.b);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    // The same bf16 inputs in float: only the output's bf16 rounding separates the two.
    auto want = ops::short_conv_reference(xb.to(torch::kFloat), in.w, in.b);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), want, 1e-2, 1e-2));
    // Gradients: dx in bf16, dw and dbias in float (the weights' dtype), sums in float/double.
    auto xl = xb.detach().requires_grad_(true);
    ops::short_conv_fused(xl, in.w, in.b).backward(in.g.to(torch::kBFloat16));
    auto gw = in.w.grad().clone(), gb = in.b.grad().clone();
    EXPECT_EQ(xl.grad().scalar_type(), torch::kBFloat16);
    EXPECT_EQ(gw.scalar_type(), torch::kFloat);
    in.w.mutable_grad() = torch::Tensor();
    in.b.mutable_grad() = torch::Tensor();
    auto xr = xb.to(torch::kFloat).detach().requires_grad_(true);
    ops::short_conv_reference(xr, in.w, in.b).backward(in.g.to(torch::kBFloat16).to(torch::kFloat));
    EXPECT_TRUE(torch::allclose(xl.grad().to(torch::kFloat), xr.grad(), 1e-2, 1e-2));
    EXPECT_TRUE(torch::allclose(gw, in.w.grad(), 1e-4, 1e-4));
    EXPECT_TRUE(torch::allclose(gb, in.b.grad(), 1e-4, 1e-4));
  }
}

TEST(KernelShortConv, AutocastRunsTheFusedPathInBfloat16) {
  torch::manual_seed(8);
  auto in = make({2, 20, 33, 3, true, true}, torch::kFloat);
  torch::Tensor y;
  at::autocast::set_autocast_enabled(torch::kCPU, true);
  at::autocast::set_autocast_dtype(torch::kCPU, torch::kBFloat16);
  y = ops::short_conv(in.x, in.w, in.b);
  auto ref = ops::short_conv_reference(in.x, in.w, in.b);  // conv1d under autocast: bf16
  at::autocast::set_autocast_enabled(torch::kCPU, false);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(ref.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), ref.to(torch::kFloat), 3e-2, 3e-2));
  // Bitwise the fused kernel on the bf16-cast input.
  EXPECT_TRUE(torch::equal(y, ops::short_conv_fused(in.x.to(torch::kBFloat16), in.w, in.b)));
}

// The CUDA kernels' thread loop run on the CPU: output i -> (b, c, t, offset) by
// short_conv_point_of (channels-last inputs: c fastest, into a [B, L, C] output), each output
// from the shared point functions in the launcher's Acc; every output written exactly once and
// equal to the reference, fp32 and bfloat16 (float taps, float sums, one rounding at the end).
TEST(KernelShortConv, CudaThreadMappingEmulatedOnCpu) {
  namespace K = herd::kernels;
  torch::manual_seed(9);
  for (const bool bf16 : {false, true})
    for (const auto& c : cases()) {
      auto in = make(c, torch::kFloat);
      auto x = bf16 ? in.x.detach().to(torch::kBFloat16) : in.x.detach();
      auto g = bf16 ? in.g.to(torch::kBFloat16) : in.g;
      const auto w = in.w.detach().view({c.C, c.K}).contiguous();
      const K::Strided3 xd{x.size(0), x.size(1), x.size(2), x.stride(0), x.stride(1), x.stride(2)};
      const K::Strided3 gd{g.size(0), g.size(1), g.size(2), g.stride(0), g.stride(1), g.stride(2)};
      auto out_like = [&](const K::Strided3& d) {
        return K::short_conv_channels_last(d)
                   ? torch::full({d.B, d.L, d.C}, NAN, torch::kFloat).transpose(1, 2)
                   : torch::full({d.B, d.C, d.L}, NAN, torch::kFloat);
      };
      auto y = out_like(xd), dx = out_like(gd);
      const float* wp = w.data_ptr<float>();
      const float* bp = in.b.defined() ? in.b.data_ptr<float>() : nullptr;
      auto emulate = [&](auto* xp, auto* gp) {
        float* yp = y.data_ptr<float>();
        float* dxp = dx.data_ptr<float>();
        for (int64_t i = 0; i < xd.B * xd.C * xd.L; ++i) {
          const auto p = K::short_conv_point_of(i, xd);
          float acc = K::short_conv_fwd_point<float>(xp + p.b * xd.sb + p.c * xd.sc, xd.st,
                                                     wp + p.c * c.K, c.K, p.t);
          if (bp) acc += bp[p.c];
          ASSERT_TRUE(std::isnan(yp[p.out])) << "output " << p.out << " written twice";
          yp[p.out] = bf16 ? static_cast<float>(c10::BFloat16(acc)) : acc;
          const auto q = K::short_conv_point_of(i, gd);
          const float d = K::short_conv_dx_point<float>(gp + q.b * gd.sb + q.c * gd.sc, gd.st,
                                                        wp + q.c * c.K, c.K, gd.L, q.t);
          dxp[q.out] = bf16 ? static_cast<float>(c10::BFloat16(d)) : d;
        }
      };
      if (bf16)
        emulate(x.data_ptr<c10::BFloat16>(), g.data_ptr<c10::BFloat16>());
      else
        emulate(x.data_ptr<float>(), g.data_ptr<float>());
      // The reference on the same (rounded) inputs, in float.
      auto xr = x.to(torch::kFloat).requires_grad_(true);
      auto want =
          ops::short_conv_reference(xr, in.w.detach(), in.b.defined() ? in.b.detach() : in.b);
      auto want_dx = torch::autograd::grad({want}, {xr}, {g.to(torch::kFloat)})[0];
      if (bf16) {
        want = want.to(torch::kBFloat16).to(torch::kFloat);
        want_dx = want_dx.to(torch::kBFloat16).to(torch::kFloat);
      }
      const double tol = bf16 ? 2e-2 : 1e-5;
      EXPECT_FALSE(y.isnan().any().item<bool>()) << name(c, x.scalar_type());
      EXPECT_TRUE(torch::allclose(y, want, tol, tol)) << name(c, x.scalar_type());
      EXPECT_TRUE(torch::allclose(dx, want_dx, tol, tol)) << name(c, x.scalar_type());
      // Channels-last inputs give channels-last outputs (what makes the writes coalesced).
      if (c.L > 1 && c.C > 1) {
        EXPECT_EQ(y.stride(1) == 1, c.transposed) << name(c, x.scalar_type());
      }
    }
}

TEST(KernelShortConv, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(6);
  for (auto dt : {torch::kDouble, torch::kFloat}) {
    const double tol = dt == torch::kDouble ? 1e-12 : 1e-5;
    auto all = cases();
    all.push_back({4, 96, 1000, 3, true, true});
    for (const auto& c : all) {
      auto in = make(c, dt, torch::kCUDA);
      EXPECT_EQ(ops::short_conv_path(in.x, in.w, in.b), ops::KernelPath::cuda);
      expect_close(run(in, ops::short_conv_fused), run(in, ops::short_conv_reference), tol,
                   tol * 10, "cuda " + name(c, dt));
    }
  }
  // bfloat16 activations and taps against the reference in float on the same inputs.
  for (const auto& c : cases()) {
    auto in = make(c, torch::kBFloat16, torch::kCUDA);
    EXPECT_EQ(ops::short_conv_path(in.x, in.w, in.b), ops::KernelPath::cuda);
    auto got = run(in, ops::short_conv_fused);
    Inputs ref = in;
    ref.x_leaf = in.x_leaf.detach().to(torch::kFloat).requires_grad_(true);
    ref.x = c.transposed ? ref.x_leaf.transpose(1, 2) : ref.x_leaf;
    ref.w = in.w.detach().to(torch::kFloat).requires_grad_(true);
    if (in.b.defined()) ref.b = in.b.detach().to(torch::kFloat).requires_grad_(true);
    ref.g = in.g.to(torch::kFloat);
    auto want = run(ref, ops::short_conv_reference);
    for (auto& t : got) t = t.defined() ? t.to(torch::kFloat) : t;
    expect_close(got, want, 3e-2, 3e-2, "cuda bf16 " + name(c, torch::kBFloat16));
  }
}

}  // namespace
