#include "ops/ssm_kernel.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/fft_conv.h"

namespace herd::ops {

ShiftSSMKernelImpl::ShiftSSMKernelImpl(int64_t H, int64_t N) {
  HERD_CHECK(H > 0 && N > 0, "shift SSM: channels and d_state must be positive, got ", H, ", ", N);
  auto b = torch::zeros({H, N});
  b.select(1, 0).fill_(1.0);
  B = register_parameter("B", b);
  auto c = torch::empty({H, 1, N});
  torch::nn::init::kaiming_uniform_(c, std::sqrt(5.0));  // torch.nn.Conv1d's weight init
  C = register_parameter("C", c.permute({1, 0, 2}).contiguous());
}

torch::Tensor ShiftSSMKernelImpl::forward(int64_t L) {
  AutocastOff fp32(B.device().type());
  const int64_t H = B.size(0), N = B.size(1), n = 2 * N;
  // Cross-correlation of B and C through a size-2N FFT (no wrap for lags < N), as the reference.
  auto k =
      torch::fft::irfft(torch::fft::rfft(B, n, -1).conj() * torch::fft::rfft(C[0], n, -1), n, -1)
          .narrow(-1, 0, std::min(N, L));
  if (N < L) k = torch::cat({k, torch::zeros({H, L - N}, k.options())}, -1);
  return k;
}

DiagSSMKernelImpl::DiagSSMKernelImpl(int64_t H, int64_t N, const std::string& measure,
                                     double dt_min, double dt_max) {
  HERD_CHECK(H > 0 && N >= 2 && N % 2 == 0, "diagonal SSM: d_state must be even and >= 2, got ", N);
  HERD_CHECK(dt_min > 0 && dt_max >= dt_min, "diagonal SSM: need 0 < dt_min <= dt_max, got ",
             dt_min, ", ", dt_max);
  const int64_t N2 = N / 2;
  HERD_CHECK(measure == "diag-lin" || measure == "diag-inv",
             "diagonal SSM: measure must be diag-lin|diag-inv, got \"", measure, "\"");
  auto imag =
      s4d_imag_init(measure == "diag-lin" ? "linear" : "inverse", N).unsqueeze(0).expand({H, N2});
  const auto def = torch::typeMetaToScalarType(torch::get_default_dtype());
  // C ~ complex standard normal (re, im each variance 1/2), times B = 1.
  C = register_parameter("C", (torch::randn({1, H, N2, 2}) * std::sqrt(0.5)).to(def));
  log_dt = register_parameter(
      "log_dt", (torch::rand({H}) * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min)));
  B = register_parameter("B", torch::stack({torch::ones({H, N2}), torch::zeros({H, N2})}, -1));
  inv_A_real = register_parameter("inv_A_real", torch::full({H, N2}, std::log(0.5)));
  A_imag = register_parameter("A_imag", imag.to(def).contiguous());
}

std::pair<torch::Tensor, torch::Tensor> DiagSSMKernelImpl::discretized() {
  auto dt = torch::exp(log_dt).unsqueeze(-1);  // (H, 1)
  auto A = torch::complex(-torch::exp(inv_A_real), A_imag);
  auto dtA = A * dt;
  auto Ct = torch::view_as_complex(B) * torch::view_as_complex(C[0]) * dt / (1 - dtA / 2);
  return {Ct, (1 + dtA / 2) / (1 - dtA / 2)};
}

torch::Tensor DiagSSMKernelImpl::forward(int64_t L) {
  AutocastOff fp32(log_dt.device().type());
  auto [Ct, dA] = discretized();
  // dA^l as exp(l log dA) with the principal log, as the reference's log-Vandermonde product.
  return ssm_vandermonde(Ct, torch::log(dA), L);
}

torch::Tensor s4d_imag_init(const std::string& scaling, int64_t N) {
  auto n = torch::arange(N / 2, torch::kDouble);
  if (scaling == "linear") return M_PI * n;
  if (scaling == "inverse")
    return (static_cast<double>(N) / M_PI) * (static_cast<double>(N) / (1 + 2 * n) - 1);
  throw Error(str("diagonal SSM: scaling must be inverse|linear, got \"", scaling, "\""));
}

S4DKernelImpl::S4DKernelImpl(int64_t H, int64_t N, int64_t n_ssm, const std::string& scaling,
                             double dt_min, double dt_max) {
  HERD_CHECK(H > 0 && N >= 2 && N % 2 == 0, "S4D kernel: d_state must be even and >= 2, got ", N);
  HERD_CHECK(n_ssm >= 1 && H % n_ssm == 0, "S4D kernel: n_ssm must divide the ", H,
             " channels, got ", n_ssm);
  HERD_CHECK(dt_min > 0 && dt_max >= dt_min, "S4D kernel: need 0 < dt_min <= dt_max, got ", dt_min,
             ", ", dt_max);
  const int64_t N2 = N / 2;
  const auto def = torch::typeMetaToScalarType(torch::get_default_dtype());
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  // Draws in the reference's order: log_dt, then B, then C.
  auto dt = torch::rand({H}, f64) * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min);
  auto imag = s4d_imag_init(scaling, N).unsqueeze(0).expand({n_ssm, N2});
  auto w = torch::complex(torch::full({n_ssm, N2}, -0.5, f64), imag);
  // torch.randn(cfloat): real and imaginary parts of variance 1/2 each.
  auto complex_randn = [&](at::IntArrayRef shape) {
    return torch::complex(torch::randn(shape, f64), torch::randn(shape, f64)) * std::sqrt(0.5);
  };
  auto B = complex_randn({n_ssm, N2});
  // Unit variance of the kernel's integral against a random C (random_dplr's zeta).
  B = B / torch::sqrt(2 * (B / w).abs().square().sum(-1, true));
  auto c = complex_randn({1, H, N2}) * B.repeat({H / n_ssm, 1});
  C = register_parameter("C", torch::view_as_real(c).to(def).contiguous());
  log_dt = register_parameter("log_dt", dt.to(def));
  log_w_real =
      register_parameter("log_w_real", torch::full({n_ssm, N2}, std::log(0.5 + 1e-4), f64).to(def));
  w_imag = register_parameter("w_imag", imag.to(def).contiguous());
}

std::pair<torch::Tensor, torch::Tensor> S4DKernelImpl::zoh() {
  const int64_t H = log_dt.size(0), copies = H / w_imag.size(0);
  auto w = torch::complex(-torch::exp(log_w_real), w_imag).repeat({copies, 1});  // (H, N/2)
  auto dtA = w * torch::exp(log_dt).unsqueeze(-1);
  return {torch::view_as_complex(C[0]) * (torch::exp(dtA) - 1) / w, dtA};
}

std::pair<torch::Tensor, torch::Tensor> S4DKernelImpl::discretized() {
  auto [Ct, dtA] = zoh();
  return {Ct, torch::exp(dtA)};
}

torch::Tensor S4DKernelImpl::forward(int64_t L) {
  AutocastOff fp32(log_dt.device().type());
  auto [Ct, dtA] = zoh();
  // exp(l dtA) directly, as the reference (no principal log: Im(dtA) may exceed pi).
  return ssm_vandermonde(Ct, dtA, L);
}

}  // namespace herd::ops
