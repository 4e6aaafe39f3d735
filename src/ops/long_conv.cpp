#include "ops/long_conv.h"
#include <ATen/record_function.h>

#include "core/error.h"
#include "kernels/long_conv.cuh"
#include "ops/fft_conv.h"
#include "ops/long_conv_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// autograd::Function takes no undefined tensors: absent inputs travel as empty ones.
torch::Tensor or_empty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}
torch::Tensor defined_or_null(const torch::Tensor& t) {
  return t.numel() > 0 ? t : torch::Tensor();
}

void check_inputs(const LongConvInputs& in) {
  const auto& x = in.x;
  HERD_CHECK(x.defined() && x.dim() == 3, "long_conv: x must be [B, C, L], got ",
             x.defined() ? x.sizes() : torch::IntArrayRef{});
  const int64_t C = x.size(1);
  HERD_CHECK(in.k.defined() && in.k.dim() == 2 && in.k.size(0) == C,
             "long_conv: kernel must be [C=", C, ", Lk], got ", in.k.sizes());
  HERD_CHECK(!in.k_rev.defined() || (in.k_rev.dim() == 2 && in.k_rev.size(0) == C),
             "long_conv: reverse kernel must be [C=", C, ", Lk], got ", in.k_rev.sizes());
  HERD_CHECK(!in.D.defined() || (in.D.dim() == 1 && in.D.size(0) == C),
             "long_conv: skip D must be [C=", C, "], got ", in.D.sizes());
  for (const auto* g : {&in.pre, &in.post})
    HERD_CHECK(!g->defined() || g->sizes() == x.sizes(), "long_conv: gates must match x ",
               x.sizes(), ", got ", g->sizes());
}

// The compute dtype of the fused path: float64 stays, everything else runs in float32.
torch::ScalarType compute_dtype(torch::ScalarType t) {
  return t == torch::kDouble ? torch::kDouble : torch::kFloat;
}

int64_t fft_size_of(const LongConvInputs& in) {
  return long_conv_fft_size(in.x.size(2), in.k.size(1), in.k_rev.defined() ? in.k_rev.size(1) : -1);
}

// The kernels read filter taps with unit stride (filters are often [C, N, L] slices).
LongConvInputs kernel_rows_contiguous(LongConvInputs in) {
  in.k = in.k.contiguous();
  if (in.k_rev.defined()) in.k_rev = in.k_rev.contiguous();
  return in;
}

struct LongConvFunction : torch::autograd::Function<LongConvFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& k,
                               const torch::Tensor& D, const torch::Tensor& pre,
                               const torch::Tensor& post, const torch::Tensor& k_rev) {
    RECORD_FUNCTION("herd::long_conv forward", std::vector<c10::IValue>());
    ctx->save_for_backward({x, k, D, pre, post, k_rev});
    const LongConvInputs in =
        kernel_rows_contiguous({x, k, defined_or_null(D), defined_or_null(pre),
                                defined_or_null(post), defined_or_null(k_rev)});
#ifdef HERD_HAVE_CUDA_KERNELS
    if (x.is_cuda()) return detail::long_conv_forward_cuda(in, fft_size_of(in));
#endif
    return detail::long_conv_forward_cpu(in, fft_size_of(in));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const LongConvInputs in{saved[0],
                            saved[1],
                            defined_or_null(saved[2]),
                            defined_or_null(saved[3]),
                            defined_or_null(saved[4]),
                            defined_or_null(saved[5])};
    const LongConvInputs rows = kernel_rows_contiguous(in);
    const auto& dy = grads[0];
    variable_list out(6);
    if (!dy.defined()) return out;
    detail::LongConvNeeds need;
    need.dx = ctx->needs_input_grad(0);
    need.dk = ctx->needs_input_grad(1);
    need.dD = in.D.defined() && ctx->needs_input_grad(2);
    need.dpre = in.pre.defined() && ctx->needs_input_grad(3);
    need.dpost = in.post.defined() && ctx->needs_input_grad(4);
    need.dk_rev = in.k_rev.defined() && ctx->needs_input_grad(5);
    if (torch::GradMode::is_enabled()) {
      // A graph of the backward (double backward): differentiate the ATen reference.
      std::vector<torch::Tensor> wrt;
      std::vector<int> slot;
      const bool wanted[6] = {need.dx, need.dk, need.dD, need.dpre, need.dpost, need.dk_rev};
      for (int i = 0; i < 6; ++i)
        if (wanted[i]) wrt.push_back(saved[i]), slot.push_back(i);
      if (wrt.empty()) return out;
      auto g = torch::autograd::grad({long_conv_reference(in)}, wrt, {dy}, true, true, true);
      for (size_t i = 0; i < slot.size(); ++i) out[slot[i]] = g[i];
      return out;
    }
#ifdef HERD_HAVE_CUDA_KERNELS
    auto g = in.x.is_cuda() ? detail::long_conv_backward_cuda(rows, dy, fft_size_of(in), need)
                            : detail::long_conv_backward_cpu(rows, dy, fft_size_of(in), need);
#else
    auto g = detail::long_conv_backward_cpu(rows, dy, fft_size_of(in), need);
#endif
    return {g.dx, g.dk, g.dD, g.dpre, g.dpost, g.dk_rev};
  }
};

}  // namespace

