// Hyena block: golden conformance (safari HyenaOperator), causality, odd/short lengths,
// finite-difference gradients, options.
#include "blocks/hyena.h"
#include "blocks/registry.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;
const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

herd::Hyena tiny_hyena(int64_t order, int64_t D = 4, int64_t l_max = 16, double w = 2) {
  herd::HyenaOptions o;
  o.d_model = D;
  o.l_max = l_max;
  o.order = order;
  o.filter_order = 6;
  o.emb_dim = 5;
  o.w = w;
  herd::Hyena m(o);
  m->to(torch::kFloat64);
  return m;
}

TEST(HyenaGolden, Order2) {
  herd::testing::expect_golden_pass("hyena__order2");
}
TEST(HyenaGolden, Order3) {
  herd::testing::expect_golden_pass("hyena__order3");
}
TEST(HyenaGolden, Order2StrictF32) {
  herd::testing::expect_golden_pass("hyena__order2", true);
}
TEST(HyenaGolden, Order3StrictF32) {
  herd::testing::expect_golden_pass("hyena__order3", true);
}

TEST(Hyena, ParameterNamesMirrorReference) {
  auto m = tiny_hyena(3);
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* want :
       {"in_proj.weight", "in_proj.bias", "out_proj.weight", "out_proj.bias", "short_filter.weight",
        "short_filter.bias", "filter_fn.bias", "filter_fn.pos_emb.z",
        "filter_fn.implicit_filter.0.weight", "filter_fn.implicit_filter.1.freq",
        "filter_fn.implicit_filter.6.weight"})
    EXPECT_TRUE(names.count(want)) << want;
  EXPECT_EQ(names.size(), 16u);
  EXPECT_EQ(m->filter_fn->bias.size(0), 2 * 4);  // (order-1) * D
  EXPECT_EQ(m->in_proj->weight.size(0), 4 * 4);  // (order+1) * D
}

TEST(Hyena, CausalForOddAndShortLengths) {
  torch::manual_seed(11);
  for (int64_t order : {2, 3}) {
    auto m = tiny_hyena(order, 8, 64, 14);
    for (int64_t L : {1, 37, 64}) {
      auto u = torch::randn({2, L, 8}, f64);
      auto y = m->forward(u);
      EXPECT_EQ(y.sizes(), u.sizes());
      if (L > 1)
        herd::testing::expect_causal([&](const auto& x) { return m->forward(x); }, u, L / 2);
    }
    // A prefix run equals the prefix of a longer run: filters are generated for l_max and cut.
    auto u = torch::randn({2, 64, 8}, f64);
    torch::NoGradGuard ng;
    EXPECT_LE(max_abs(m->forward(u.narrow(1, 0, 37)) - m->forward(u).narrow(1, 0, 37)), 1e-12);
  }
}

TEST(Hyena, GradientsMatchFiniteDifferences) {
  torch::manual_seed(12);
  for (int64_t order : {2, 3}) {
    auto m = tiny_hyena(order);
    auto u = torch::randn({2, 9, 4}, f64).requires_grad_(true);
    herd::testing::expect_grads_match_fd([&] { return m->forward(u); },
                                         herd::testing::fd_targets(*m, u), 1e-6, 1e-6, 6);
  }
}

TEST(Hyena, PosEmbRowsBeyondLGetZeroGradient) {
  auto m = tiny_hyena(2, 4, 16);
  auto u = torch::randn({1, 5, 4}, f64);
  m->forward(u).sum().backward();
  EXPECT_EQ(max_abs(m->filter_fn->pos_emb->z.grad().narrow(1, 5, 11)), 0.0);
}

TEST(Hyena, RejectsBadInputAndOptions) {
  auto m = tiny_hyena(2, 4, 16);
  EXPECT_THROW(m->forward(torch::randn({1, 17, 4}, f64)), herd::Error);
  EXPECT_THROW(m->forward(torch::randn({1, 8, 5}, f64)), herd::Error);
  herd::MixerContext ctx;
  ctx.d_model = 8;
  ctx.max_seq_len = 32;
  auto build = [&](const std::string& yaml) {
    herd::cfg::ConfigMap opt(YAML::Load(yaml), "test.yaml", "mixer");
    auto mixer = herd::find_mixer("hyena").make(ctx, opt);
    opt.finish();
    return mixer;
  };
  auto mixer = build("{order: 3, filter_order: 8, emb_dim: 5, w: 14}");
  EXPECT_EQ(mixer->forward(torch::randn({2, 7, 8})).sizes(), (std::vector<int64_t>{2, 7, 8}));
  EXPECT_THROW(build("{order: 1}"), herd::Error);
  EXPECT_THROW(build("{emb_dim: 4}"), herd::Error);
  EXPECT_THROW(build("{ordr: 2}"), herd::Error);
  ctx.causal = false;
  EXPECT_THROW(build("{}"), herd::Error);
}

}  // namespace
