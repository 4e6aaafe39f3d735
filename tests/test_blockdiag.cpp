// BlockdiagLinear and the M2 GLU dimension mixer against direct float64 loops, including
// in/out features that are not multiples of nblocks (zero padding, truncation).
#include <gtest/gtest.h>

#include <cmath>

#include "layers/monarch_mlp.h"
#include "ops/blockdiag_linear.h"
#include "test_conformance_util.h"

using namespace herd::testing;

namespace {

// out[n, b*q + i] = sum_j W[b, i, j] x[n, b*p + j] (x zero beyond in), truncated to `out`.
torch::Tensor loop_blockdiag(const torch::Tensor& x, const torch::Tensor& w, int64_t out,
                             const torch::Tensor& bias) {
  auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
  const int64_t n = x2.size(0), in = x2.size(1);
  const int64_t nb = w.size(0), q = w.size(1), p = w.size(2);
  auto y = torch::zeros({n, out}, torch::kFloat64);
  auto xa = x2.accessor<double, 2>();
  auto wa = w.accessor<double, 3>();
  auto ya = y.accessor<double, 2>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t i = 0; i < q; ++i) {
        const int64_t o = b * q + i;
        if (o >= out) continue;
        double s = bias.defined() ? bias[o].item<double>() : 0.0;
        for (int64_t j = 0; j < p; ++j)
          if (b * p + j < in) s += wa[b][i][j] * xa[r][b * p + j];
        ya[r][o] = s;
      }
  auto shape = x.sizes().vec();
  shape.back() = out;
  return y.reshape(shape);
}

}  // namespace

TEST(BlockdiagLinear, MatchesLoopsForRaggedSizes) {
  torch::manual_seed(31);
  struct S {
    int64_t in, out, nb;
    bool bias;
  };
  for (S s : {S{32, 48, 4, true}, S{10, 7, 3, true}, S{5, 9, 2, false}, S{7, 7, 1, true},
              S{6, 4, 6, true}, S{13, 29, 4, false}}) {
    herd::BlockdiagLinear m(s.in, s.out, s.nb, s.bias);
    m->to(torch::kFloat64);
    const int64_t p = (s.in + s.nb - 1) / s.nb, q = (s.out + s.nb - 1) / s.nb;
    EXPECT_EQ(m->weight.sizes(), (std::vector<int64_t>{s.nb, q, p}));
    randomize(*m);
    auto x = torch::randn({2, 3, s.in}, torch::kFloat64);
    auto ref = loop_blockdiag(x, m->weight, s.out, m->bias);
    EXPECT_LT((m->forward(x) - ref).abs().max().item<double>(), 1e-12)
        << "in=" << s.in << " out=" << s.out << " nb=" << s.nb;
  }
}

TEST(BlockdiagLinear, BlocksAreContiguousAndUnpermuted) {
  // Equivalent dense matrix: block b occupies rows [b*q, (b+1)*q) and columns [b*p, (b+1)*p).
  torch::manual_seed(32);
  herd::BlockdiagLinear m(12, 8, 4, false);
  m->to(torch::kFloat64);
  randomize(*m);
  auto dense = torch::zeros({8, 12}, torch::kFloat64);
  for (int64_t b = 0; b < 4; ++b) dense.narrow(0, b * 2, 2).narrow(1, b * 3, 3).copy_(m->weight[b]);
  auto x = torch::randn({5, 12}, torch::kFloat64);
  EXPECT_LT((m->forward(x) - x.matmul(dense.t())).abs().max().item<double>(), 1e-12);
  // Input feature 0 reaches only block 0's outputs.
  auto e0 = torch::zeros({1, 12}, torch::kFloat64);
  e0[0][0] = 1.0;
  auto y = m->forward(e0);
  EXPECT_TRUE(torch::equal(y.narrow(1, 2, 6), torch::zeros({1, 6}, torch::kFloat64)));
}

TEST(BlockdiagLinear, FiniteDifferenceGradients) {
  torch::manual_seed(33);
  herd::BlockdiagLinear m(5, 7, 3, true);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({2, 5}, torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> wrt = m->parameters();
  wrt.push_back(x);
  expect_fd_gradients([&] { return m->forward(x); }, wrt);
  // Padding columns of the last block never see data: their gradient is exactly zero.
  auto g = torch::randn({2, 7}, torch::kFloat64);
  m->zero_grad();
  (m->forward(x) * g).sum().backward();
  EXPECT_TRUE(
      torch::equal(m->weight.grad()[2].narrow(1, 1, 1), torch::zeros({3, 1}, torch::kFloat64)));
}

namespace {

torch::Tensor loop_glu_mlp(herd::MonarchGluMlpImpl& m, const torch::Tensor& x, double eps) {
  const int64_t I = m.d_intermediate, D = m.d_model;
  auto h = loop_blockdiag(x, m.gated_layers->weight, 2 * I, {});
  auto ha = h.reshape({-1, 2 * I});
  auto a = torch::zeros({ha.size(0), I}, torch::kFloat64);
  for (int64_t r = 0; r < ha.size(0); ++r)
    for (int64_t i = 0; i < I; ++i) {
      const double g = ha[r][i].item<double>();
      a[r][i] = 0.5 * g * (1 + std::erf(g / std::sqrt(2.0))) * ha[r][I + i].item<double>();
    }
  auto o = loop_blockdiag(a, m.wo->weight, D, m.wo->bias) + x.reshape({-1, D});
  auto out = torch::zeros_like(o);
  for (int64_t r = 0; r < o.size(0); ++r) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < D; ++c) mu += o[r][c].item<double>() / D;
    for (int64_t c = 0; c < D; ++c) var += std::pow(o[r][c].item<double>() - mu, 2) / D;
    for (int64_t c = 0; c < D; ++c)
      out[r][c] = (o[r][c].item<double>() - mu) / std::sqrt(var + eps) *
                      m.layernorm->weight[c].item<double>() +
                  m.layernorm->bias[c].item<double>();
  }
  return out.reshape(x.sizes());
}

}  // namespace

TEST(MonarchGluMlp, MatchesLoopsAtOtherSizes) {
  torch::manual_seed(34);
  struct S {
    int64_t D, I, nb;
  };
  for (S s : {S{8, 16, 4}, S{12, 20, 2}, S{10, 6, 3}}) {
    herd::MonarchGluMlp m(s.D, s.I, s.nb, 1e-5);
    m->to(torch::kFloat64);
    randomize(*m);
    auto x = torch::randn({2, 3, s.D}, torch::kFloat64);
    EXPECT_LT((m->forward(x) - loop_glu_mlp(*m, x, 1e-5)).abs().max().item<double>(), 1e-10)
        << "D=" << s.D << " I=" << s.I << " nb=" << s.nb;
  }
}

TEST(MonarchGluMlp, FiniteDifferenceGradients) {
  torch::manual_seed(35);
  herd::MonarchGluMlp m(4, 4, 2, 1e-5);
  m->to(torch::kFloat64);
  randomize(*m);
  auto x = torch::randn({1, 2, 4}, torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> wrt = m->parameters();
  wrt.push_back(x);
  expect_fd_gradients([&] { return m->forward(x); }, wrt, 1e-6, 1e-5);
}
