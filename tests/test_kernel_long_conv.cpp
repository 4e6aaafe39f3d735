// Fused long_conv (kernels/long_conv.cuh around FFTW) against its ATen reference (ops::fft_conv
// composed with the gates): forward and every gradient over a table of lengths, kernel
// lengths, gates, skip, bidirectional taps, strides and dtypes; float64 finite differences;
// dispatch rules; double backward; and the direct O(L^2) sum as an independent check.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/fft_conv.h"
#include "ops/long_conv.h"
#include "test_fftconv_util.h"

namespace {

namespace ops = herd::ops;

struct Case {
  int64_t B, C, L, Lk, Lr;  // Lr < 0: causal
  bool D, pre, post, strided;
};

std::string name(const Case& c, torch::ScalarType dt) {
  std::ostringstream s;
  s << "B" << c.B << " C" << c.C << " L" << c.L << " Lk" << c.Lk << " Lr" << c.Lr
    << (c.D ? " D" : "") << (c.pre ? " pre" : "") << (c.post ? " post" : "")
    << (c.strided ? " strided" : "") << " " << dt;
  return s.str();
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t L : {1, 2, 7, 64, 100})
    for (int64_t Lk : {L, (L + 1) / 2, L + 3})
      for (int64_t Lr : {int64_t{-1}, L, (L + 1) / 2})
        out.push_back({2, 3, L, Lk, Lr, true, true, true, L % 2 == 0});
  // Each optional piece absent on its own, and channel counts beyond one tile.
  out.push_back({1, 9, 33, 33, -1, false, true, true, true});
  out.push_back({2, 17, 33, 33, 33, true, false, true, false});
  out.push_back({3, 5, 48, 48, -1, true, true, false, true});
  out.push_back({1, 4, 256, 256, -1, false, false, false, false});
  out.push_back({2, 3, 129, 129, 129, true, true, true, true});
  return out;
}

struct Inputs {
  std::vector<torch::Tensor> leaves;  // x_leaf, k, D, pre_leaf, post_leaf, k_rev
  ops::LongConvInputs in;
  torch::Tensor g;
};

// Strided: x, gates and the upstream gradient are transposed [B, L, C] views, as in the
// blocks; otherwise gates are channel slices of a wider tensor (non-unit channel stride).
Inputs make(const Case& c, torch::ScalarType dt) {
  const auto o = torch::TensorOptions().dtype(dt);
  const auto ko = torch::TensorOptions().dtype(dt == torch::kDouble ? dt : torch::kFloat);
  Inputs r;
  auto act = [&](bool present) {
    if (!present) return std::pair<torch::Tensor, torch::Tensor>{};
    if (c.strided) {
      auto leaf = torch::randn({c.B, c.L, c.C}, o).requires_grad_(true);
      return std::pair{leaf, leaf.transpose(1, 2)};
    }
    auto leaf = torch::randn({c.B, 2 * c.C, c.L}, o).requires_grad_(true);
    return std::pair{leaf, leaf.narrow(1, c.C, c.C)};
  };
  auto [xl, x] = act(true);
  auto [pl, p] = act(c.pre);
  auto [ql, q] = act(c.post);
  auto k = (torch::randn({c.C, c.Lk}, ko) / std::sqrt(double(c.Lk))).requires_grad_(true);
  torch::Tensor D, kr;
  if (c.D) D = torch::randn({c.C}, ko).requires_grad_(true);
  if (c.Lr >= 0)
    kr = (torch::randn({c.C, std::max<int64_t>(c.Lr, 1)}, ko) / 4).requires_grad_(true);
  r.leaves = {xl, k, D, pl, ql, kr};
  r.in = {x, k, D, p, q, kr};
  r.g = c.strided ? torch::randn({c.B, c.L, c.C}, o).transpose(1, 2)
                  : torch::randn({c.B, c.C, c.L}, o);
  return r;
}

