// Primer: multi-dconv-head attention and the squared-ReLU FFN against direct float64 loops at
// sizes other than the golden files', plus causality, the paper init and gradients.
#include <gtest/gtest.h>

#include "blocks/primer.h"
#include "blocks/registry.h"
#include "layers/mlp.h"
#include "test_conformance_util.h"

using namespace herd::testing;

namespace {

// y[t, c] = sum_j w[c, 0, j] x[t - (K-1) + j, c]; tap K-1 is the current step, zeros before 0.
torch::Tensor loop_dconv(const torch::Tensor& x, const torch::Tensor& w) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = w.size(2);
  auto y = torch::zeros_like(x);
  auto xa = x.accessor<double, 3>();
  auto wa = w.accessor<double, 3>();
  auto ya = y.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < K; ++j) {
          const int64_t s = t - (K - 1) + j;
          if (s >= 0) ya[b][t][c] += wa[c][0][j] * xa[b][s][c];
        }
  return y;
}

torch::Tensor loop_mdha(herd::PrimerMDHAImpl& m, const torch::Tensor& x) {
  auto qkv = loop_linear(x, m.in_proj_weight, m.in_proj_bias);
  const int64_t d = m.d_model;
  auto q = loop_dconv(qkv.narrow(-1, 0, d).contiguous(), m.q_dconv->weight);
  auto k = loop_dconv(qkv.narrow(-1, d, d).contiguous(), m.k_dconv->weight);
  auto v = loop_dconv(qkv.narrow(-1, 2 * d, d).contiguous(), m.v_dconv->weight);
  auto o = loop_attention_core(q, k, v, m.n_head, m.causal);
  return loop_linear(o, m.out_proj->weight, m.out_proj->bias);
}

}  // namespace

TEST(PrimerMDHA, MatchesLoopImplementation) {
  torch::manual_seed(21);
  struct S {
    int64_t B, L, D, H, K;
  };
  for (S s : {S{2, 7, 12, 3, 3}, S{1, 1, 8, 2, 3}, S{1, 2, 6, 1, 3}, S{2, 11, 16, 8, 3},
              S{1, 9, 8, 2, 5}}) {
    herd::PrimerMDHA m(s.D, s.H, s.K);
    m->to(torch::kFloat64);
    randomize(*m);
    auto x = torch::randn({s.B, s.L, s.D}, torch::kFloat64);
    EXPECT_LT((m->forward(x) - loop_mdha(*m, x)).abs().max().item<double>(), 1e-12)
        << "B=" << s.B << " L=" << s.L << " D=" << s.D << " H=" << s.H << " K=" << s.K;
  }
}

TEST(PrimerMDHA, ConvTapConventionAndChannelLayout) {
  // Tap K-1 alone is the identity: MDHA reduces to plain attention with the same weights.
  torch::manual_seed(22);
  herd::PrimerMDHA m(8, 2);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({2, 6, 8}, torch::kFloat64);
  herd::Attention plain(8, 2, true);
  plain->to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    plain->in_proj_weight.copy_(m->in_proj_weight);
    plain->in_proj_bias.copy_(m->in_proj_bias);
    plain->out_proj->weight.copy_(m->out_proj->weight);
    plain->out_proj->bias.copy_(m->out_proj->bias);
    for (auto* c : {&m->q_dconv, &m->k_dconv, &m->v_dconv}) {
      (*c)->weight.zero_();
      (*c)->weight.select(2, 2).fill_(1.0);
    }
  }
  EXPECT_LT((m->forward(x) - plain->forward(x)).abs().max().item<double>(), 1e-12);
  // Tap 0 alone delays v by two steps; a flipped (convolution) kernel would not.
  auto loop = loop_mdha(*m, x);
  {
    torch::NoGradGuard g;
    m->v_dconv->weight.zero_();
    m->v_dconv->weight.select(2, 0).fill_(1.0);
    // Per-channel filters: scaling one channel's taps must change only through that channel.
    m->q_dconv->weight[5][0][2] = 3.0;
  }
  EXPECT_LT((m->forward(x) - loop_mdha(*m, x)).abs().max().item<double>(), 1e-12);
  EXPECT_GT((m->forward(x) - loop).abs().max().item<double>(), 1e-3);
}

