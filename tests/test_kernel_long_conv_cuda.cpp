// The CUDA path of long_conv without a GPU: the very steps kernels/long_conv.cu runs
// (long_conv_{forward,backward}_steps over the element functions of kernels/long_conv.cuh),
// executed here by a CPU executor with torch's FFT standing in for cuFFT, against the ATen
// reference, for causal and bidirectional inputs, every gate, strided views, odd and
// power-of-two lengths, float32, float64 and bfloat16. The executor overwrites the input of
// each inverse transform, as cuFFT's C2R may, so a step that relied on it would fail here.
// With a GPU, the real kernels are compared with the reference too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/long_conv.cuh"
#include "ops/long_conv.h"
#include "ops/long_conv_monarch.h"
#include "test_long_conv_exec.h"

namespace {

namespace K = herd::kernels;
namespace ops = herd::ops;
using herd::test::complex_type;
using herd::test::CpuExec;
using herd::test::real_type;

struct Case {
  int64_t B, C, L, Lk, Lr;
  bool D, pre, post;
};

template <typename T>
K::Rows3<T> rows(const torch::Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {t.data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}

// monarch: the Monarch steps (kernels/monarch_conv.cuh, power-of-two N, emulated tensor-core
// tiles) instead of the cuFFT ones.
template <typename T, typename Acc>
void check_case(const Case& c, torch::ScalarType dt, double tol, bool monarch = false) {
  torch::manual_seed(11);
  const auto o = torch::TensorOptions().dtype(dt);
  const auto ko = torch::TensorOptions().dtype(real_type<Acc>());
  auto act = [&](bool on) {  // transposed [B, L, C] views, as in the blocks
    return on ? torch::randn({c.B, c.L, c.C}, o).transpose(1, 2) : torch::Tensor();
  };
  ops::LongConvInputs in{act(true),
                         torch::randn({c.C, c.Lk}, ko) / 4,
                         c.D ? torch::randn({c.C}, ko) : torch::Tensor(),
                         act(c.pre),
                         act(c.post),
                         c.Lr >= 0 ? torch::randn({c.C, c.Lr}, ko) / 4 : torch::Tensor()};
  const auto dy = act(true);
  const int64_t n = monarch ? ops::long_conv_monarch_size(c.L, c.Lk, c.Lr)
                            : ops::long_conv_fft_size(c.L, c.Lk, c.Lr);
  const int64_t rows_n = c.B * c.C, bins = n / 2 + 1;

  K::LongConvCuda<T, Acc> a{};
  a.d = {c.B, c.C, c.L, std::min(c.Lk, c.L), c.Lr >= 0 ? std::min(c.Lr, c.L - 1) : 0, n, bins};
  a.x = rows<T>(in.x);
  a.pre = rows<T>(in.pre);
  a.post = rows<T>(in.post);
  a.dy = rows<T>(dy);
  a.kf = in.k.data_ptr<Acc>();
  a.kf_stride = c.Lk;
  a.kr = in.k_rev.defined() ? in.k_rev.data_ptr<Acc>() : nullptr;
  a.kr_stride = c.Lr;
  a.D = in.D.defined() ? in.D.data_ptr<Acc>() : nullptr;
  a.D_stride = 1;
  a.Lk = c.Lk;
  a.Lk_rev = std::max<int64_t>(c.Lr, 0);
  auto real = [&](int64_t r, int64_t m) { return torch::full({r, m}, 7.0, ko); };  // garbage
  auto cx = [&](int64_t r) {
    return torch::full({r, bins}, 7.0, torch::TensorOptions().dtype(complex_type<Acc>()));
  };
  torch::Tensor r0 = real(rows_n, n), r1 = real(rows_n, n), s0 = cx(rows_n), s1 = cx(rows_n),
                ks = cx(c.C), dkc = real(c.C, n);
  a.real0 = r0.data_ptr<Acc>();
  a.real1 = r1.data_ptr<Acc>();
  a.spec0 = reinterpret_cast<K::Cx<Acc>*>(s0.data_ptr());
  a.spec1 = reinterpret_cast<K::Cx<Acc>*>(s1.data_ptr());
  a.kspec = reinterpret_cast<K::Cx<Acc>*>(ks.data_ptr());
  a.dkc = dkc.data_ptr<Acc>();
  // [B, L, C] for the cuFFT steps, [B, C, L] rows for the Monarch ones.
  torch::Tensor y =
      monarch ? torch::empty({c.B, c.C, c.L}, o).transpose(1, 2) : torch::empty({c.B, c.L, c.C}, o);
  a.y = y.data_ptr<T>();
  torch::Tensor dx = torch::empty({c.B, c.C, c.L}, o), dpre = torch::empty_like(dx),
                dpost = torch::empty_like(dx), dk = torch::empty({c.C, c.Lk}, ko),
                dD = torch::empty({c.C}, ko),
                dkr = torch::empty({c.C, std::max<int64_t>(c.Lr, 1)}, ko);
  a.dx = dx.data_ptr<T>();
  a.dpre = c.pre ? dpre.data_ptr<T>() : nullptr;
  a.dpost = c.post ? dpost.data_ptr<T>() : nullptr;
  a.dk = dk.data_ptr<Acc>();
  a.dk_rev = c.Lr >= 0 ? dkr.data_ptr<Acc>() : nullptr;
  a.dD = c.D ? dD.data_ptr<Acc>() : nullptr;

  if constexpr (std::is_same_v<Acc, float>) {
    if (monarch) {
      herd::test::HostMonarchTables tables(n);
      herd::test::MonarchCpuExec ex;
      ASSERT_EQ(K::long_conv_monarch_forward_steps(ex, a, tables.tb), 0);
      ASSERT_EQ(K::long_conv_monarch_backward_steps(ex, a, tables.tb), 0);
    }
  }
  if (!monarch) {
    CpuExec<Acc> ex;
    ASSERT_EQ(K::long_conv_forward_steps(ex, a), 0);
    ASSERT_EQ(K::long_conv_backward_steps(ex, a), 0);
  }

  // The reference, in float64 on the same (rounded) inputs.
  std::vector<torch::Tensor> leaves;
  auto leaf = [&](const torch::Tensor& t) {
    if (!t.defined()) return torch::Tensor();
    auto l = t.to(torch::kDouble).detach().requires_grad_(true);
    leaves.push_back(l);
    return l;
  };
  ops::LongConvInputs ref{leaf(in.x),   leaf(in.k),    leaf(in.D),
                          leaf(in.pre), leaf(in.post), leaf(in.k_rev)};
  auto want = ops::long_conv_reference(ref);
  want.backward(dy.to(torch::kDouble));
  auto close = [&](const torch::Tensor& got, const torch::Tensor& w, const char* what) {
    const double scale = w.abs().max().item<double>() + 1e-30;
    const double err = (got.to(torch::kDouble) - w).abs().max().item<double>();
    EXPECT_LE(err, tol * scale) << what << (monarch ? " monarch" : "") << " B" << c.B << " C" << c.C
                                << " L" << c.L << " Lk" << c.Lk << " Lr" << c.Lr << " " << dt;
  };
  close(y.transpose(1, 2), want.detach(), "y");
  close(dx, ref.x.grad(), "dx");
  close(dk, ref.k.grad(), "dk");
  if (c.D) close(dD, ref.D.grad(), "dD");
  if (c.pre) close(dpre, ref.pre.grad(), "dpre");
  if (c.post) close(dpost, ref.post.grad(), "dpost");
  if (c.Lr >= 0) close(dkr, ref.k_rev.grad(), "dk_rev");
}

std::vector<Case> cases() {
  return {{2, 3, 7, 7, -1, true, true, true},      {1, 4, 64, 64, 64, true, true, true},
          {2, 5, 100, 50, 100, true, false, true}, {3, 2, 33, 40, -1, false, true, false},
          {1, 1, 1, 1, -1, true, true, true},      {2, 3, 129, 129, 17, true, true, true}};
}

TEST(KernelLongConvCudaSteps, Float64MatchReference) {
  for (const auto& c : cases()) check_case<double, double>(c, torch::kDouble, 1e-12);
}

TEST(KernelLongConvCudaSteps, Float32MatchReference) {
  for (const auto& c : cases()) check_case<float, float>(c, torch::kFloat, 3e-5);
}

TEST(KernelLongConvCudaSteps, Bfloat16ComputesInFloat) {
  for (const auto& c : cases()) check_case<c10::BFloat16, float>(c, torch::kBFloat16, 1.5e-2);
}

// The Monarch path's steps: bfloat16 tiles between the GEMMs bound the error to about 1% of
// the largest value (FlashFFTConv's precision); a wrong index is off by O(1).
TEST(KernelMonarchSteps, Float32MatchReference) {
  for (const auto& c : cases()) check_case<float, float>(c, torch::kFloat, 2.5e-2, true);
}

TEST(KernelMonarchSteps, Bfloat16MatchReference) {
  for (const auto& c : cases()) check_case<c10::BFloat16, float>(c, torch::kBFloat16, 3e-2, true);
}

TEST(KernelMonarchSteps, LongRowsMatchReference) {
  // N = 8192 (N1 = 128, N2 = 64) with odd L and a short filter, and the largest N = 32768.
  check_case<float, float>({1, 2, 3001, 3001, 1500, true, true, true}, torch::kFloat, 2.5e-2, true);
  check_case<c10::BFloat16, float>({1, 1, 16384, 16384, -1, true, true, true}, torch::kBFloat16,
                                   3e-2, true);
}

TEST(KernelLongConvCuda, DeviceKernelsMatchReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the GPU kernels are not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels";
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    torch::manual_seed(12);
    const auto o = torch::TensorOptions().dtype(dt).device(torch::kCUDA);
    const auto ko = o.dtype(torch::kFloat);
    auto x = torch::randn({2, 300, 6}, o).transpose(1, 2).requires_grad_(false);
    ops::LongConvInputs in{x,
                           torch::randn({6, 300}, ko) / 10,
                           torch::randn({6}, ko),
                           torch::randn_like(x),
                           torch::randn_like(x),
                           torch::randn({6, 300}, ko) / 10};
    for (auto* t : {&in.x, &in.k, &in.D, &in.pre, &in.post, &in.k_rev})
      *t = t->detach().requires_grad_(true);
    ASSERT_EQ(ops::long_conv_path(in), ops::KernelPath::cuda);
    auto g = torch::randn_like(in.x);
    auto run = [&](bool fused) {
      for (auto* t : {&in.x, &in.k, &in.D, &in.pre, &in.post, &in.k_rev})
        t->mutable_grad() = torch::Tensor();
      auto y = fused ? ops::long_conv_fused(in) : ops::long_conv_reference(in);
      y.backward(g);
      std::vector<torch::Tensor> out{y.detach().to(torch::kFloat).cpu()};
      for (auto* t : {&in.x, &in.k, &in.D, &in.pre, &in.post, &in.k_rev})
        out.push_back(t->grad().to(torch::kFloat).cpu());
      return out;
    };
    auto got = run(true), want = run(false);
    const double tol = dt == torch::kFloat ? 1e-4 : 3e-2;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_LE((got[i] - want[i]).abs().max().item<double>(),
                tol * (want[i].abs().max().item<double>() + 1e-30))
          << "output/grad " << i << " " << dt;
  }
}

}  // namespace