// Output and the gradient of every defined leaf of sum(f(in) * g).
std::vector<torch::Tensor> run(Inputs& r, torch::Tensor (*f)(const ops::LongConvInputs&)) {
  for (auto& t : r.leaves)
    if (t.defined()) t.mutable_grad() = torch::Tensor();
  auto y = f(r.in);
  y.backward(r.g);
  std::vector<torch::Tensor> out{y.detach()};
  for (auto& t : r.leaves) out.push_back(t.defined() ? t.grad() : torch::Tensor());
  return out;
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                  double tol, const std::string& what) {
  const char* names[] = {"y", "dx", "dk", "dD", "dpre", "dpost", "dk_rev"};
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].defined()) continue;
    ASSERT_TRUE(got[i].defined()) << what << " " << names[i];
    ASSERT_EQ(got[i].sizes(), want[i].sizes()) << what << " " << names[i];
    const double scale = want[i].abs().max().item<double>() + 1e-30;
    const double err =
        (got[i].to(torch::kDouble) - want[i].to(torch::kDouble)).abs().max().item<double>();
    EXPECT_LE(err, tol * scale) << what << " " << names[i] << ": max error " << err << " (scale "
                                << scale << ")";
  }
}

TEST(KernelLongConv, FusedMatchesReferenceFloat64) {
  for (const auto& c : cases()) {
    torch::manual_seed(3);
    auto r = make(c, torch::kDouble);
    ASSERT_EQ(ops::long_conv_path(r.in), ops::KernelPath::cpu) << name(c, torch::kDouble);
    expect_close(run(r, ops::long_conv_fused), run(r, ops::long_conv_reference), 1e-12,
                 name(c, torch::kDouble));
  }
}

TEST(KernelLongConv, FusedMatchesReferenceFloat32) {
  for (const auto& c : cases()) {
    torch::manual_seed(4);
    auto r = make(c, torch::kFloat);
    expect_close(run(r, ops::long_conv_fused), run(r, ops::long_conv_reference), 2e-5,
                 name(c, torch::kFloat));
  }
}

TEST(KernelLongConv, MatchesDirectSum) {
  // Independent of any FFT: the O(L^2) definition, causal and bidirectional.
  torch::manual_seed(5);
  for (int64_t Lr : {int64_t{-1}, int64_t{37}}) {
    auto r = make({2, 5, 37, 37, Lr, true, true, true, true}, torch::kDouble);
    torch::NoGradGuard no_grad;
    const auto u = r.in.x * r.in.pre;
    auto z = Lr < 0 ? ops::long_conv_direct(u, r.in.k, r.in.D)
                    : ops::long_conv_bidirectional_direct(u, r.in.k, r.in.k_rev, r.in.D);
    const auto want = z * r.in.post;
    EXPECT_LE((ops::long_conv_fused(r.in) - want).abs().max().item<double>(), 1e-12);
  }
}

TEST(KernelLongConv, PowerOfTwoAndOddLongRows) {
  for (int64_t L : {1024, 1000, 2048}) {
    torch::manual_seed(6);
    Case c{1, 10, L, L, L % 3 == 0 ? L : -1, true, true, true, true};
    auto r = make(c, torch::kFloat);
    expect_close(run(r, ops::long_conv_fused), run(r, ops::long_conv_reference), 5e-5,
                 name(c, torch::kFloat));
  }
}

TEST(KernelLongConv, FiniteDifferencesFloat64) {
  for (int64_t Lr : {int64_t{-1}, int64_t{6}}) {
    torch::manual_seed(8);
    auto r = make({2, 3, 6, 6, Lr, true, true, true, true}, torch::kDouble);
    std::vector<std::pair<std::string, torch::Tensor>> wrt;
    const char* names[] = {"x", "k", "D", "pre", "post", "k_rev"};
    for (size_t i = 0; i < r.leaves.size(); ++i)
      if (r.leaves[i].defined()) wrt.emplace_back(names[i], r.leaves[i]);
    herd::testing::expect_grads_match_fd([&] { return ops::long_conv_fused(r.in); }, wrt);
  }
}

TEST(KernelLongConv, DoubleBackwardFollowsTheReference) {
  torch::manual_seed(9);
  auto r = make({1, 2, 9, 9, -1, true, true, true, false}, torch::kDouble);
  auto grads = [&](torch::Tensor (*f)(const ops::LongConvInputs&)) {
    auto y = f(r.in);
    auto gx = torch::autograd::grad({(y * r.g).sum()}, {r.leaves[0]}, {}, true, true)[0];
    return torch::autograd::grad({gx.square().sum()}, {r.leaves[1]})[0];
  };
  EXPECT_LE(
      (grads(ops::long_conv_fused) - grads(ops::long_conv_reference)).abs().max().item<double>(),
      1e-10);
}

