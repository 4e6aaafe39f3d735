// Fused SSM kernel generation (kernels/ssm_kernel.cuh) against the materializing ATen
// reference: forward and the gradients of every H3 diagonal-SSM parameter in float64 and
// float32 (float32 judged against a float64 computation), odd/power-of-two lengths, odd mode
// counts, strided and conjugated inputs, finite differences, double backward, dispatch, and
// the CUDA kernel when a GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/registry.h"
#include "ops/ssm_kernel.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;
using herd::testing::max_abs;
using KernelFn = torch::Tensor (*)(const torch::Tensor&, const torch::Tensor&, int64_t);

// Complex tensors as (re, im) pairs, in double on the CPU.
torch::Tensor as_real64(const torch::Tensor& t) {
  auto c = t.detach().cpu();
  if (c.is_complex()) c = torch::view_as_real(c.resolve_conj());
  return c.to(torch::kDouble);
}

double rel(const torch::Tensor& got, const torch::Tensor& want) {
  const auto g = as_real64(got), w = as_real64(want);
  return max_abs(g - w) / std::max(max_abs(w), 1e-300);
}

// A diagonal SSM as H3 builds it (S4D-Lin, dt in [1e-3, 1e-1]), perturbed so that no
// parameter sits at its structured init; dt up to 0.1 puts high modes' dA near -1.
ops::DiagSSMKernel make_ssm(int64_t H, int64_t N2, torch::ScalarType dt) {
  ops::DiagSSMKernel m(H, 2 * N2, "diag-lin", 1e-3, 1e-1);
  m->to(dt);
  torch::NoGradGuard ng;
  for (auto& p : m->parameters()) p.add_(0.05 * torch::randn_like(p));
  return m;
}

// The module's prologue (as DiagSSMKernelImpl::forward) with the final op chosen by `f`.
torch::Tensor kernel_of(ops::DiagSSMKernelImpl& m, int64_t L, KernelFn f) {
  auto dt = torch::exp(m.log_dt).unsqueeze(-1);
  auto A = torch::complex(-torch::exp(m.inv_A_real), m.A_imag);
  auto dtA = A * dt;
  auto Ct = torch::view_as_complex(m.B) * torch::view_as_complex(m.C[0]) * dt / (1 - dtA / 2);
  auto dA = (1 + dtA / 2) / (1 - dtA / 2);
  return f(Ct, torch::log(dA), L);
}

// K and the gradients of sum(K * g) w.r.t. C, log_dt, B, inv_A_real, A_imag.
std::vector<torch::Tensor> run(ops::DiagSSMKernelImpl& m, int64_t L, const torch::Tensor& g,
                               KernelFn f) {
  auto K = kernel_of(m, L, f);
  auto grads = torch::autograd::grad({(K * g).sum()}, {m.C, m.log_dt, m.B, m.inv_A_real, m.A_imag});
  std::vector<torch::Tensor> out{K.detach()};
  for (auto& t : grads) out.push_back(t);
  return out;
}

const char* kNames[] = {"K", "dC", "dlog_dt", "dB", "dinv_A_real", "dA_imag"};

std::string label(int64_t H, int64_t N2, int64_t L, torch::ScalarType dt) {
  std::ostringstream s;
  s << "H" << H << " N2=" << N2 << " L" << L << " " << dt;
  return s.str();
}

struct Shape {
  int64_t H, N2, L;
};
std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (int64_t L : {1, 7, 64, 1000, 4096})
    for (int64_t N2 : {1, 3, 32}) out.push_back({3, N2, L});
  out.push_back({5, 7, 65});  // one position past a tile
  return out;
}

TEST(KernelSsmKernel, CpuMatchesReferenceFloat64) {
  torch::manual_seed(1);
  for (const auto& s : shapes()) {
    auto m = make_ssm(s.H, s.N2, torch::kDouble);
    auto g = torch::randn({s.H, s.L}, torch::kDouble);
    auto got = run(*m, s.L, g, ops::ssm_vandermonde_fused);
    auto want = run(*m, s.L, g, ops::ssm_vandermonde_reference);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), want[i].sizes());
      EXPECT_LE(rel(got[i], want[i]), 1e-12)
          << label(s.H, s.N2, s.L, torch::kDouble) << " " << kNames[i];
    }
  }
}