int64_t long_conv_fft_size(int64_t L, int64_t Lk, int64_t Lk_rev) {
  const int64_t Lf = std::min(Lk, L);
  if (Lk_rev < 0) return fft_fast_size(std::max<int64_t>(L + Lf - 1, 1));
  const int64_t Lr = std::min(Lk_rev, L - 1);
  return fft_fast_size(std::max<int64_t>({L + Lf - 1, L + Lr, 1}));
}

Support long_conv_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support long_conv_supports(const LongConvInputs& in) {
  check_inputs(in);
  const auto& x = in.x;
  if (x.numel() == 0) return Support::no("empty input");
  const auto dt = x.scalar_type();
  for (const auto* g : {&in.pre, &in.post})
    if (g->defined() && (g->scalar_type() != dt || g->device() != x.device()))
      return Support::no("gates differ from x in dtype or device");
  const auto acc = compute_dtype(dt);
  for (const auto* p : {&in.k, &in.k_rev, &in.D})
    if (p->defined() && (p->scalar_type() != acc || p->device() != x.device()))
      return Support::no(str("kernel/skip not ", dtype_name(acc), " on x's device"));
  if (fft_size_of(in) > kernels::kLongConvMaxFft) return Support::no("transform longer than 2^24");
  return long_conv_supports(OpTarget::of(x));
}

KernelPath long_conv_path(const LongConvInputs& in) {
  return choose_path("long_conv", OpTarget::of(in.x), long_conv_supports(in));
}

torch::Tensor long_conv_reference(const LongConvInputs& in) {
  check_inputs(in);
  const auto u = in.pre.defined() ? in.x * in.pre : in.x;
  auto z = in.k_rev.defined() ? fft_conv_bidirectional(u, in.k, in.k_rev, in.D)
                              : fft_conv(u, in.k, in.D);
  return in.post.defined() ? z * in.post : z;
}

torch::Tensor long_conv_fused(const LongConvInputs& in) {
  const auto s = long_conv_supports(in);
  HERD_CHECK(s.ok, "long_conv: the fused path does not take x ", in.x.sizes(), " ",
             in.x.scalar_type(), " on ", in.x.device(), ": ", s.why);
  const auto& x = in.x;
  return LongConvFunction::apply(x, in.k, or_empty(in.D, in.k), or_empty(in.pre, x),
                                 or_empty(in.post, x), or_empty(in.k_rev, in.k));
}

torch::Tensor long_conv(const LongConvInputs& in) {
  if (long_conv_path(in) == KernelPath::reference) return long_conv_reference(in);
  return long_conv_fused(in);
}

}  // namespace herd::ops
