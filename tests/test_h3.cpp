// H3 block: golden conformance (safari H3), SSM kernels vs direct formulas, multi-head layout
// vs a direct implementation, causality, finite-difference gradients, the shift SSM's short
// conv vs its FFT, options.
#include "blocks/h3.h"
#include "blocks/registry.h"
#include "ops/fft_conv.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;
const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

herd::H3 tiny_h3(int64_t D, int64_t head_dim, int64_t N = 8, int64_t l_max = 32) {
  herd::H3Options o;
  o.d_model = D;
  o.l_max = l_max;
  o.d_state = N;
  o.head_dim = head_dim;
  herd::H3 m(o);
  m->to(torch::kFloat64);
  torch::NoGradGuard ng;  // perturb so that e_1 / constant inits cannot hide a layout bug
  for (auto& p : m->parameters()) p.add_(0.1 * torch::randn_like(p));
  return m;
}

// K_shift[h, j] = sum_n B[h,n] C[h,n+j] (j < N), K_diag[h,l] = 2 Re sum_n Ct dA^l by powers.
std::pair<torch::Tensor, torch::Tensor> direct_kernels(herd::H3& m, int64_t L) {
  auto B = m->ssm_k_kernel->B, C = m->ssm_k_kernel->C[0];
  const int64_t H = B.size(0), N = B.size(1);
  auto ks = torch::zeros({H, L}, f64);
  for (int64_t j = 0; j < std::min(N, L); ++j)
    ks.select(1, j).copy_((B.narrow(1, 0, N - j) * C.narrow(1, j, N - j)).sum(1));
  auto& K = m->kernel;
  auto dt = torch::exp(K->log_dt).unsqueeze(-1);
  auto A = torch::complex(-torch::exp(K->inv_A_real), K->A_imag);
  auto Ct = torch::view_as_complex(K->B) * torch::view_as_complex(K->C[0]) * dt / (1 - A * dt / 2);
  auto dA = (1 + A * dt / 2) / (1 - A * dt / 2);
  auto kd = torch::zeros({K->log_dt.size(0), L}, f64);
  auto pw = torch::ones_like(dA);
  for (int64_t l = 0; l < L; ++l, pw = pw * dA)
    kd.select(1, l).copy_(2 * torch::real((Ct * pw).sum(1)));
  return {ks, kd};
}

TEST(H3Golden, Default) {
  herd::testing::expect_golden_pass("h3__default");
}
TEST(H3Golden, DefaultStrictF32) {
  herd::testing::expect_golden_pass("h3__default", true);
}

TEST(H3, KernelsMatchDirectFormulas) {
  torch::manual_seed(21);
  auto m = tiny_h3(6, 1, 8, 32);
  torch::NoGradGuard ng;
  for (int64_t L : {1, 5, 8, 31}) {
    auto [ks, kd] = direct_kernels(m, L);
    EXPECT_LE(max_abs(m->ssm_k_kernel(L) - ks), 1e-12) << L;
    EXPECT_LE(max_abs(m->kernel(L) - kd), 1e-12 * (1 + max_abs(kd))) << L;
  }
  // Fresh init: B = e_1 makes the shift kernel equal C.
  herd::H3Options o;
  o.d_model = 4;
  o.l_max = 16;
  o.d_state = 8;
  herd::H3 fresh(o);
  EXPECT_LE(max_abs(fresh->ssm_k_kernel(16).narrow(1, 0, 8) - fresh->ssm_k_kernel->C[0]), 1e-6);
  EXPECT_EQ(max_abs(fresh->ssm_k_kernel(16).narrow(1, 8, 8)), 0.0);
  // S4D-Lin: A = -1/2 + i pi n.
  EXPECT_NEAR(fresh->kernel->inv_A_real[0][3].item<double>(), std::log(0.5), 1e-6);
  EXPECT_NEAR(fresh->kernel->A_imag[2][3].item<double>(), 3 * M_PI, 1e-5);
}

// Independent loop implementation of the multi-head formulas in h3.h.
TEST(H3, MultiHeadMatchesDirect) {
  torch::manual_seed(22);
  for (int64_t hd : {1, 2, 3}) {
    const int64_t D = 6, H = D / hd, L = 13;
    auto m = tiny_h3(D, hd);
    auto u = torch::randn({2, L, D}, f64);
    torch::NoGradGuard ng;
    auto [ks, kd] = direct_kernels(m, L);
    auto q = m->q_proj(u).transpose(1, 2), k = m->k_proj(u).transpose(1, 2);
    auto v = m->v_proj(u).transpose(1, 2);
    k = herd::ops::long_conv_direct(k, ks, m->ssm_k_D);
    auto o = torch::zeros({2, D, L}, f64);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d1 = 0; d1 < hd; ++d1)
        for (int64_t d2 = 0; d2 < hd; ++d2) {
          auto kv = (k.select(1, h * hd + d1) * v.select(1, h * hd + d2)).unsqueeze(1);
          auto y = herd::ops::long_conv_direct(kv, kd.narrow(0, h, 1), m->D.narrow(0, h, 1));
          o.select(1, d2 * H + h) += q.select(1, h * hd + d1) * y.select(1, 0);
        }
    auto want = m->output_linear(o.transpose(1, 2));
    EXPECT_LE(max_abs(m->forward(u) - want), 1e-10 * (1 + max_abs(want))) << "head_dim " << hd;
  }
}