// Ct and w as the float32 prologue makes them, upcast for the float64 "truth".
struct Modes {
  torch::Tensor Ct, w;
};
Modes modes_of(ops::DiagSSMKernelImpl& m) {
  torch::NoGradGuard ng;
  Modes out;
  auto dt = torch::exp(m.log_dt).unsqueeze(-1);
  auto A = torch::complex(-torch::exp(m.inv_A_real), m.A_imag);
  auto dtA = A * dt;
  out.Ct = torch::view_as_complex(m.B) * torch::view_as_complex(m.C[0]) * dt / (1 - dtA / 2);
  out.w = torch::log((1 + dtA / 2) / (1 - dtA / 2));
  return out;
}

// K and the gradients of sum(K * g) w.r.t. Ct and w themselves.
std::vector<torch::Tensor> run_op(const Modes& in, int64_t L, const torch::Tensor& g, KernelFn f) {
  auto Ct = in.Ct.detach().requires_grad_(true), w = in.w.detach().requires_grad_(true);
  auto K = f(Ct, w, L);
  auto gr = torch::autograd::grad({(K * g).sum()}, {Ct, w});
  return {K.detach(), gr[0], gr[1]};
}

// float32: the fused error against float64 (on the same float32 inputs, upcast) must not
// exceed the reference's own float32 error, up to rounding level where both are there.
TEST(KernelSsmKernel, CpuFloat32NoWorseThanReference) {
  torch::manual_seed(2);
  const char* names[] = {"K", "dCt", "dw"};
  auto all = shapes();
  all.push_back({1, 4, 1 << 16});  // long: the reference's error keeps growing, the fused not
  for (const auto& s : all) {
    auto m = make_ssm(s.H, s.N2, torch::kFloat);
    const Modes in32 = modes_of(*m);
    const Modes in64{in32.Ct.to(torch::kComplexDouble), in32.w.to(torch::kComplexDouble)};
    auto g = torch::randn({s.H, s.L});
    auto truth = run_op(in64, s.L, g.to(torch::kDouble), ops::ssm_vandermonde_reference);
    auto fused = run_op(in32, s.L, g, ops::ssm_vandermonde_fused);
    auto ref = run_op(in32, s.L, g, ops::ssm_vandermonde_reference);
    for (size_t i = 0; i < truth.size(); ++i) {
      const double ef = rel(fused[i], truth[i]), er = rel(ref[i], truth[i]);
      // The reference's error grows with L (its phase l Im(w) is rounded in float32); the
      // fused one stays at a few roundings (1e-6 is 8 float32 ulps) for every L.
      EXPECT_LE(ef, std::max(er, 1e-6))
          << label(s.H, s.N2, s.L, torch::kFloat) << " " << names[i] << ": reference error " << er;
    }
  }
}

// The same through the float32 prologue to every H3 parameter: there the rounding of w to
// float32 (amplified by l) dominates both paths alike.
TEST(KernelSsmKernel, CpuFloat32ParameterGradients) {
  torch::manual_seed(8);
  for (const auto& s : shapes()) {
    auto m32 = make_ssm(s.H, s.N2, torch::kFloat);
    ops::DiagSSMKernel m64(s.H, 2 * s.N2, "diag-lin", 1e-3, 1e-1);
    {
      torch::NoGradGuard ng;
      auto src = m32->parameters();
      auto dst = m64->parameters();
      for (size_t i = 0; i < src.size(); ++i) dst[i].set_data(src[i].detach().to(torch::kDouble));
    }
    auto g = torch::randn({s.H, s.L});
    auto truth = run(*m64, s.L, g.to(torch::kDouble), ops::ssm_vandermonde_reference);
    auto fused = run(*m32, s.L, g, ops::ssm_vandermonde_fused);
    auto ref = run(*m32, s.L, g, ops::ssm_vandermonde_reference);
    for (size_t i = 0; i < truth.size(); ++i) {
      const double ef = rel(fused[i], truth[i]), er = rel(ref[i], truth[i]);
      EXPECT_LE(ef, 1.5 * er + 1e-6)
          << label(s.H, s.N2, s.L, torch::kFloat) << " " << kNames[i] << ": reference error " << er;
    }
  }
}

