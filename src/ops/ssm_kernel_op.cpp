// ssm_vandermonde: the ATen reference, the supports() rule, the dispatcher and the autograd
// Function around the fused kernels (ops/ssm_kernel_cpu.cpp, ops/ssm_kernel_cuda.cpp).
#include <ATen/record_function.h>
#include "core/error.h"
#include "ops/ssm_kernel.h"
#include "ops/ssm_kernel_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Positions 0..L-1 in w's real dtype.
torch::Tensor positions(const torch::Tensor& w, int64_t L) {
  return torch::arange(L, w.options().dtype(c10::toRealValueType(w.scalar_type())));
}

// A contiguous real (H, N2, 2) view of a complex tensor (lazy conjugation resolved).
torch::Tensor real_pairs(const torch::Tensor& z) {
  return torch::view_as_real(z.resolve_conj().contiguous());
}

// The gradients in differentiable ATen ops, for a graph of the backward (double backward):
//   gCt = 2 sum_l g conj(z^l),  gw = 2 conj(Ct) sum_l l g conj(z^l).
std::array<torch::Tensor, 2> backward_aten(const torch::Tensor& Ct, const torch::Tensor& w,
                                           const torch::Tensor& g, int64_t L) {
  const auto l = positions(w, L);
  const auto Vc = torch::exp(w.unsqueeze(-1) * l).conj();  // (H, N2, L)
  const auto gl = g.unsqueeze(1);                          // (H, 1, L)
  return {2 * (gl * Vc).sum(-1), 2 * Ct.conj() * (gl * l * Vc).sum(-1)};
}

struct SsmVandermondeFunction : torch::autograd::Function<SsmVandermondeFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& Ct,
                               const torch::Tensor& w, int64_t L) {
    RECORD_FUNCTION("herd::ssm_kernel forward", std::vector<c10::IValue>());
    ctx->save_for_backward({Ct, w});
    ctx->saved_data["L"] = L;
    const auto c = real_pairs(Ct), wr = real_pairs(w);
#ifdef HERD_HAVE_CUDA_KERNELS
    if (Ct.is_cuda()) return detail::ssm_kernel_forward_cuda(c, wr, L);
#endif
    return detail::ssm_kernel_forward_cpu(c, wr, L);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &Ct = saved[0], &w = saved[1];
    const int64_t L = ctx->saved_data["L"].toInt();
    const auto& g = grads[0];
    if (!g.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    if (torch::GradMode::is_enabled()) {
      auto gr = backward_aten(Ct, w, g, L);
      return {gr[0], gr[1], torch::Tensor()};
    }
    const auto c = real_pairs(Ct), wr = real_pairs(w);
    const auto gc = g.contiguous();
    const bool need_Ct = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    std::array<torch::Tensor, 2> gr;
#ifdef HERD_HAVE_CUDA_KERNELS
    if (Ct.is_cuda()) gr = detail::ssm_kernel_backward_cuda(c, wr, gc, need_Ct, need_w);
#endif
    if (!Ct.is_cuda()) gr = detail::ssm_kernel_backward_cpu(c, wr, gc, need_Ct, need_w);
    for (auto& t : gr)
      if (t.defined()) t = torch::view_as_complex(t);
    return {gr[0], gr[1], torch::Tensor()};
  }
};

}  // namespace

Support ssm_vandermonde_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble});
}

Support ssm_vandermonde_supports(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  if (!Ct.defined() || !w.defined() || Ct.dim() != 2 || w.sizes() != Ct.sizes())
    return Support::no("needs Ct and w of one shape (H, N/2)");
  if (Ct.layout() != torch::kStrided || w.layout() != torch::kStrided)
    return Support::no("sparse inputs");
  const auto dt = Ct.scalar_type();
  if (!c10::isComplexType(dt) || w.scalar_type() != dt || w.device() != Ct.device())
    return Support::no("Ct and w are not complex tensors of one dtype and device");
  if (Ct.numel() == 0 || L < 1) return Support::no("empty kernel");
  OpTarget t = OpTarget::of(Ct);
  t.dtype = c10::toRealValueType(dt);
  return ssm_vandermonde_supports(t);
}

KernelPath ssm_vandermonde_path(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  OpTarget t = OpTarget::of(Ct);
  if (c10::isComplexType(t.dtype)) t.dtype = c10::toRealValueType(t.dtype);
  return choose_path("ssm_kernel", t, ssm_vandermonde_supports(Ct, w, L));
}

torch::Tensor ssm_vandermonde_reference(const torch::Tensor& Ct, const torch::Tensor& w,
                                        int64_t L) {
  // exp(l w) with the principal log w = log dA: the reference's log-Vandermonde product.
  auto V = torch::exp(w.unsqueeze(-1) * positions(w, L));  // (H, N/2, L)
  return 2 * torch::real((Ct.unsqueeze(-1) * V).sum(1));
}

torch::Tensor ssm_vandermonde_fused(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  const auto s = ssm_vandermonde_supports(Ct, w, L);
  HERD_CHECK(s.ok, "ssm_vandermonde: the fused kernel does not take Ct ", Ct.sizes(), " ",
             Ct.scalar_type(), " on ", Ct.device(), " with w ", w.sizes(), " ", w.scalar_type(),
             " and L = ", L, ": ", s.why);
  return SsmVandermondeFunction::apply(Ct, w, L);
}

torch::Tensor ssm_vandermonde(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  if (ssm_vandermonde_path(Ct, w, L) == KernelPath::reference)
    return ssm_vandermonde_reference(Ct, w, L);
  return SsmVandermondeFunction::apply(Ct, w, L);
}

}  // namespace herd::ops
