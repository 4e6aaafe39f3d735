// S4D block: golden conformance (safari S4D, its own golden sub-folder), the zero-order-hold
// kernel and the whole block against direct loops, the S4D-Inv / S4D-Lin inits, causality,
// finite-difference gradients, the recurrence against the convolution, options, and a
// hybrid GPT layer plan.
#include <tuple>

#include "blocks/registry.h"
#include "blocks/s4d.h"
#include "config/config.h"
#include "models/gpt.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;
const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

// A float64 S4D with every parameter perturbed, so that constant inits cannot hide a layout bug.
herd::S4D tiny_s4d(int64_t D, int64_t N = 8, int64_t n_ssm = 1, int64_t l_max = 64) {
  herd::S4DOptions o;
  std::tie(o.d_model, o.d_state, o.n_ssm, o.l_max) = std::tie(D, N, n_ssm, l_max);
  herd::S4D m(o);
  m->to(torch::kFloat64);
  torch::NoGradGuard ng;
  for (auto& p : m->parameters()) p.add_(0.1 * torch::randn_like(p));
  return m;
}

// K[h, l] = 2 Re sum_n C'[h,n] dA[h,n]^l by repeated products, dA = exp(A dt),
// C' = C (dA - 1) / A, with channel h on A's row h % n_ssm.
torch::Tensor direct_kernel(herd::S4D& m, int64_t L) {
  auto& K = m->kernel;
  const int64_t H = K->log_dt.size(0), n_ssm = K->w_imag.size(0), N2 = K->w_imag.size(1);
  auto A = torch::empty({H, N2}, f64.dtype(torch::kComplexDouble));
  for (int64_t h = 0; h < H; ++h)
    A[h] = torch::complex(-torch::exp(K->log_w_real[h % n_ssm]), K->w_imag[h % n_ssm]);
  auto dA = torch::exp(A * torch::exp(K->log_dt).unsqueeze(-1));
  auto Ct = torch::view_as_complex(K->C[0]) * (dA - 1) / A;
  auto k = torch::zeros({H, L}, f64);
  auto pw = torch::ones_like(dA);
  for (int64_t l = 0; l < L; ++l, pw = pw * dA)
    k.select(1, l).copy_(2 * torch::real((Ct * pw).sum(1)));
  return k;
}

// The block by its definition: a direct causal sum, the skip, exact GELU, the output linear.
torch::Tensor direct_block(herd::S4D& m, const torch::Tensor& u) {
  const int64_t L = u.size(1);
  auto k = direct_kernel(m, L);  // (H, L)
  auto y = torch::zeros_like(u);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t s = 0; s <= t; ++s) y.select(1, t) += k.select(1, t - s) * u.select(1, s);
  y = y + m->D[0] * u;
  y = 0.5 * y * (1 + torch::erf(y / std::sqrt(2.0)));
  return torch::matmul(y, m->output_linear->weight.t()) + m->output_linear->bias;
}

TEST(S4DGolden, Default) {
  herd::testing::expect_golden_pass("s4d/s4d__default");
}
TEST(S4DGolden, DefaultStrictF32) {
  herd::testing::expect_golden_pass("s4d/s4d__default", true);
}

// The folder `herd conformance ../shared/golden/s4d` reads: every file passes both dtypes.
TEST(S4DGolden, SubFolderPassesBothDtypes) {
  auto results = herd::conformance::check_dir(std::string(HERD_GOLDEN_DIR) + "/s4d", {});
  ASSERT_GE(results.size(), 2u);
  for (const auto& r : results)
    EXPECT_TRUE(r.pass) << herd::conformance::format_line(r) << "\n"
                        << herd::conformance::format_detail(r);
}

TEST(S4D, KernelMatchesDirectZohFormula) {
  torch::manual_seed(31);
  for (int64_t n_ssm : {1, 2, 6}) {
    auto m = tiny_s4d(6, 8, n_ssm);
    torch::NoGradGuard ng;
    for (int64_t L : {1, 5, 8, 31, 64}) {
      auto kd = direct_kernel(m, L);
      EXPECT_LE(max_abs(m->kernel(L) - kd), 1e-12 * (1 + max_abs(kd))) << n_ssm << " " << L;
    }
  }
}