TEST(KernelLongConv, Bfloat16InputsComputeInFloat) {
  torch::manual_seed(10);
  auto r = make({2, 4, 50, 50, -1, true, true, true, true}, torch::kBFloat16);
  ASSERT_EQ(ops::long_conv_path(r.in), ops::KernelPath::cpu);
  auto y = ops::long_conv_fused(r.in);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  // Against the float64 computation of the same bf16 values: only bf16 output rounding left.
  ops::LongConvInputs d{r.in.x.to(torch::kDouble),    r.in.k.to(torch::kDouble),
                        r.in.D.to(torch::kDouble),    r.in.pre.to(torch::kDouble),
                        r.in.post.to(torch::kDouble), {}};
  auto want = ops::long_conv_reference(d);
  const double scale = want.abs().max().item<double>();
  EXPECT_LE((y.to(torch::kDouble) - want).abs().max().item<double>(), 1e-2 * scale);
}

TEST(KernelLongConv, DispatchAndFallback) {
  auto x = torch::randn({1, 2, 8});
  auto k = torch::randn({2, 8});
  EXPECT_EQ(ops::long_conv_path({x, k}), ops::KernelPath::cpu);
  // A float64 kernel for float32 activations, mismatched gates, half inputs: reference.
  EXPECT_FALSE(ops::long_conv_supports({x, k.to(torch::kDouble)}).ok);
  EXPECT_FALSE(ops::long_conv_supports({x, k, {}, x.to(torch::kDouble)}).ok);
  EXPECT_FALSE(ops::long_conv_supports({x.to(torch::kHalf), k}).ok);
  EXPECT_EQ(ops::long_conv_path({x.to(torch::kHalf), k}), ops::KernelPath::reference);
  // The reference still computes those (in float32 for half).
  auto y = ops::long_conv({x.to(torch::kHalf), k});
  EXPECT_EQ(y.scalar_type(), torch::kHalf);
  // Malformed inputs are errors on every path.
  EXPECT_THROW(ops::long_conv({x, torch::randn({3, 8})}), herd::Error);
  EXPECT_THROW(ops::long_conv({x, k, torch::randn({3})}), herd::Error);
  EXPECT_THROW(ops::long_conv({x, k, {}, torch::randn({1, 2, 7})}), herd::Error);
  EXPECT_THROW(ops::long_conv_fused({x.to(torch::kHalf), k}), herd::Error);
  // The result is laid out [B, L, C]: the out projection reads it without a copy.
  auto yf = ops::long_conv_fused({x, k});
  EXPECT_TRUE(yf.transpose(1, 2).is_contiguous());
  EXPECT_EQ(ops::long_conv_supports(ops::OpTarget{c10::DeviceType::CUDA, torch::kFloat, false}).ok,
            ops::cuda_kernels_compiled());
}

TEST(KernelLongConv, FftSizeHasNoWrap) {
  EXPECT_EQ(ops::long_conv_fft_size(8192, 8192, -1), 16384);
  EXPECT_GE(ops::long_conv_fft_size(100, 100, 100), 199);
  EXPECT_GE(ops::long_conv_fft_size(100, 10, 100), 199);  // the reverse taps set the size
  EXPECT_EQ(ops::long_conv_fft_size(1, 1, -1), 1);
}

}  // namespace

namespace {

// herd's own parallel loops really use the threads torch has (a build without OpenMP runs
// every fused CPU path on one thread while torch's ops use all of them).
TEST(KernelThreads, ParallelLoopsUseTorchThreads) {
  const int before = torch::get_num_threads();
  torch::set_num_threads(2);
  EXPECT_EQ(herd::ops::parallel_loop_threads(), 2);
  torch::set_num_threads(1);
  EXPECT_EQ(herd::ops::parallel_loop_threads(), 1);
  torch::set_num_threads(before);
}

}  // namespace