TEST(H3, CausalForOddAndShortLengths) {
  torch::manual_seed(23);
  for (int64_t hd : {1, 2}) {
    auto m = tiny_h3(8, hd, 16, 64);
    for (int64_t L : {1, 37, 64}) {
      auto u = torch::randn({2, L, 8}, f64);
      EXPECT_EQ(m->forward(u).sizes(), u.sizes());
      if (L > 1)
        herd::testing::expect_causal([&](const auto& x) { return m->forward(x); }, u, L / 2);
    }
  }
}

TEST(H3, GradientsMatchFiniteDifferences) {
  torch::manual_seed(24);
  for (int64_t hd : {1, 2}) {
    auto m = tiny_h3(4, hd, 4, 16);
    auto u = torch::randn({2, 9, 4}, f64).requires_grad_(true);
    herd::testing::expect_grads_match_fd([&] { return m->forward(u); },
                                         herd::testing::fd_targets(*m, u), 1e-6, 1e-6, 6);
  }
}

// The shift SSM convolved with its N nonzero taps only equals the FFT over the whole length,
// forward and every gradient.
TEST(H3, ShiftConvOverItsTapsMatchesFullLengthFft) {
  torch::manual_seed(25);
  for (int64_t N : {2, 8, 64, 66})
    for (auto dt : {torch::kFloat64, torch::kFloat32}) {
      auto m = tiny_h3(4, 1, N, 256);
      m->to(dt);
      const double tol = dt == torch::kFloat64 ? 1e-12 : 2e-5;
      auto& sk = m->ssm_k_kernel;
      for (int64_t L : {1, 5, 64, 200}) {
        auto leaf = torch::randn({2, L, 4}, torch::TensorOptions().dtype(dt)).requires_grad_(true);
        auto k = leaf.transpose(1, 2);  // (B, D, L) strided, as in forward()
        auto g = torch::randn({2, 4, L}, leaf.options());
        auto both = [&](const torch::Tensor& y) {
          auto gr = torch::autograd::grad({(y * g).sum()}, {leaf, sk->B, sk->C, m->ssm_k_D});
          gr.insert(gr.begin(), y.detach());
          return gr;
        };
        auto got = both(m->shift_conv(k));
        auto want = both(herd::ops::fft_conv(k, sk(L), m->ssm_k_D));
        const char* names[] = {"y", "dk", "dB", "dC", "dD"};
        for (size_t i = 0; i < want.size(); ++i)
          EXPECT_LE(max_abs(got[i] - want[i]), tol * (1 + max_abs(want[i])))
              << "N " << N << " L " << L << " " << dt << " " << names[i];
      }
    }
  // Half inputs convolve in float32 and come back in their dtype, as fft_conv does.
  auto m = tiny_h3(4, 1, 8, 32);
  m->to(torch::kFloat32);
  torch::NoGradGuard ng;
  auto k = torch::randn({2, 4, 20}).to(torch::kBFloat16);
  auto y = m->shift_conv(k);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  auto want = herd::ops::fft_conv(k, m->ssm_k_kernel(20), m->ssm_k_D);
  EXPECT_LE(max_abs(y.to(torch::kFloat) - want.to(torch::kFloat)),
            2e-2 * (1 + max_abs(want.to(torch::kFloat))));
}

TEST(H3, RegistryOptions) {
  herd::MixerContext ctx;
  ctx.d_model = 8;
  ctx.max_seq_len = 32;
  auto build = [&](const std::string& yaml) {
    herd::cfg::ConfigMap opt(YAML::Load(yaml), "test.yaml", "mixer");
    auto mixer = herd::find_mixer("h3").make(ctx, opt);
    opt.finish();
    return mixer;
  };
  EXPECT_EQ(build("{d_state: 16, head_dim: 2}")->forward(torch::randn({2, 7, 8})).sizes(),
            (std::vector<int64_t>{2, 7, 8}));
  EXPECT_THROW(build("{d_state: 7}"), herd::Error);
  EXPECT_THROW(build("{head_dim: 3}"), herd::Error);
  EXPECT_THROW(build("{measure: legs}"), herd::Error);
  ctx.causal = false;
  EXPECT_THROW(build("{}"), herd::Error);
}

}  // namespace
