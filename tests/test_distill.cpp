// Long filters distilled into complex modes (blocks/distill.h) for O(1)-per-token generation:
// exact on a filter that is a sum of damped modes, an error that shrinks with the order on a
// learned Hyena filter, and cached generation through DistillScope that follows the exact
// cache as closely as the filters were fitted.
#include <gtest/gtest.h>

#include "blocks/distill.h"
#include "blocks/inference.h"
#include "config/config.h"
#include "models/gpt.h"
#include "ops/implicit_filter.h"

namespace herd {
namespace {

TEST(Distill, RecoversASumOfDampedModes) {
  // Two channels: 3 real-pair damped oscillations, and a single real decay.
  const int64_t L = 200;
  auto t = torch::arange(L, torch::kFloat64);
  auto k0 = 0.9 * torch::pow(0.97, t) * torch::cos(0.3 * t) +
            0.4 * torch::pow(0.9, t) * torch::sin(1.1 * t) - 0.2 * torch::pow(0.99, t);
  auto k1 = 1.5 * torch::pow(0.8, t);
  auto k = torch::stack({k0, k1});
  auto f = distill_filter(k, 6);
  EXPECT_LT(f.relative_error, 1e-8);
  EXPECT_TRUE(torch::allclose(modal_kernel(f, L), k, 1e-8, 1e-8));
  EXPECT_LE(torch::abs(f.dA).max().item<double>(), 1.0);
  // Too few modes cannot: the error is reported, not hidden.
  EXPECT_GT(distill_filter(k, 2).relative_error, 1e-3);
}

TEST(Distill, ZeroChannelsStayZero) {
  auto k = torch::zeros({2, 64}, torch::kFloat64);
  k[1] = torch::pow(0.5, torch::arange(64, torch::kFloat64));
  auto f = distill_filter(k, 4);
  auto m = modal_kernel(f, 64);
  EXPECT_TRUE(torch::isfinite(m).all().item<bool>());
  EXPECT_LT(m[0].abs().max().item<double>(), 1e-12);
  EXPECT_LT((m[1] - k[1]).abs().max().item<double>(), 1e-10);
}

TEST(Distill, LearnedHyenaFilterErrorFallsWithOrder) {
  torch::manual_seed(7);
  ops::ImplicitFilterOptions o;
  o.channels = 8;
  o.l_max = 256;
  o.order = 16;
  o.emb_dim = 5;
  o.w = 1.0;
  ops::ImplicitFilter filter(o);
  filter->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  auto k = filter->filter(256);
  double previous = 1e9;
  for (int64_t order : {2, 8, 32}) {
    const double e = distill_filter(k, order).relative_error;
    EXPECT_LT(e, previous) << "order " << order;
    previous = e;
  }
  EXPECT_LT(previous, 1e-3) << "32 modes on a modulated implicit filter";
}

TEST(Distill, GenerationFollowsTheExactCache) {
  for (const char* mixer : {"{type: hyena, filter_order: 8, emb_dim: 5}",
                            "{type: m2, filter_order: 8, emb_dim: 5, residual_long_conv: true}"}) {
    Config cfg = parse_config(
        YAML::Load(std::string("model:\n  vocab_size: 37\n  d_model: 16\n  n_layer: 2\n  "
                               "max_seq_len: 128\n  mixer: ") +
                   mixer + "\n"),
        "distill.yaml");
    torch::manual_seed(3);
    Gpt model(cfg.model);
    model->to(torch::kFloat64);
    model->eval();
    torch::NoGradGuard no_grad;
    auto tokens = torch::randint(0, 37, {2, 120});
    auto run = [&](int64_t order, double* error) {
      DistillScope scope(order);
      auto state = model->start_inference(2, 120);
      std::vector<torch::Tensor> parts{model->step(tokens.narrow(1, 0, 20), state)};
      for (int64_t t = 20; t < 120; ++t)
        parts.push_back(model->step(tokens.narrow(1, t, 1), state));
      if (error) *error = DistillScope::worst_error();
      return torch::cat(parts, 1);
    };
    const auto exact = run(0, nullptr);
    const double scale = exact.abs().max().item<double>();
    double first_error = 0, last_error = 0;
    for (int64_t order : {8, 59}) {
      double error = 0;
      const auto distilled = run(order, &error);
      const double diff = (distilled - exact).abs().max().item<double>() / scale;
      // The logits move no more than the filters do (a few times their relative error).
      EXPECT_LT(diff, 3 * error + 1e-9) << mixer << " order " << order << " error " << error;
      EXPECT_GT(diff, 0.0) << mixer << ": the distilled path must actually have run";
      (order == 8 ? first_error : last_error) = error;
    }
    EXPECT_LE(last_error, first_error) << mixer;
    if (std::string(mixer).find("hyena") != std::string::npos) {
      EXPECT_LT(last_error, 5e-3) << "hyena's modulated filters are smooth at init";
    }
    EXPECT_EQ(DistillScope::order(), 0) << "the scope restores exact streams";
  }
}

}  // namespace
}  // namespace herd
