// Test helpers for the long-convolution ops and blocks: finite-difference gradient checks,
// golden-file conformance and causality probes.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "conformance/conformance.h"
#include "core/error.h"

namespace herd::testing {

inline double max_abs(const torch::Tensor& t) {
  return t.abs().max().item<double>();
}

// Compares autograd's d(sum(f() * g))/dθ with central differences for every θ in `wrt`
// (float64 leaves requiring grad), at up to `samples` elements per tensor.
inline void expect_grads_match_fd(const std::function<torch::Tensor()>& f,
                                  const std::vector<std::pair<std::string, torch::Tensor>>& wrt,
                                  double eps = 1e-6, double tol = 1e-6, int64_t samples = 16) {
  torch::manual_seed(7);
  auto out = f();
  auto g = torch::randn_like(out);
  std::vector<torch::Tensor> leaves;
  for (const auto& w : wrt) leaves.push_back(w.second);
  auto grads = torch::autograd::grad({(out * g).sum()}, leaves, {}, false, false, true);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < wrt.size(); ++i) {
    auto flat = wrt[i].second.view(-1);
    auto grad = grads[i].defined() ? grads[i].reshape(-1) : torch::zeros_like(flat);
    const int64_t n = flat.numel(), step = std::max<int64_t>(1, n / samples);
    for (int64_t j = (n - 1) % step; j < n; j += step) {  // includes the last element
      const double orig = flat[j].item<double>();
      flat[j].fill_(orig + eps);
      const double lp = (f() * g).sum().item<double>();
      flat[j].fill_(orig - eps);
      const double lm = (f() * g).sum().item<double>();
      flat[j].fill_(orig);
      const double fd = (lp - lm) / (2 * eps), ad = grad[j].item<double>();
      EXPECT_LE(std::fabs(fd - ad), tol * (1 + std::fabs(fd)))
          << wrt[i].first << "[" << j << "]: finite difference " << fd << ", autograd " << ad;
    }
  }
}

// Every named parameter of `m` (and optionally the input) as FD targets.
inline std::vector<std::pair<std::string, torch::Tensor>> fd_targets(torch::nn::Module& m,
                                                                     const torch::Tensor& x) {
  std::vector<std::pair<std::string, torch::Tensor>> out{{"input", x}};
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

// Runs one golden file through `herd conformance`'s checker in float64 and float32 and
// expects PASS in both; prints the worst tensor of each dtype.
inline void expect_golden_pass(const std::string& name, bool strict_f32 = false) {
  const std::string path = std::string(HERD_GOLDEN_DIR) + "/" + name + ".safetensors";
  // Not std::filesystem: torch's wheels export broken copies of its symbols (pytorch#133437).
  if (!std::ifstream(path).good()) GTEST_SKIP() << "golden file not found: " << path;
  conformance::Options opt;
  opt.strict_f32 = strict_f32;
  auto results = conformance::check_file(path, opt);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.pass) << conformance::format_line(r) << "\n" << conformance::format_detail(r);
    std::cout << conformance::format_line(r) << "\n";
  }
}

// Perturbs u[:, t0:] and expects outputs [:, :t0] to stay the same (within tol).
inline void expect_causal(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                          const torch::Tensor& u, int64_t t0, double tol = 1e-12) {
  torch::NoGradGuard no_grad;
  auto y = f(u);
  auto u2 = u.clone();
  u2.narrow(1, t0, u.size(1) - t0).add_(torch::randn_like(u2.narrow(1, t0, u.size(1) - t0)));
  auto y2 = f(u2);
  EXPECT_LE(max_abs(y.narrow(1, 0, t0) - y2.narrow(1, 0, t0)), tol);
  EXPECT_GT(max_abs(y.narrow(1, t0, u.size(1) - t0) - y2.narrow(1, t0, u.size(1) - t0)), 1e-6);
}

}  // namespace herd::testing
