// The fused AdamW step (kernels/adamw.cuh, ops/adamw.h) against torch::optim::AdamW itself:
// N steps with and without weight decay give the same parameters and state (float32 within a
// few ulp, float64 to 1e-14), state saved by either loads into the other, amsgrad and
// unsupported parameters take the reference, and make_optimizer builds the fused one.
// The moments agree bit for bit; parameters differ by an ulp of an update here and there,
// because ATen's vectorized sqrt is not always correctly rounded (the kernel's is), so a
// parameter's difference is counted in ulps of max(|p|, lr), the size of one update.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "ops/adamw.h"
#include "train/optimizer.h"

namespace {

namespace ops = herd::ops;
using torch::optim::AdamW;
using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

constexpr double kLr = 3e-3;

// Parameters of odd and power-of-two sizes in two groups (decay on, off).
std::vector<torch::Tensor> make_params(torch::ScalarType dt) {
  std::vector<torch::Tensor> ps;
  for (auto shape : {std::vector<int64_t>{33, 5}, {64, 64}, {1}, {1000}, {7, 3, 2}, {70000}})
    ps.push_back(torch::randn(shape, torch::dtype(dt)).requires_grad_(true));
  return ps;
}

std::vector<torch::optim::OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& ps,
                                                         double wd, bool amsgrad = false) {
  auto opt = [&](double w) {
    return std::make_unique<AdamWOptions>(
        AdamWOptions(kLr).betas({0.9, 0.95}).eps(1e-8).weight_decay(w).amsgrad(amsgrad));
  };
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(std::vector<torch::Tensor>(ps.begin(), ps.begin() + 3), opt(wd));
  g.emplace_back(std::vector<torch::Tensor>(ps.begin() + 3, ps.end()), opt(0.0));
  return g;
}

std::vector<torch::Tensor> clone_params(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// Same random gradients (one in four steps leaves a parameter without one).
void set_grads(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b, int step) {
  for (size_t i = 0; i < a.size(); ++i) {
    if ((step + static_cast<int>(i)) % 4 == 3) {
      a[i].mutable_grad() = torch::Tensor();
      b[i].mutable_grad() = torch::Tensor();
      continue;
    }
    auto g = torch::randn_like(a[i]) * (i + 1);
    a[i].mutable_grad() = g.clone();
    b[i].mutable_grad() = g.clone();
  }
}

// Largest difference in units in the last place of max(|want|, floor).
double max_ulp(const torch::Tensor& got, const torch::Tensor& want, double floor) {
  auto w = want.to(torch::kDouble), g = got.to(torch::kDouble);
  const double eps =
      want.scalar_type() == torch::kFloat ? std::ldexp(1.0, -23) : std::ldexp(1.0, -52);
  auto ulp = (w.abs().clamp_min(floor) * eps).clamp_min(std::numeric_limits<float>::min());
  return ((g - w).abs() / ulp).max().item<double>();
}

void expect_same_state(torch::optim::Optimizer& a, torch::optim::Optimizer& b,
                       const std::vector<torch::Tensor>& pa, const std::vector<torch::Tensor>& pb,
                       double ulps) {
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_LE(max_ulp(pa[i], pb[i], kLr), ulps) << "param " << i;
    auto& sa = static_cast<AdamWParamState&>(*a.state().at(pa[i].unsafeGetTensorImpl()));
    auto& sb = static_cast<AdamWParamState&>(*b.state().at(pb[i].unsafeGetTensorImpl()));
    EXPECT_EQ(sa.step(), sb.step()) << i;
    EXPECT_LE(max_ulp(sa.exp_avg(), sb.exp_avg(), 0), ulps) << "exp_avg " << i;
    EXPECT_LE(max_ulp(sa.exp_avg_sq(), sb.exp_avg_sq(), 0), ulps) << "exp_avg_sq " << i;
  }
}

void steps_match_torch(torch::ScalarType dt, double ulps) {
  for (double wd : {0.0, 0.1}) {
    torch::manual_seed(1);
    auto pf = make_params(dt), pt = clone_params(pf);
    ops::FusedAdamW fused(groups_of(pf, wd));
    AdamW ref(groups_of(pt, wd));
    for (int step = 0; step < 12; ++step) {
      set_grads(pf, pt, step);
      fused.step();
      ref.step();
    }
    expect_same_state(fused, ref, pf, pt, ulps);
  }
}

TEST(KernelAdamW, Float32StepsMatchTorchWithinAFewUlp) {
  // At most one update-ulp per step of the 12: how often ATen's vector sqrt rounds differently
  // depends on the CPU (an Intel AVX-512 VM stayed within 4, an AMD EPYC one reached 5.2).
  // A wrong term (bias correction, decay, the step size) is off by orders of magnitude more.
  steps_match_torch(torch::kFloat, 12);
}

TEST(KernelAdamW, Float64StepsMatchTorch) {
  // 1e-14 relative is ~45 ulp of double; the fused pass is far closer.
  steps_match_torch(torch::kDouble, 45);
}