namespace {

// The Monarch kernel on a device (WMMA tiles) against the reference, bfloat16 Hyena shapes up
// to L = 16384, every gradient.
TEST(KernelMonarchConvCuda, DeviceKernelMatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the GPU kernels are not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels";
  struct PathScope {
    ops::LongConvCudaPath before = ops::set_long_conv_cuda_path(ops::LongConvCudaPath::monarch);
    ~PathScope() { ops::set_long_conv_cuda_path(before); }
  } scope;
  for (int64_t L : {300, 4096, 16384}) {
    torch::manual_seed(13);
    const auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
    const auto ko = o.dtype(torch::kFloat);
    auto x = torch::randn({2, L, 8}, o).transpose(1, 2);
    ops::LongConvInputs in{x,
                           torch::randn({8, L}, ko) / 10,
                           torch::randn({8}, ko),
                           torch::randn_like(x),
                           torch::randn_like(x),
                           L <= 4096 ? torch::randn({8, L}, ko) / 10 : torch::Tensor()};
    std::vector<torch::Tensor*> leaves{&in.x, &in.k, &in.D, &in.pre, &in.post};
    if (in.k_rev.defined()) leaves.push_back(&in.k_rev);
    for (auto* t : leaves) *t = t->detach().requires_grad_(true);
    auto g = torch::randn_like(in.x);
    auto run = [&](bool fused) {
      for (auto* t : leaves) t->mutable_grad() = torch::Tensor();
      auto y = fused ? ops::long_conv_fused(in) : ops::long_conv_reference(in);
      y.backward(g);
      std::vector<torch::Tensor> out{y.detach().to(torch::kFloat).cpu()};
      for (auto* t : leaves) out.push_back(t->grad().to(torch::kFloat).cpu());
      return out;
    };
    auto got = run(true), want = run(false);
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_LE((got[i] - want[i]).abs().max().item<double>(),
                4e-2 * (want[i].abs().max().item<double>() + 1e-30))
          << "output/grad " << i << " L " << L;
  }
}

}  // namespace