TEST(PrimerMDHA, PaperInitAndNoBias) {
  herd::PrimerMDHA m(8, 2);
  for (auto* c : {&m->q_dconv, &m->k_dconv, &m->v_dconv}) {
    EXPECT_EQ((*c)->weight.sizes(), (std::vector<int64_t>{8, 1, 3}));
    EXPECT_FALSE((*c)->bias.defined());
    EXPECT_TRUE(torch::allclose((*c)->weight.select(2, 2), torch::full({8, 1}, 0.5)));
    EXPECT_TRUE(torch::allclose((*c)->weight.narrow(2, 0, 2), torch::full({8, 1, 2}, 0.5 / 3)));
  }
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                             "out_proj.bias", "q_dconv.weight", "k_dconv.weight",
                                             "v_dconv.weight"}));
}

TEST(PrimerMDHA, CausalOutputIgnoresFutureInputs) {
  torch::manual_seed(23);
  herd::PrimerMDHA m(12, 3);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({2, 9, 12}, torch::kFloat64);
  auto y = m->forward(x);
  for (int64_t t : {0, 3, 7}) {
    auto x2 = x.clone();
    x2.narrow(1, t + 1, 9 - t - 1).normal_();
    auto y2 = m->forward(x2);
    EXPECT_TRUE(torch::allclose(y.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1), 0, 0)) << t;
    EXPECT_FALSE(torch::allclose(y.narrow(1, t + 1, 1), y2.narrow(1, t + 1, 1))) << t;
  }
}

TEST(PrimerMDHA, FiniteDifferenceGradients) {
  torch::manual_seed(24);
  herd::PrimerMDHA m(4, 2);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({1, 4, 4}, torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> wrt = m->parameters();
  wrt.push_back(x);
  expect_fd_gradients([&] { return m->forward(x); }, wrt);
}

TEST(PrimerMDHA, RegisteredAsMixer) {
  herd::MixerContext ctx;
  ctx.d_model = 16;
  ctx.n_head = 4;
  ctx.max_seq_len = 32;
  YAML::Node opts = YAML::Load("{n_head: 2, dconv_width: 3}");
  herd::cfg::ConfigMap map(opts, "test.yaml", "model.mixer");
  auto mixer = herd::find_mixer("primer").make(ctx, map);
  map.finish();
  auto* p = dynamic_cast<herd::PrimerMDHAImpl*>(mixer.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->n_head, 2);
  EXPECT_EQ(mixer->forward(torch::randn({2, 5, 16})).sizes(), (std::vector<int64_t>{2, 5, 16}));
}

TEST(PrimerSquaredReluFfn, MatchesLoopsAndGradients) {
  torch::manual_seed(25);
  herd::Mlp m(6, 10, herd::Activation::squared_relu);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({2, 5, 6}, torch::kFloat64);
  auto h = loop_linear(x, m->fc1->weight, m->fc1->bias);
  auto ref = loop_linear(h.clamp_min(0).square(), m->fc2->weight, m->fc2->bias);
  EXPECT_LT((m->forward(x) - ref).abs().max().item<double>(), 1e-12);
  // d/dh relu(h)^2 = 2 relu(h): exactly 0 at h = 0 (the bias places h on the kink).
  auto z = torch::zeros({1, 6}, torch::kFloat64);
  {
    torch::NoGradGuard g;
    m->fc1->bias.zero_();
  }
  auto zi = z.clone().requires_grad_(true);
  m->forward(zi).sum().backward();
  EXPECT_TRUE(torch::equal(zi.grad(), torch::zeros_like(zi)));
  randomize(*m);
  auto xs = torch::randn({1, 2, 6}, torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> wrt = m->parameters();
  wrt.push_back(xs);
  expect_fd_gradients([&] { return m->forward(xs); }, wrt);
}
