// Primer in bidirectional stacks: the depthwise convs on q, k, v are centred (tap (K-1)/2 is
// the current position), not causal; causal stacks keep tap K-1 (docs/blocks.md).
#include <gtest/gtest.h>

#include "blocks/primer.h"

namespace herd {
namespace {

// out[b, c, t] = sum_j w[c, 0, j] x[b, c, t - left + j], zeros outside [0, L).
torch::Tensor explicit_dconv(const torch::Tensor& x, const torch::Tensor& w, int64_t left) {
  const int64_t B = x.size(0), C = x.size(1), L = x.size(2), K = w.size(2);
  auto out = torch::zeros_like(x);
  auto xa = x.accessor<double, 3>();
  auto wa = w.accessor<double, 3>();
  auto oa = out.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < L; ++t)
        for (int64_t j = 0; j < K; ++j) {
          const int64_t s = t - left + j;
          if (s >= 0 && s < L) oa[b][c][t] += wa[c][0][j] * xa[b][c][s];
        }
  return out;
}

TEST(PrimerBidirectional, DconvIsCentredAndCausalStaysCausal) {
  torch::NoGradGuard no_grad;
  for (int64_t K : {1, 3, 4}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE(testing::Message() << "K " << K << " causal " << causal);
      torch::manual_seed(5);
      PrimerMDHA m(8, 2, K, causal);
      m->to(torch::kFloat64);
      // The 0.5 init sits on the current position's tap.
      const int64_t current = causal ? K - 1 : (K - 1) / 2;
      if (K > 1) {
        EXPECT_DOUBLE_EQ(m->q_dconv->weight[0][0][current].item<double>(), 0.5);
      }
      for (auto* conv : {&m->q_dconv, &m->k_dconv, &m->v_dconv})
        (*conv)->weight.copy_(torch::randn_like((*conv)->weight));
      auto qkv = torch::randn({2, 24, 9}, torch::kFloat64);
      const auto expected = explicit_dconv(qkv, m->dconv_weight(), causal ? K - 1 : (K - 1) / 2);
      EXPECT_LE((m->dconv(qkv) - expected).abs().max().item<double>(), 1e-12);
    }
  }
}

}  // namespace
}  // namespace herd
