// optimizer.name: decoupled_adamw, composer's DecoupledAdamW (m2's pretraining optimizer): the
// weight decay multiplies a parameter by 1 - (lr / initial_lr) * wd, following the schedule
// but not scaled by the learning rate, where torch's AdamW uses 1 - lr * wd. Checked by hand
// against composer's formula, over several groups and a schedule ratio, and the fused step
// against the reference path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "ops/adamw.h"
#include "train/optimizer.h"

namespace herd {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

constexpr double kBeta1 = 0.9, kBeta2 = 0.98, kEps = 1e-6;

std::unique_ptr<AdamWOptions> options(double lr, double wd) {
  return std::make_unique<AdamWOptions>(
      AdamWOptions(lr).betas({kBeta1, kBeta2}).eps(kEps).weight_decay(wd));
}

// composer's DecoupledAdamW.adamw for one parameter, written out (float64).
torch::Tensor composer_step(const torch::Tensor& p, const torch::Tensor& g, torch::Tensor& m,
                            torch::Tensor& v, double lr, double initial_lr, double wd, int step) {
  auto out = p * (1 - (lr / initial_lr) * wd);
  m = m * kBeta1 + g * (1 - kBeta1);
  v = v * kBeta2 + g * g * (1 - kBeta2);
  const double bc1 = 1 - std::pow(kBeta1, step), bc2 = 1 - std::pow(kBeta2, step);
  return out - (lr / bc1) * m / (v.sqrt() / std::sqrt(bc2) + kEps);
}

TEST(DecoupledAdamW, StepsByHandOverGroupsAndASchedule) {
  torch::manual_seed(3);
  const std::vector<double> peak{1e-2, 1e-3}, wd{0.1, 0.05};
  std::vector<torch::Tensor> params{torch::randn({7, 5}, torch::kDouble).requires_grad_(true),
                                    torch::randn({13}, torch::kDouble).requires_grad_(true)};
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (size_t i = 0; i < 2; ++i)
    groups.emplace_back(std::vector{params[i]}, options(peak[i], wd[i]));
  ops::FusedAdamW opt(std::move(groups), AdamWOptions(peak[0]), ops::WeightDecayRule::decoupled);
  std::vector<torch::Tensor> want, m, v;
  for (const auto& p : params) {
    want.push_back(p.detach().clone());
    m.push_back(torch::zeros_like(p));
    v.push_back(torch::zeros_like(p));
  }
  const std::vector<double> ratio{0.25, 1.0, 0.5};  // a schedule's lr / peak at each step
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < 2; ++i) {
      const auto g = torch::randn_like(params[i]);
      params[i].mutable_grad() = g.clone();
      opt.param_groups()[i].options().set_lr(peak[i] * ratio[step - 1]);
      want[i] =
          composer_step(want[i], g, m[i], v[i], peak[i] * ratio[step - 1], peak[i], wd[i], step);
    }
    opt.step();
    for (size_t i = 0; i < 2; ++i)
      EXPECT_TRUE(torch::allclose(params[i].detach(), want[i], 1e-14, 1e-15))
          << "group " << i << " step " << step;
  }
}

TEST(DecoupledAdamW, DecayIsNotScaledByTheLearningRate) {
  // lr 1e-3, wd 0.1, gradient 0: torch's AdamW takes off 1e-4 of a weight, composer's 0.1.
  for (auto rule : {ops::WeightDecayRule::lr_scaled, ops::WeightDecayRule::decoupled}) {
    auto p = torch::ones({4}, torch::kDouble).requires_grad_(true);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector{p}, options(1e-3, 0.1));
    ops::FusedAdamW opt(std::move(groups), AdamWOptions(1e-3), rule);
    p.mutable_grad() = torch::zeros_like(p);
    opt.step();
    const double want = rule == ops::WeightDecayRule::decoupled ? 0.9 : 1 - 1e-4;
    EXPECT_NEAR(p[0].item<double>(), want, 1e-15);
  }
}

TEST(DecoupledAdamW, FusedStepEqualsTheReferencePath) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::manual_seed(5);
    AdamWOptions o(2e-3);
    o.betas({kBeta1, kBeta2}).eps(kEps).weight_decay(0.1);
    auto a = torch::randn({1000}, dtype), b = a.clone();
    AdamWParamState sa, sb;
    for (auto* s : {&sa, &sb}) {
      s->step(0);
      s->exp_avg(torch::zeros_like(a));
      s->exp_avg_sq(torch::zeros_like(a));
    }
    for (int step = 0; step < 4; ++step) {
      const auto g = torch::randn_like(a);
      o.lr(2e-3 * (1.0 - 0.2 * step));
      ops::adamw_step_fused({{a, g, &sa, &o, ops::WeightDecayRule::decoupled, 2e-3}});
      ops::adamw_step_reference({{b, g, &sb, &o, ops::WeightDecayRule::decoupled, 2e-3}});
    }
    const double tol = dtype == torch::kDouble ? 1e-14 : 1e-6;
    EXPECT_TRUE(torch::allclose(a, b, tol, tol)) << dtype;
    EXPECT_TRUE(torch::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), tol, 0)) << dtype;
  }
}

TEST(DecoupledAdamW, ConfigNameBuildsIt) {
  auto lin = torch::nn::Linear(4, 3);
  OptimizerConfig cfg;
  cfg.name = "decoupled_adamw";
  auto opt = make_optimizer(*lin, cfg);
  auto* fused = dynamic_cast<ops::FusedAdamW*>(opt.get());
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->rule(), ops::WeightDecayRule::decoupled);
  cfg.name = "adamw";
  EXPECT_EQ(dynamic_cast<ops::FusedAdamW*>(make_optimizer(*lin, cfg).get())->rule(),
            ops::WeightDecayRule::lr_scaled);
}

}  // namespace
}  // namespace herd