TEST(S4D, InitIsS4DInvOrS4DLin) {
  torch::manual_seed(30);
  herd::S4DOptions o;
  o.d_model = 4;
  o.l_max = 16;
  o.d_state = 16;
  herd::S4D inv(o);
  const auto& K = inv->kernel;
  EXPECT_EQ(K->C.sizes(), (std::vector<int64_t>{1, 4, 8, 2}));
  EXPECT_EQ(K->log_w_real.sizes(), (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(inv->D.sizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_NEAR(K->log_w_real[0][5].item<double>(), std::log(0.5 + 1e-4), 1e-6);
  for (int64_t n : {0, 3, 7})  // N/pi (N/(2n+1) - 1)
    EXPECT_NEAR(K->w_imag[0][n].item<double>(), 16 / M_PI * (16.0 / (2 * n + 1) - 1), 1e-4) << n;
  const auto dt = torch::exp(K->log_dt);
  EXPECT_GE(dt.min().item<double>(), 0.001 * (1 - 1e-6));
  EXPECT_LE(dt.max().item<double>(), 0.1 * (1 + 1e-6));
  // random_dplr's normalisation 2 sum_n |B_n / A_n|^2 = 1, with C = z B (z complex normal,
  // E|z|^2 = 1): over many channels, mean_h |C[h,n]|^2 estimates |B_n|^2.
  o.d_model = 4096;
  herd::S4D wide(o);
  auto c2 = torch::view_as_complex(wide->kernel->C[0]).abs().square().mean(0);  // (N/2)
  auto A2 = 0.25 + wide->kernel->w_imag[0].square();                            // |A|^2
  EXPECT_NEAR((2 * c2 / A2).sum().item<double>(), 1.0, 0.1);
  o.d_model = 4;
  o.scaling = "linear";
  o.n_ssm = 2;
  herd::S4D lin(o);
  EXPECT_EQ(lin->kernel->w_imag.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_NEAR(lin->kernel->w_imag[1][3].item<double>(), 3 * M_PI, 1e-5);
}

TEST(S4D, BlockMatchesDirectDefinition) {
  torch::manual_seed(32);
  auto m = tiny_s4d(5, 6, 1, 32);
  torch::NoGradGuard ng;
  for (int64_t L : {1, 7, 32}) {
    auto u = torch::randn({2, L, 5}, f64);
    auto want = direct_block(m, u);
    EXPECT_LE(max_abs(m->forward(u) - want), 1e-12 * (1 + max_abs(want))) << L;
  }
}

TEST(S4D, CausalForOddAndShortLengths) {
  torch::manual_seed(33);
  auto m = tiny_s4d(8, 16, 2, 64);
  for (int64_t L : {1, 37, 64}) {
    auto u = torch::randn({2, L, 8}, f64);
    EXPECT_EQ(m->forward(u).sizes(), u.sizes());
    if (L > 1) herd::testing::expect_causal([&](const auto& x) { return m->forward(x); }, u, L / 2);
  }
  EXPECT_THROW(m->forward(torch::randn({1, 65, 8}, f64)), herd::Error);
}

TEST(S4D, GradientsMatchFiniteDifferences) {
  torch::manual_seed(34);
  for (int64_t n_ssm : {1, 2}) {
    auto m = tiny_s4d(4, 4, n_ssm, 16);
    auto u = torch::randn({2, 9, 4}, f64).requires_grad_(true);
    herd::testing::expect_grads_match_fd([&] { return m->forward(u); },
                                         herd::testing::fd_targets(*m, u), 1e-6, 1e-6, 6);
  }
}

// The recurrence (the reference's step(), dB = 1) fed a prompt and then one position at a
// time gives the convolution's output at every position; over-long input is refused.
TEST(S4D, RecurrenceEqualsConvolution) {
  torch::manual_seed(35);
  auto m = tiny_s4d(6, 8, 3, 40);
  m->eval();
  torch::NoGradGuard ng;
  auto u = torch::randn({2, 40, 6}, f64);
  auto full = m->forward(u);
  auto cache = m->allocate_cache(2, 40, u.options());
  std::vector<torch::Tensor> parts = {m->step(u.narrow(1, 0, 3), *cache)};
  for (int64_t t = 3; t < 40; ++t) parts.push_back(m->step(u.narrow(1, t, 1), *cache));
  EXPECT_LE(max_abs(torch::cat(parts, 1) - full), 1e-11 * (1 + max_abs(full)));
  EXPECT_THROW(m->step(u.narrow(1, 0, 1), *cache), herd::Error);
}

TEST(S4D, RegistryOptions) {
  herd::MixerContext ctx;
  ctx.d_model = 8;
  ctx.max_seq_len = 32;
  auto build = [&](const std::string& yaml) {
    herd::cfg::ConfigMap opt(YAML::Load(yaml), "test.yaml", "mixer");
    auto mixer = herd::find_mixer("s4d").make(ctx, opt);
    opt.finish();
    return mixer;
  };
  EXPECT_EQ(
      build("{d_state: 16, n_ssm: 4, scaling: linear}")->forward(torch::randn({2, 7, 8})).sizes(),
      (std::vector<int64_t>{2, 7, 8}));
  auto m =
      std::dynamic_pointer_cast<herd::S4DImpl>(build("{d_state: 6, dt_min: 0.01, dt_max: 0.02}"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kernel->w_imag.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_GE(torch::exp(m->kernel->log_dt).min().item<double>(), 0.01 * (1 - 1e-6));
  EXPECT_THROW(build("{d_state: 7}"), herd::Error);
  EXPECT_THROW(build("{n_ssm: 3}"), herd::Error);
  EXPECT_THROW(build("{scaling: legs}"), herd::Error);
  EXPECT_THROW(build("{channels: 2}"), herd::Error);
  try {
    build("{ssm_rl: 0.01}");
    ADD_FAILURE() << "a misspelt key was accepted";
  } catch (const herd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean ssm_lr?"), std::string::npos) << e.what();
  }
  ctx.causal = false;
  EXPECT_THROW(build("{}"), herd::Error);
}

// `mixer: s4d` as the stack's mixer and in a hybrid plan with attention layers.
TEST(S4D, GptLayerPlanAndHybrid) {
  const std::string text =
      "model:\n  vocab_size: 37\n  d_model: 16\n  n_layer: 3\n  n_head: 2\n  max_seq_len: 32\n"
      "  positional: none\n  mixer: {type: s4d, d_state: 8}\n"
      "  layers:\n    - {at: [1], mixer: {type: attention}}\n";
  herd::Config cfg = herd::parse_config(YAML::Load(text), "s4d.yaml");
  EXPECT_EQ(herd::layer_plan(cfg.model), (std::vector<std::string>{"s4d", "attention", "s4d"}));
  herd::Gpt model(cfg.model);
  auto logits = model->forward(torch::randint(0, 37, {2, 11}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 11, 37}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

}  // namespace
