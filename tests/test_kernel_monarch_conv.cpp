// The Monarch row programs of kernels/monarch_conv.cuh on the CPU (HostMonarchBlock: the
// block's threads as strided loops, its warps in turn, the tensor-core MMA emulated with
// bfloat16 operands and float sums) against torch's FFT, for every N from 256 to 32768.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "kernels/monarch_conv.cuh"
#include "ops/long_conv_monarch.h"
#include "test_long_conv_exec.h"

namespace {

namespace K = herd::kernels;
namespace ops = herd::ops;

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  const auto w = want.to(torch::kDouble);
  return (got.to(torch::kDouble) - w).abs().max().item<double>() /
         (w.abs().max().item<double>() + 1e-30);
}

// The row's DFT, emitted in natural order, against torch's FFT of the zero-padded row.
torch::Tensor monarch_dft(const torch::Tensor& u, int64_t N, bool reversed = false) {
  herd::test::HostMonarchTables tables(N);
  herd::test::MonarchCpuExec ex;
  ex.reversed = reversed;
  auto re = torch::full({N}, std::nan(""), torch::kFloat), im = re.clone();
  const float* up = u.data_ptr<float>();
  float *rp = re.data_ptr<float>(), *ip = im.data_ptr<float>();
  ex.monarch_dft_rows(
      tables.tb, 1, u.numel(), [&](int64_t, int64_t t) { return up[t]; },
      [&](int64_t, int64_t f, float r, float i) {
        rp[f] = r;
        ip[f] = i;
      });
  return torch::complex(re, im);
}

// z = first L of the circular convolution of u (zero-padded to N) with k, through the row.
torch::Tensor monarch_conv(const torch::Tensor& u, const torch::Tensor& k, int64_t N,
                           bool reversed = false) {
  herd::test::HostMonarchTables tables(N);
  herd::test::MonarchCpuExec ex;
  ex.reversed = reversed;
  const int64_t L = u.numel();
  auto S = torch::fft::fft(torch::constant_pad_nd(k.to(torch::kDouble), {0, N - k.numel()})) /
           static_cast<double>(N);
  auto Sr = torch::real(S).to(torch::kFloat).contiguous(),
       Si = torch::imag(S).to(torch::kFloat).contiguous();
  auto z = torch::full({L}, std::nan(""), torch::kFloat);
  const float *up = u.data_ptr<float>(), *sr = Sr.data_ptr<float>(), *si = Si.data_ptr<float>();
  float* zp = z.data_ptr<float>();
  ex.monarch_conv_rows(
      tables.tb, 1, L, [&](int64_t, int64_t t) { return up[t]; },
      [&](int64_t, int64_t f) {
        return K::Cx<float>{sr[f], si[f]};
      },
      [&](int64_t, int64_t t, float v) { zp[t] = v; });
  return z;
}

torch::Tensor exact_causal_conv(const torch::Tensor& u, const torch::Tensor& k) {
  const int64_t L = u.numel();
  auto ud = u.to(torch::kDouble), kd = k.to(torch::kDouble);
  auto full = torch::conv1d(torch::constant_pad_nd(ud, {kd.numel() - 1, 0}).view({1, 1, -1}),
                            kd.flip(0).view({1, 1, -1}));
  return full.view({-1}).narrow(0, 0, L);
}

TEST(KernelMonarchRows, DftMatchesTorchFftForEveryN) {
  torch::manual_seed(3);
  for (int64_t N = K::kMonarchMinFft; N <= K::kMonarchMaxFft; N *= 2)
    for (int64_t L : {N / 2, N / 2 - 37, N}) {
      auto u = torch::randn({L});
      auto want = torch::fft::fft(torch::constant_pad_nd(u.to(torch::kDouble), {0, N - L}));
      EXPECT_LE(rel_err(torch::view_as_real(monarch_dft(u, N)), torch::view_as_real(want)), 1.5e-2)
          << "N " << N << " L " << L;
    }
}

