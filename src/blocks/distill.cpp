#include "blocks/distill.h"

#include <algorithm>

#include "core/error.h"

namespace herd {

torch::Tensor modal_kernel(const ModalFilter& f, int64_t L) {
  // dA^l by a running product (exact at dA = 0, unlike exp(l log dA)): [C, order, L]
  auto steps = f.dA.unsqueeze(-1).expand({f.dA.size(0), f.dA.size(1), L - 1});
  auto powers = torch::cat({torch::ones_like(f.dA).unsqueeze(-1), steps}, -1).cumprod(-1);
  return 2 * torch::real((f.Ct.unsqueeze(-1) * powers).sum(1));
}

ModalFilter distill_filter(const torch::Tensor& k_in, int64_t order) {
  HERD_CHECK(k_in.dim() == 2 && k_in.size(1) >= 2, "distill: filter must be [C, L >= 2], got ",
             k_in.sizes());
  HERD_CHECK(order >= 1, "distill: order must be >= 1, got ", order);
  torch::NoGradGuard no_grad;
  const auto k = k_in.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t L = k.size(1), m = std::min<int64_t>((L + 1) / 2, 256);
  const int64_t r = std::min(order, m - 1 > 0 ? m - 1 : 1);
  // H0[c, i, j] = k[c, i + j], H1[c, i, j] = k[c, i + j + 1], i, j < m (zeros past L).
  auto padded = torch::constant_pad_nd(k, {0, std::max<int64_t>(0, 2 * m - L)});
  auto idx = (torch::arange(m).unsqueeze(1) + torch::arange(m).unsqueeze(0)).flatten();
  auto H0 = padded.index_select(1, idx).view({-1, m, m});
  auto H1 = padded.index_select(1, idx + 1).view({-1, m, m});
  auto [U, S, Vh] = torch::linalg_svd(H0, /*full_matrices=*/false, /*driver=*/c10::nullopt);
  auto Ur = U.narrow(2, 0, r), Vr = Vh.narrow(1, 0, r).transpose(1, 2);
  // Singular values below 1e-12 of a channel's largest carry no signal, only noise that 1/s
  // would amplify: their modes get zero weight (and an all-zero filter zero residues).
  auto s = S.narrow(1, 0, r);
  auto kept = s > S.select(1, 0).unsqueeze(1) * 1e-12;
  auto s_half = s.clamp_min(1e-300).sqrt(), s_inv_half = (1 / s_half) * kept;
  auto A = s_inv_half.unsqueeze(2) * at::matmul(at::matmul(Ur.transpose(1, 2), H1), Vr) *
           s_inv_half.unsqueeze(1);         // [C, r, r]
  auto b = s_half * Vr.select(1, 0);        // Q[:, 0]: [C, r]
  auto c = Ur.select(1, 0) * s_half;        // O[0, :]: [C, r]
  auto [lambda, W] = torch::linalg_eig(A);  // complex
  auto cw = at::matmul(c.to(torch::kComplexDouble).unsqueeze(1), W).squeeze(1);
  auto wb = torch::linalg_solve(W, b.to(torch::kComplexDouble).unsqueeze(-1), true).squeeze(-1);
  ModalFilter f;
  f.Ct = cw * wb / 2;  // 2 Re(sum Ct dA^l) = sum (cw wb) dA^l, which is real
  // Generation runs far past the fitted taps: no mode may grow (|dA| <= 1).
  f.dA = lambda / torch::abs(lambda).clamp_min(1.0);
  // Zero-filter channels (s clamped) may produce non-finite modes: drop them to 0.
  auto bad = torch::logical_not(torch::isfinite(torch::view_as_real(f.Ct)).all(-1)) |
             torch::logical_not(torch::isfinite(torch::view_as_real(f.dA)).all(-1));
  f.Ct = f.Ct.masked_fill(bad, 0);
  f.dA = f.dA.masked_fill(bad, 0);
  auto err = (modal_kernel(f, L) - k).norm(2, {1}) / k.norm(2, {1}).clamp_min(1e-300);
  f.relative_error = err.max().item<double>();
  return f;
}

}  // namespace herd