// Complex inputs straight: transposed, sliced and lazily conjugated views, strided upstream.
TEST(KernelSsmKernel, StridedAndConjugatedInputs) {
  torch::manual_seed(3);
  const int64_t H = 4, N2 = 5, L = 77;
  for (auto dt : {torch::kComplexDouble, torch::kComplexFloat}) {
    const double tol = dt == torch::kComplexDouble ? 1e-12 : 1e-5;
    auto o = torch::TensorOptions().dtype(dt);
    auto Ct_leaf = torch::randn({N2, 2 * H}, o).requires_grad_(true);
    auto w_leaf = torch::complex(-0.3 * torch::rand({N2, H}), 6 * torch::rand({N2, H}) - 3)
                      .to(dt)
                      .requires_grad_(true);
    auto Ct = Ct_leaf.t().narrow(0, 0, 2 * H).slice(0, 0, 2 * H, 2).conj();  // (H, N2) strided
    auto w = w_leaf.t();
    ASSERT_FALSE(Ct.is_contiguous());
    auto g = torch::randn({L, H}, o.dtype(c10::toRealValueType(dt))).t();
    auto both = [&](KernelFn f) {
      auto K = f(Ct, w, L);
      auto gr = torch::autograd::grad({(K * g).sum()}, {Ct_leaf, w_leaf});
      return std::vector<torch::Tensor>{K, gr[0], gr[1]};
    };
    auto got = both(ops::ssm_vandermonde_fused), want = both(ops::ssm_vandermonde_reference);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_LE(rel(got[i], want[i]), tol) << dt << " " << i;
  }
}

// The gradient formulas themselves, for Ct and w directly: gCt = 2 sum_l g conj(z^l),
// gw = 2 conj(Ct) sum_l l g conj(z^l), checked by central differences in float64.
TEST(KernelSsmKernel, FiniteDifferencesFloat64) {
  torch::manual_seed(4);
  auto m = make_ssm(2, 3, torch::kDouble);
  herd::testing::expect_grads_match_fd([&] { return kernel_of(*m, 9, ops::ssm_vandermonde_fused); },
                                       {{"C", m->C},
                                        {"log_dt", m->log_dt},
                                        {"B", m->B},
                                        {"inv_A_real", m->inv_A_real},
                                        {"A_imag", m->A_imag}},
                                       1e-6, 1e-7, 64);
}

TEST(KernelSsmKernel, DoubleBackwardMatchesReference) {
  torch::manual_seed(5);
  auto m = make_ssm(2, 3, torch::kDouble);
  auto g = torch::randn({2, 11}, torch::kDouble);
  auto second = [&](KernelFn f) {
    auto K = kernel_of(*m, 11, f);
    auto gC = torch::autograd::grad({(K * g).sum()}, {m->C}, {}, true, true)[0];
    return torch::autograd::grad({gC.square().sum()}, {m->A_imag})[0];
  };
  auto got = second(ops::ssm_vandermonde_fused), want = second(ops::ssm_vandermonde_reference);
  EXPECT_LE(rel(got, want), 1e-12);
}

TEST(KernelSsmKernel, ModuleRunsTheDispatcher) {
  torch::manual_seed(6);
  auto m = make_ssm(3, 4, torch::kFloat);
  torch::NoGradGuard ng;
  // Bitwise: the module's kernel is the dispatcher's path for its inputs.
  auto want = kernel_of(
      *m, 50,
      ops::fused_kernels_enabled() ? ops::ssm_vandermonde_fused : ops::ssm_vandermonde_reference);
  EXPECT_TRUE(torch::equal(m->forward(50), want));
}

