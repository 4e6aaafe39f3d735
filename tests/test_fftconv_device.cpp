// Long-convolution blocks under autocast (bf16) and on CUDA when present: kernels stay in the
// parameters' dtype, outputs follow the input's, and CUDA agrees with the CPU in float64.
#include <ATen/autocast_mode.h>

#include "blocks/h3.h"
#include "blocks/hyena.h"
#include "blocks/monarch_mixer.h"
#include "ops/fft_conv.h"
#include "test_fftconv_util.h"

namespace {

using herd::testing::max_abs;

// Enables autocast with bf16 for one device type in a scope.
class Autocast {
 public:
  explicit Autocast(c10::DeviceType t) : t_(t) {
    at::autocast::set_autocast_dtype(t_, torch::kBFloat16);
    at::autocast::set_autocast_enabled(t_, true);
    at::autocast::increment_nesting();
  }
  ~Autocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(t_, false);
  }

 private:
  c10::DeviceType t_;
};

std::vector<std::pair<std::string, herd::SequenceMixer>> blocks(int64_t D, int64_t l_max) {
  herd::HyenaOptions h;
  h.d_model = D;
  h.l_max = l_max;
  h.order = 3;
  h.filter_order = 16;
  h.emb_dim = 5;
  h.w = 14;
  herd::H3Options s;
  s.d_model = D;
  s.l_max = l_max;
  s.d_state = 16;
  s.head_dim = 2;
  herd::MonarchMixerOptions m;
  m.d_model = D;
  m.l_max = l_max;
  m.bidirectional = true;
  m.residual_long_conv = true;
  m.emb_dim = 5;
  return {{"hyena", herd::Hyena(h).ptr()},
          {"h3", herd::H3(s).ptr()},
          {"m2", herd::MonarchMixer(m).ptr()}};
}

TEST(FftConvDevice, Bf16InputConvolvesInFloat32) {
  torch::manual_seed(41);
  auto x = torch::randn({2, 3, 33}), k = torch::randn({3, 33}) / 8, D = torch::randn({3});
  auto y = herd::ops::fft_conv(x.to(torch::kBFloat16), k, D);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  auto ref = herd::ops::long_conv_direct(x.to(torch::kBFloat16).to(torch::kFloat), k, D);
  EXPECT_LE(max_abs(y.to(torch::kFloat) - ref), 1e-2 * max_abs(ref));
}

TEST(FftConvDevice, CpuAutocastKeepsKernelsInFloat32) {
  torch::manual_seed(42);
  for (auto& [name, block] : blocks(8, 64)) {
    auto u = torch::randn({2, 37, 8});
    torch::Tensor y32, y16;
    {
      torch::NoGradGuard ng;
      y32 = block->forward(u);
    }
    {
      Autocast ac(torch::kCPU);
      y16 = block->forward(u);
      EXPECT_EQ(y16.scalar_type(), torch::kBFloat16) << name;  // autocast is active
      y16.to(torch::kFloat).sum().backward();
      if (auto m = std::dynamic_pointer_cast<herd::MonarchMixerImpl>(block)) {
        EXPECT_EQ(m->filter_fn->filter(37).scalar_type(), torch::kFloat);
      }
      if (auto h = std::dynamic_pointer_cast<herd::H3Impl>(block)) {
        EXPECT_EQ(h->kernel(37).scalar_type(), torch::kFloat);
      }
    }
    EXPECT_LE(max_abs(y16.to(torch::kFloat) - y32), 5e-2 * max_abs(y32)) << name;
    for (const auto& p : block->named_parameters())
      EXPECT_TRUE(p.value().grad().defined() &&
                  torch::isfinite(p.value().grad()).all().item<bool>())
          << name << " " << p.key();
  }
}

TEST(FftConvDevice, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(43);
  for (auto& [name, block] : blocks(16, 128)) {
    block->to(torch::kFloat64);
    auto u = torch::randn({2, 101, 16}, torch::kFloat64);
    auto g = torch::randn({2, 101, 16}, torch::kFloat64);
    auto run = [&](torch::Device dev) {
      block->to(dev);
      block->zero_grad();
      auto x = u.to(dev).requires_grad_(true);
      auto y = block->forward(x);
      (y * g.to(dev)).sum().backward();
      std::vector<torch::Tensor> out{y.cpu(), x.grad().cpu()};
      for (auto& p : block->parameters()) out.push_back(p.grad().cpu());
      return out;
    };
    auto cpu = run(torch::kCPU), gpu = run(torch::kCUDA);
    for (size_t i = 0; i < cpu.size(); ++i)
      EXPECT_LE(max_abs(cpu[i] - gpu[i]), 1e-9 * (1 + max_abs(cpu[i]))) << name << " tensor " << i;
    // bf16 autocast on the GPU: finite and close to float32.
    block->to(torch::kFloat32);
    auto x = u.to(torch::kCUDA, torch::kFloat32);
    torch::Tensor y32 = block->forward(x).detach(), y16;
    {
      Autocast ac(torch::kCUDA);
      y16 = block->forward(x);
    }
    EXPECT_LE(max_abs(y16.to(torch::kFloat) - y32), 5e-2 * max_abs(y32)) << name;
    block->to(torch::kCPU);
  }
}

}  // namespace