TEST(KernelAdamW, ReferencePathIsTorchsOwnOps) {
  torch::manual_seed(2);
  auto pf = make_params(torch::kFloat), pt = clone_params(pf);
  ops::FusedAdamW fused(groups_of(pf, 0.1));
  AdamW ref(groups_of(pt, 0.1));
  const bool before = ops::set_fused_kernels_enabled(false);
  for (int step = 0; step < 3; ++step) {
    set_grads(pf, pt, step);
    fused.step();
    ref.step();
  }
  ops::set_fused_kernels_enabled(before);
  expect_same_state(fused, ref, pf, pt, 0);  // bit for bit
}

TEST(KernelAdamW, StateRoundTripsWithTorchsAdamW) {
  torch::manual_seed(3);
  auto pf = make_params(torch::kFloat), pt = clone_params(pf);
  ops::FusedAdamW fused(groups_of(pf, 0.1));
  AdamW ref(groups_of(pt, 0.1));
  for (int step = 0; step < 3; ++step) {
    set_grads(pf, pt, step);
    fused.step();
    ref.step();
  }
  // Fused state into a fresh torch AdamW, torch's into a fresh fused one: both continue as if
  // nothing happened.
  auto save = [](torch::optim::Optimizer& o) {
    std::stringstream ss;
    torch::serialize::OutputArchive out;
    o.save(out);
    out.save_to(ss);
    return ss.str();
  };
  auto load = [](torch::optim::Optimizer& o, const std::string& bytes) {
    std::stringstream ss(bytes);
    torch::serialize::InputArchive in;
    in.load_from(ss);
    o.load(in);
  };
  auto pf2 = clone_params(pf), pt2 = clone_params(pt);
  AdamW torch_from_fused(groups_of(pf2, 0.1));
  ops::FusedAdamW fused_from_torch(groups_of(pt2, 0.1));
  load(torch_from_fused, save(fused));
  load(fused_from_torch, save(ref));
  expect_same_state(torch_from_fused, fused, pf2, pf, 0);
  expect_same_state(fused_from_torch, ref, pt2, pt, 0);
  for (int step = 3; step < 6; ++step) {
    set_grads(pf, pf2, step);
    fused.step();
    torch_from_fused.step();
    set_grads(pt, pt2, step);
    ref.step();
    fused_from_torch.step();
  }
  expect_same_state(torch_from_fused, fused, pf2, pf, 4);
  expect_same_state(fused_from_torch, ref, pt2, pt, 4);
}

TEST(KernelAdamW, AmsgradAndStridedParametersTakeTheReference) {
  torch::manual_seed(4);
  auto pf = make_params(torch::kFloat), pt = clone_params(pf);
  ops::FusedAdamW fused(groups_of(pf, 0.1, /*amsgrad=*/true));
  AdamW ref(groups_of(pt, 0.1, true));
  for (int step = 0; step < 3; ++step) {
    set_grads(pf, pt, step);
    fused.step();
    ref.step();
  }
  expect_same_state(fused, ref, pf, pt, 0);
  // The support rule itself.
  auto p = torch::randn({4, 3});
  AdamWParamState st;
  st.exp_avg(torch::zeros_like(p));
  st.exp_avg_sq(torch::zeros_like(p));
  AdamWOptions o(1e-3);
  EXPECT_TRUE(ops::adamw_supports({p, torch::randn({4, 3}), &st, &o}).ok);
  EXPECT_FALSE(ops::adamw_supports({p, torch::randn({3, 4}).t(), &st, &o}).ok);
  EXPECT_FALSE(ops::adamw_supports({p.to(torch::kBFloat16), torch::randn({4, 3}), &st, &o}).ok);
  AdamWOptions ams(1e-3);
  ams.amsgrad(true);
  EXPECT_FALSE(ops::adamw_supports({p, torch::randn({4, 3}), &st, &ams}).ok);
}

TEST(KernelAdamW, MakeOptimizerBuildsTheFusedOne) {
  torch::nn::Linear lin(4, 3);
  herd::OptimizerConfig cfg;
  auto opt = herd::make_optimizer(*lin, cfg);
  EXPECT_NE(dynamic_cast<ops::FusedAdamW*>(opt.get()), nullptr);
  EXPECT_EQ(opt->param_groups().size(), 2u);
}

TEST(KernelAdamW, CudaMatchesTorch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: the CUDA kernel was not run";
  if (!ops::cuda_kernels_compiled()) GTEST_SKIP() << "built without nvcc: no CUDA kernels to test";
  torch::manual_seed(5);
  for (auto dt : {torch::kFloat, torch::kDouble}) {
    std::vector<torch::Tensor> pf, pt;
    for (const auto& p : make_params(dt)) {
      pf.push_back(p.detach().to(torch::kCUDA).requires_grad_(true));
      pt.push_back(p.detach().to(torch::kCUDA).requires_grad_(true));
    }
    ops::FusedAdamW fused(groups_of(pf, 0.1));
    AdamW ref(groups_of(pt, 0.1));
    for (int step = 0; step < 5; ++step) {
      set_grads(pf, pt, step);
      fused.step();
      ref.step();
    }
    expect_same_state(fused, ref, pf, pt, dt == torch::kFloat ? 8 : 45);
  }
}

}  // namespace