TEST(KernelSsmKernel, DispatchAndFallbackRules) {
  const auto c64 = torch::TensorOptions().dtype(torch::kComplexFloat);
  auto Ct = torch::randn({3, 4}, c64), w = torch::randn({3, 4}, c64);
  const auto cpu = ops::fused_kernels_enabled() ? ops::KernelPath::cpu : ops::KernelPath::reference;
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct, w, 10), cpu);
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct.to(torch::kComplexDouble), w.to(torch::kComplexDouble), 1),
            cpu);
  auto ref = ops::KernelPath::reference;
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct, w.to(torch::kComplexDouble), 10), ref);  // mixed dtypes
  EXPECT_EQ(ops::ssm_vandermonde_path(torch::real(Ct), torch::real(w), 10), ref);  // not complex
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct, w.narrow(1, 0, 3), 10), ref);            // shapes differ
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct.unsqueeze(0), w.unsqueeze(0), 10), ref);  // not 2-D
  EXPECT_EQ(ops::ssm_vandermonde_path(Ct, w, 0), ref);                             // empty
  EXPECT_FALSE(ops::ssm_vandermonde_supports(Ct, w, 0).ok);
  EXPECT_TRUE(ops::ssm_vandermonde_supports(Ct, w, 10).ok);
  EXPECT_THROW(ops::ssm_vandermonde_fused(Ct, w, 0), herd::Error);
  EXPECT_THROW(ops::ssm_vandermonde_fused(torch::real(Ct), torch::real(w), 4), herd::Error);
  // The fallback still computes (an empty kernel here).
  EXPECT_EQ(ops::ssm_vandermonde(Ct, w, 0).sizes(), (std::vector<int64_t>{3, 0}));
  // Target rules, as `herd info` reports them.
  using c10::DeviceType;
  EXPECT_TRUE(ops::ssm_vandermonde_supports({DeviceType::CPU, torch::kFloat, false}).ok);
  EXPECT_TRUE(ops::ssm_vandermonde_supports({DeviceType::CPU, torch::kDouble, true}).ok);
  EXPECT_FALSE(ops::ssm_vandermonde_supports({DeviceType::CPU, torch::kBFloat16, false}).ok);
  EXPECT_EQ(ops::ssm_vandermonde_supports({DeviceType::CUDA, torch::kFloat, true}).ok,
            ops::cuda_kernels_compiled());
  bool listed = false;
  for (const auto& op : ops::fused_ops()) listed |= op.name == "ssm_kernel";
  EXPECT_TRUE(listed);
}

TEST(KernelSsmKernel, CudaMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(7);
  auto z =
      torch::randn({2, 3}, torch::TensorOptions().dtype(torch::kComplexFloat).device(torch::kCUDA));
  EXPECT_EQ(ops::ssm_vandermonde_path(z, z, 5),
            ops::fused_kernels_enabled() ? ops::KernelPath::cuda : ops::KernelPath::reference);
  auto all = shapes();
  all.push_back({2, 300, 513});  // more modes than threads per block
  for (auto dt : {torch::kDouble, torch::kFloat}) {
    for (const auto& s : all) {
      auto m = make_ssm(s.H, s.N2, dt);
      auto g = torch::randn({s.H, s.L}, torch::TensorOptions().dtype(dt));
      auto want =
          run(*m, s.L, g,
              dt == torch::kDouble ? ops::ssm_vandermonde_reference : ops::ssm_vandermonde_fused);
      m->to(torch::kCUDA);
      auto got = run(*m, s.L, g.cuda(), ops::ssm_vandermonde_fused);
      // float64 against the reference; float32 against the CPU kernel (same math, other order).
      const double tol = dt == torch::kDouble ? 1e-12 : 2e-5;
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_LE(rel(got[i], want[i]), tol)
            << "cuda " << label(s.H, s.N2, s.L, dt) << " " << kNames[i];
    }
  }
}

}  // namespace
