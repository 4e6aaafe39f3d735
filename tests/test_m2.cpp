// Monarch Mixer sequence mixer: golden conformance (m2 MonarchMixerSequenceMixing), causality of
// the causal variant, non-causality of the bidirectional one, lengths, gradients, options.
#include "blocks/monarch_mixer.h"
#include "blocks/registry.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;
const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

herd::MonarchMixer tiny_m2(bool bidir, bool residual, int64_t D = 4, int64_t l_max = 16,
                           double w = 2) {
  herd::MonarchMixerOptions o;
  o.d_model = D;
  o.l_max = l_max;
  o.bidirectional = bidir;
  o.residual_long_conv = residual;
  o.filter_order = 6;
  o.emb_dim = 5;
  o.w = w;
  herd::MonarchMixer m(o);
  m->to(torch::kFloat64);
  return m;
}

TEST(M2Golden, Bidirectional) {
  herd::testing::expect_golden_pass("m2_sequence_mixer__bidirectional");
}
TEST(M2Golden, Causal) {
  herd::testing::expect_golden_pass("m2_sequence_mixer__causal");
}
TEST(M2Golden, BidirectionalStrictF32) {
  herd::testing::expect_golden_pass("m2_sequence_mixer__bidirectional", true);
}
TEST(M2Golden, CausalStrictF32) {
  herd::testing::expect_golden_pass("m2_sequence_mixer__causal", true);
}

TEST(M2, ParameterNamesMirrorReference) {
  auto m = tiny_m2(true, true);
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* want :
       {"in_linear.weight", "out_linear.bias", "short_filter.weight", "filter_fn.bias",
        "filter_fn.implicit_filter.1.freq", "filter_fn.implicit_filter_rev.6.weight",
        "filter_fn2.pos_emb.z", "filter_fn2.implicit_filter_rev.0.bias"})
    EXPECT_TRUE(names.count(want)) << want;
  EXPECT_FALSE(names.count("filter_fn.implicit_filter_rev.1.freq"));  // the Sin is shared
  EXPECT_EQ(names.size(), 6u + 2 * 17u);
  EXPECT_EQ(tiny_m2(false, false)->named_parameters().size(), 6u + 10u);
}

TEST(M2, CausalVariantIsCausal) {
  torch::manual_seed(31);
  auto m = tiny_m2(false, true, 8, 64, 10);
  for (int64_t L : {1, 37, 64}) {
    auto u = torch::randn({2, L, 8}, f64);
    EXPECT_EQ(m->forward(u).sizes(), u.sizes());
    if (L > 1) herd::testing::expect_causal([&](const auto& x) { return m->forward(x); }, u, L / 2);
  }
}

TEST(M2, BidirectionalSeesTheFuture) {
  torch::manual_seed(32);
  for (bool residual : {false, true}) {
    auto m = tiny_m2(true, residual, 8, 64, 10);
    for (int64_t L : {2, 37, 64}) {
      auto u = torch::randn({2, L, 8}, f64);
      torch::NoGradGuard ng;
      auto y = m->forward(u);
      EXPECT_EQ(y.sizes(), u.sizes());
      auto u2 = u.clone();
      u2.select(1, L - 1).add_(1.0);  // change only the last position
      EXPECT_GT(max_abs(m->forward(u2).select(1, 0) - y.select(1, 0)), 1e-8) << L;
    }
  }
}

TEST(M2, GradientsMatchFiniteDifferences) {
  torch::manual_seed(33);
  for (bool bidir : {false, true}) {
    auto m = tiny_m2(bidir, true);
    auto u = torch::randn({2, 9, 4}, f64).requires_grad_(true);
    herd::testing::expect_grads_match_fd([&] { return m->forward(u); },
                                         herd::testing::fd_targets(*m, u), 1e-6, 1e-6, 6);
  }
}

TEST(M2, RegistryOptions) {
  herd::MixerContext ctx;
  ctx.d_model = 8;
  ctx.max_seq_len = 32;
  auto build = [&](const std::string& yaml) {
    herd::cfg::ConfigMap opt(YAML::Load(yaml), "test.yaml", "mixer");
    auto mixer = herd::find_mixer("m2").make(ctx, opt);
    opt.finish();
    return mixer;
  };
  auto causal = std::dynamic_pointer_cast<herd::MonarchMixerImpl>(build("{}"));
  ASSERT_TRUE(causal);
  EXPECT_FALSE(causal->options.bidirectional);
  EXPECT_THROW(build("{bidirectional: true}"), herd::Error);  // would leak the future
  ctx.causal = false;
  auto bidir = std::dynamic_pointer_cast<herd::MonarchMixerImpl>(
      build("{filter_order: 8, emb_dim: 5, w: 10, residual_long_conv: true}"));
  ASSERT_TRUE(bidir);
  EXPECT_TRUE(bidir->options.bidirectional);
  EXPECT_TRUE(bidir->filter_fn2);
  EXPECT_EQ(bidir->forward(torch::randn({2, 7, 8})).sizes(), (std::vector<int64_t>{2, 7, 8}));
  EXPECT_THROW(build("{emb_dim: 2}"), herd::Error);
  EXPECT_THROW(build("{filter_ordr: 8}"), herd::Error);
}

}  // namespace
