// herd's Attention against a direct float64 loop implementation at sizes other than the golden
// file's (odd L, other head counts), causality, and finite-difference gradients.
#include <gtest/gtest.h>

#include "blocks/attention.h"
#include "test_conformance_util.h"

using namespace herd::testing;

namespace {

torch::Tensor loop_mha(herd::AttentionImpl& m, const torch::Tensor& x) {
  auto qkv = loop_linear(x, m.in_proj_weight, m.in_proj_bias);
  const int64_t d = m.d_model;
  auto o = loop_attention_core(qkv.narrow(-1, 0, d).contiguous(), qkv.narrow(-1, d, d).contiguous(),
                               qkv.narrow(-1, 2 * d, d).contiguous(), m.n_head, m.causal);
  return loop_linear(o, m.out_proj->weight, m.out_proj->bias);
}

struct Size {
  int64_t B, L, D, H;
};

}  // namespace

TEST(AttentionShapes, MatchesLoopImplementation) {
  torch::manual_seed(11);
  for (bool causal : {true, false})
    for (Size s : {Size{2, 7, 12, 3}, Size{1, 1, 8, 2}, Size{3, 13, 10, 1}, Size{1, 9, 16, 8}}) {
      herd::Attention m(s.D, s.H, causal);
      m->to(torch::kFloat64);
      randomize(*m);
      auto x = torch::randn({s.B, s.L, s.D}, torch::kFloat64);
      auto y = m->forward(x);
      auto ref = loop_mha(*m, x);
      EXPECT_LT((y - ref).abs().max().item<double>(), 1e-12)
          << "causal=" << causal << " B=" << s.B << " L=" << s.L << " D=" << s.D << " H=" << s.H;
    }
}

TEST(AttentionShapes, ScaleIsOneOverSqrtDHead) {
  // With q == k rows of one head scaled up, a 1/sqrt(D) scale would soften the softmax
  // differently; the loop reference uses 1/sqrt(d_head), so a wrong scale fails here.
  torch::manual_seed(12);
  herd::Attention m(16, 4, false);
  m->to(torch::kFloat64);
  randomize(*m, 2.0);
  auto x = torch::randn({1, 5, 16}, torch::kFloat64);
  EXPECT_LT((m->forward(x) - loop_mha(*m, x)).abs().max().item<double>(), 1e-12);
}

TEST(AttentionShapes, CausalOutputIgnoresFutureInputs) {
  torch::manual_seed(13);
  herd::Attention m(12, 3, true);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({2, 9, 12}, torch::kFloat64);
  auto y = m->forward(x);
  for (int64_t t : {0, 4, 7}) {
    auto x2 = x.clone();
    x2.narrow(1, t + 1, 9 - t - 1).normal_();
    auto y2 = m->forward(x2);
    EXPECT_TRUE(torch::allclose(y.narrow(1, 0, t + 1), y2.narrow(1, 0, t + 1), 0, 0))
        << "position <= " << t << " changed";
    EXPECT_FALSE(torch::allclose(y.narrow(1, t + 1, 1), y2.narrow(1, t + 1, 1)));
  }
  // Bidirectional: a future change must reach the first position.
  herd::Attention bi(12, 3, false);
  bi->to(torch::kFloat64);
  auto x2 = x.clone();
  x2.narrow(1, 8, 1).normal_();
  EXPECT_FALSE(torch::allclose(bi->forward(x).narrow(1, 0, 1), bi->forward(x2).narrow(1, 0, 1)));
}

TEST(AttentionShapes, FiniteDifferenceGradients) {
  torch::manual_seed(14);
  herd::Attention m(4, 2, true);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({1, 3, 4}, torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> wrt = m->parameters();
  wrt.push_back(x);
  expect_fd_gradients([&] { return m->forward(x); }, wrt);
}