TEST(KernelMonarchRows, ConvolutionMatchesExactConvolution) {
  torch::manual_seed(4);
  for (int64_t N : {256, 512, 2048, 8192})
    for (int64_t L : {N / 2, N / 2 - 1, N / 3 + 5}) {
      auto u = torch::randn({L}), k = torch::randn({L}) * torch::exp(-torch::arange(L) / 50.0);
      EXPECT_LE(rel_err(monarch_conv(u, k, N), exact_causal_conv(u, k)), 2e-2)
          << "N " << N << " L " << L;
    }
}

TEST(KernelMonarchRows, SixteenKPositionsInTheLargestRow) {
  torch::manual_seed(5);
  const int64_t L = 16384;
  auto u = torch::randn({L}), k = torch::randn({L}) * torch::exp(-torch::arange(L) / 2000.0);
  EXPECT_LE(rel_err(monarch_conv(u, k, 2 * L), exact_causal_conv(u, k)), 2e-2);
}

TEST(KernelMonarchRows, ResultDoesNotDependOnWarpOrder) {
  torch::manual_seed(6);
  const int64_t N = 4096, L = 2000;
  auto u = torch::randn({L}), k = torch::randn({L});
  EXPECT_TRUE(torch::equal(monarch_conv(u, k, N, false), monarch_conv(u, k, N, true)));
  EXPECT_TRUE(torch::equal(monarch_dft(u, N, false), monarch_dft(u, N, true)));
}

TEST(KernelMonarchRows, EmulatedMmaRoundsOperandsToBfloat16) {
  // 1 + 2^-9 is not a bfloat16: the row's input is rounded to 1, so the DFT of the impulse
  // comes out as exactly 1 at every frequency (all factors of the first row/column are 1).
  auto u = torch::zeros({300});
  u[0] = 1.0f + std::ldexp(1.0f, -9);
  auto X = monarch_dft(u, 1024);
  EXPECT_EQ(torch::real(X).max().item<float>(), 1.0f);
  EXPECT_EQ(torch::real(X).min().item<float>(), 1.0f);
  EXPECT_EQ(K::bf16_bits(1.0f + std::ldexp(1.0f, -7)), 0x3f81);      // representable
  EXPECT_EQ(K::bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: to even
  EXPECT_EQ(K::bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: to even
  EXPECT_EQ(K::bf16_value(K::bf16_bits(-3.5f)), -3.5f);
}

TEST(KernelMonarchPath, TransformSizes) {
  EXPECT_EQ(ops::long_conv_monarch_size(1, 1, -1), 256);
  EXPECT_EQ(ops::long_conv_monarch_size(300, 300, -1), 1024);  // 599 points
  EXPECT_EQ(ops::long_conv_monarch_size(300, 10, -1), 512);    // 309 points
  EXPECT_EQ(ops::long_conv_monarch_size(128, 128, 128), 256);  // 255 both ways
  EXPECT_EQ(ops::long_conv_monarch_size(129, 129, 129), 512);
  EXPECT_EQ(ops::long_conv_monarch_size(16384, 16384, -1), 32768);
  EXPECT_EQ(K::monarch_smem_bytes(32768, K::kMonarchWarps), 6 * 32768 + 16384);
}

TEST(KernelMonarchPath, ChoiceParsesAndNamesTheAcceptedValues) {
  EXPECT_EQ(ops::parse_long_conv_cuda_path("monarch"), ops::LongConvCudaPath::monarch);
  EXPECT_EQ(ops::parse_long_conv_cuda_path("cufft"), ops::LongConvCudaPath::cufft);
  EXPECT_EQ(ops::parse_long_conv_cuda_path("auto"), ops::LongConvCudaPath::automatic);
  try {
    ops::parse_long_conv_cuda_path("flash");
    FAIL() << "accepted \"flash\"";
  } catch (const herd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("auto|cufft|monarch"), std::string::npos) << e.what();
  }
  const auto before = ops::set_long_conv_cuda_path(ops::LongConvCudaPath::cufft);
  EXPECT_EQ(ops::long_conv_cuda_path(), ops::LongConvCudaPath::cufft);
  ops::set_long_conv_cuda_path(before);
}

}  // namespace
