#include "ops/monarch_fft.h"

#include <cmath>

#include "core/error.h"

namespace herd::ops {
namespace {

// (re, im) of w_n^(r c) for r < rows, c < cols, w_n = exp(-2 pi i / n), in float64.
std::pair<torch::Tensor, torch::Tensor> powers(int64_t n, int64_t rows, int64_t cols) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  // r c mod n first: exact in integers, so large products lose no phase accuracy.
  auto rc = torch::remainder(torch::arange(rows, torch::kInt64).unsqueeze(1) *
                                 torch::arange(cols, torch::kInt64).unsqueeze(0),
                             n)
                .to(opts);
  auto phase = rc * (-2.0 * M_PI / static_cast<double>(n));
  return {torch::cos(phase), torch::sin(phase)};
}

bool is_pow2(int64_t n) {
  return n >= 1 && (n & (n - 1)) == 0;
}

torch::ScalarType elementwise_type(torch::ScalarType gemm) {
  return gemm == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// (ar + i ai) @ (br + i bi) with real GEMMs in `gemm`, the result in `out`.
std::pair<torch::Tensor, torch::Tensor> cmatmul(const torch::Tensor& ar, const torch::Tensor& ai,
                                                const torch::Tensor& br, const torch::Tensor& bi,
                                                torch::ScalarType gemm, torch::ScalarType out) {
  auto g = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return at::matmul(a.to(gemm), b.to(gemm)).to(out);
  };
  if (!ai.defined()) return {g(ar, br), g(ar, bi)};  // real left operand
  if (!bi.defined()) return {g(ar, br), g(ai, br)};
  return {g(ar, br) - g(ai, bi), g(ar, bi) + g(ai, br)};
}

}  // namespace

MonarchFft MonarchFft::plan(int64_t N) {
  HERD_CHECK(N >= 2 && is_pow2(N), "monarch_fft: N must be a power of two >= 2, got ", N);
  MonarchFft p;
  p.N = N;
  int64_t log2 = 0;
  while ((int64_t{1} << log2) < N) ++log2;
  p.N1 = int64_t{1} << ((log2 + 1) / 2);
  p.N2 = N / p.N1;
  std::tie(p.f1r, p.f1i) = powers(p.N1, p.N1, p.N1);
  std::tie(p.f2r, p.f2i) = powers(p.N2, p.N2, p.N2);
  std::tie(p.twr, p.twi) = powers(N, p.N1, p.N2);
  return p;
}

std::pair<torch::Tensor, torch::Tensor> monarch_dft(const torch::Tensor& x, const MonarchFft& p,
                                                    torch::ScalarType gemm) {
  HERD_CHECK(x.size(-1) == p.N, "monarch_dft: input length ", x.size(-1), ", plan for ", p.N);
  const auto ew = elementwise_type(gemm);
  auto shape = x.sizes().vec();
  shape.back() = p.N1;
  shape.push_back(p.N2);
  auto X = x.reshape(shape);  // X[n1, n2] = x[N2 n1 + n2]
  // A = F_N1 X (real input: two GEMMs)
  auto [ar, ai] = cmatmul(p.f1r, p.f1i, X, {}, gemm, ew);
  // B = A . T
  const auto tr = p.twr.to(ew), ti = p.twi.to(ew);
  auto br = ar * tr - ai * ti, bi = ar * ti + ai * tr;
  // C = B F_N2
  return cmatmul(br, bi, p.f2r, p.f2i, gemm, ew);
}

torch::Tensor monarch_idft_real(const torch::Tensor& re, const torch::Tensor& im,
                                const MonarchFft& p, torch::ScalarType gemm) {
  const auto ew = elementwise_type(gemm);
  // B' = Y conj(F_N2)
  auto [br, bi] = cmatmul(re, im, p.f2r, -p.f2i, gemm, ew);
  // A' = B' . conj(T)
  const auto tr = p.twr.to(ew), ti = -p.twi.to(ew);
  auto ar = br * tr - bi * ti, ai = br * ti + bi * tr;
  // x = Re(conj(F_N1) A') / N = (F1r ar + F1i ai) / N
  auto g = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return at::matmul(a.to(gemm), b.to(gemm)).to(ew);
  };
  auto x = (g(p.f1r, ar) + g(p.f1i, ai)) / static_cast<double>(p.N);
  auto shape = re.sizes().vec();
  shape.pop_back();
  shape.back() = p.N;
  return x.reshape(shape);
}

torch::Tensor monarch_fft_conv(const torch::Tensor& u, const torch::Tensor& k,
                               const torch::Tensor& D, torch::ScalarType gemm) {
  HERD_CHECK(u.dim() == 3 && k.dim() == 2 && k.size(0) == u.size(1) && k.size(1) <= u.size(2),
             "monarch_fft_conv: expected u [B, C, L] and k [C, Lk <= L], got ", u.sizes(), " and ",
             k.sizes());
  HERD_CHECK(gemm == torch::kFloat32 || gemm == torch::kFloat64 || gemm == torch::kBFloat16,
             "monarch_fft_conv: GEMMs run in float32, float64 or bfloat16, got ", gemm);
  const int64_t L = u.size(2);
  int64_t N = 2;
  while (N < 2 * L) N *= 2;
  const auto p = MonarchFft::plan(N);
  const auto ew = elementwise_type(gemm);
  auto up = torch::constant_pad_nd(u.to(ew), {0, N - L});
  auto kp = torch::constant_pad_nd(k.to(ew), {0, N - k.size(1)});
  auto [ur, ui] = monarch_dft(up, p, gemm);
  auto [kr, ki] = monarch_dft(kp, p, gemm);  // [C, N1, N2], broadcast over the batch
  auto yr = ur * kr - ui * ki, yi = ur * ki + ui * kr;
  auto y = monarch_idft_real(yr, yi, p, gemm).narrow(-1, 0, L);
  if (D.defined()) y = y + D.to(ew).view({1, -1, 1}) * u.to(ew);
  return y;
}

}  // namespace herd::ops
