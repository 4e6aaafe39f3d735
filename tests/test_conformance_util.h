// Shared helpers for the conformance/block tests: direct float64 loop implementations that do
// not reuse herd's tensor code paths, and a central-difference gradient check.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <vector>

namespace herd::testing {

// y[n, o] = sum_i x[n, i] W[o, i] + b[o], by loops. x: [N, I] (any leading dims flattened).
inline torch::Tensor loop_linear(const torch::Tensor& x, const torch::Tensor& w,
                                 const torch::Tensor& b) {
  auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
  const int64_t n = x2.size(0), in = x2.size(1), out = w.size(0);
  auto y = torch::zeros({n, out}, torch::kFloat64);
  auto xa = x2.accessor<double, 2>();
  auto wa = w.accessor<double, 2>();
  auto ya = y.accessor<double, 2>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.defined() ? b[o].item<double>() : 0.0;
      for (int64_t i = 0; i < in; ++i) s += xa[r][i] * wa[o][i];
      ya[r][o] = s;
    }
  auto shape = x.sizes().vec();
  shape.back() = out;
  return y.reshape(shape);
}

// Multi-head softmax attention core by loops: q, k, v [B, L, D] with channel c = h*dh + j.
inline torch::Tensor loop_attention_core(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, int64_t n_head, bool causal) {
  const int64_t B = q.size(0), L = q.size(1), D = q.size(2), dh = D / n_head;
  auto qa = q.accessor<double, 3>();
  auto ka = k.accessor<double, 3>();
  auto va = v.accessor<double, 3>();
  auto o = torch::zeros({B, L, D}, torch::kFloat64);
  auto oa = o.accessor<double, 3>();
  std::vector<double> s(L);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < n_head; ++h)
      for (int64_t t = 0; t < L; ++t) {
        const int64_t last = causal ? t : L - 1;
        double mx = -1e300;
        for (int64_t u = 0; u <= last; ++u) {
          double d = 0;
          for (int64_t j = 0; j < dh; ++j) d += qa[b][t][h * dh + j] * ka[b][u][h * dh + j];
          s[u] = d / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[u]);
        }
        double z = 0;
        for (int64_t u = 0; u <= last; ++u) z += (s[u] = std::exp(s[u] - mx));
        for (int64_t u = 0; u <= last; ++u)
          for (int64_t j = 0; j < dh; ++j) oa[b][t][h * dh + j] += s[u] / z * va[b][u][h * dh + j];
      }
  return o;
}

// Gives every floating parameter of m fresh N(0, scale^2) values (float64) so that no init
// pattern can hide a layout bug.
inline void randomize(torch::nn::Module& m, double scale = 0.5) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.copy_(torch::randn_like(p) * scale);
}

// Checks autograd's gradient of sum(f() * g) w.r.t. each tensor in wrt (float64 leaves that
// require grad) against central differences.
inline void expect_fd_gradients(const std::function<torch::Tensor()>& f,
                                const std::vector<torch::Tensor>& wrt, double eps = 1e-6,
                                double tol = 1e-6) {
  auto out = f();
  auto g = torch::randn_like(out);
  auto grads = torch::autograd::grad({(out * g).sum()}, wrt, {}, false, false, true);
  torch::NoGradGuard no_grad;
  for (size_t w = 0; w < wrt.size(); ++w) {
    auto flat = wrt[w].view(-1);
    auto grad = grads[w].defined() ? grads[w].reshape(-1) : torch::zeros_like(flat);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i].fill_(orig + eps);
      const double lp = (f() * g).sum().item<double>();
      flat[i].fill_(orig - eps);
      const double lm = (f() * g).sum().item<double>();
      flat[i].fill_(orig);
      const double fd = (lp - lm) / (2 * eps), an = grad[i].item<double>();
      ASSERT_NEAR(an, fd, tol * (1 + std::abs(fd))) << "tensor " << w << " element " << i;
    }
  }
}

}  // namespace herd::testing
