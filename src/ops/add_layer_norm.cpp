// add_layer_norm: dispatch and autograd; the device halves are add_layer_norm_cpu.cpp and
// add_layer_norm_cuda.cpp.
#include "ops/add_layer_norm.h"
#include <ATen/record_function.h>

#include "core/error.h"
#include "ops/add_layer_norm_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

detail::AddNormForward forward_on_device(const torch::Tensor& h, const torch::Tensor& delta,
                                         const torch::Tensor& weight, const torch::Tensor& bias,
                                         double eps) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (h.is_cuda()) return detail::add_layer_norm_forward_cuda(h, delta, weight, bias, eps);
#endif
  return detail::add_layer_norm_forward_cpu(h, delta, weight, bias, eps);
}

detail::AddNormGrads backward_on_device(const torch::Tensor& s, const torch::Tensor& weight,
                                        const torch::Tensor& mean, const torch::Tensor& rstd,
                                        const torch::Tensor& dy, const torch::Tensor& ds_in,
                                        bool need_ds, bool need_dw, bool need_db) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (s.is_cuda())
    return detail::add_layer_norm_backward_cuda(s, weight, mean, rstd, dy, ds_in, need_ds, need_dw,
                                                need_db);
#endif
  return detail::add_layer_norm_backward_cpu(s, weight, mean, rstd, dy, ds_in, need_ds, need_dw,
                                             need_db);
}

// The backward in differentiable ATen ops, from the saved sum s: used when a graph of the
// backward is asked for (double backward), which the fused kernels do not record.
detail::AddNormGrads backward_aten(const torch::Tensor& s, const torch::Tensor& weight, double eps,
                                   const torch::Tensor& dy, const torch::Tensor& ds_in) {
  const auto mean = s.mean(-1, true);
  const auto rstd = ((s - mean).square().mean(-1, true) + eps).rsqrt();
  const auto xhat = (s - mean) * rstd;
  const auto g = dy * weight;
  auto ds = rstd * (g - g.mean(-1, true) - xhat * (g * xhat).mean(-1, true));
  if (ds_in.defined()) ds = ds + ds_in;
  const int64_t D = s.size(-1);
  return {ds, (dy * xhat).reshape({-1, D}).sum(0), dy.reshape({-1, D}).sum(0)};
}

// Outputs {sum, normed} with a delta, {normed} without one (the sum is h itself).
struct AddLayerNormFunction : torch::autograd::Function<AddLayerNormFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& h_in,
                               const torch::Tensor& delta_in, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps) {
    RECORD_FUNCTION("herd::add_layer_norm forward", std::vector<c10::IValue>());
    const bool has_delta = delta_in.numel() > 0;  // see apply_fused
    auto f = forward_on_device(h_in.contiguous(), has_delta ? delta_in.contiguous() : delta_in,
                               weight.contiguous(), bias.contiguous(), eps);
    if (!has_delta) f.sum = h_in;
    ctx->saved_data["has_delta"] = has_delta;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["mean"] = f.mean;
    ctx->saved_data["rstd"] = f.rstd;
    // The sum (an output, or the input h) is what the backward normalizes again; no other
    // activation is kept (the reference keeps the same: layer_norm's input).
    ctx->save_for_backward({f.sum, weight});
    if (!has_delta) return {f.normed};
    return {f.sum, f.normed};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool has_delta = ctx->saved_data["has_delta"].toBool();
    const auto saved = ctx->get_saved_variables();
    const auto &s = saved[0], &weight = saved[1];
    const auto ds_in = has_delta ? grads[0] : torch::Tensor();
    const auto dy = has_delta ? grads[1] : grads[0];
    const bool need_ds = ctx->needs_input_grad(0) || ctx->needs_input_grad(1);
    detail::AddNormGrads g;
    if (!dy.defined()) {
      g.ds = ds_in;  // only the residual stream's gradient; the norm contributes nothing
    } else if (torch::GradMode::is_enabled()) {
      g = backward_aten(s, weight, ctx->saved_data["eps"].toDouble(), dy, ds_in);
    } else {
      g = backward_on_device(s.contiguous(), weight.contiguous(),
                             ctx->saved_data["mean"].toTensor(), ctx->saved_data["rstd"].toTensor(),
                             dy.contiguous(), ds_in.defined() ? ds_in.contiguous() : ds_in, need_ds,
                             ctx->needs_input_grad(2), ctx->needs_input_grad(3));
    }
    if (g.ds.defined()) g.ds = g.ds.view(s.sizes());
    // dh = ddelta = ds: the same tensor serves both (autograd casts ddelta to delta's dtype).
    return {ctx->needs_input_grad(0) ? g.ds : torch::Tensor(),
            has_delta && ctx->needs_input_grad(1) ? g.ds : torch::Tensor(),
            ctx->needs_input_grad(2) ? g.dweight : torch::Tensor(),
            ctx->needs_input_grad(3) ? g.dbias : torch::Tensor(), torch::Tensor()};
  }
};

// autograd::Function cannot take an undefined tensor input; no delta travels as an empty one.
AddNorm apply_fused(const torch::Tensor& h, const torch::Tensor& delta, const torch::Tensor& weight,
                    const torch::Tensor& bias, double eps) {
  auto out = AddLayerNormFunction::apply(
      h, delta.defined() ? delta : torch::empty({0}, h.options()), weight, bias, eps);
  if (!delta.defined()) return {h, out[0]};
  return {out[0], out[1]};
}

bool same_place(const torch::Tensor& a, const torch::Tensor& b) {
  return a.device() == b.device() && a.layout() == torch::kStrided && b.layout() == torch::kStrided;
}

}  // namespace

Support add_layer_norm_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support add_layer_norm_supports(const torch::Tensor& h, const torch::Tensor& delta,
                                const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!h.defined() || h.dim() == 0 || h.numel() == 0 || h.layout() != torch::kStrided)
    return Support::no("needs a non-empty strided h [..., D]");
  const int64_t D = h.size(-1);
  for (const auto* p : {&weight, &bias})
    if (!p->defined() || p->dim() != 1 || p->size(0) != D || p->scalar_type() != h.scalar_type() ||
        !same_place(*p, h))
      return Support::no("weight and bias must be [D] tensors of h's dtype and device");
  if (delta.defined()) {
    if (delta.sizes() != h.sizes() || !same_place(delta, h))
      return Support::no("delta is not a tensor of h's shape on h's device (no broadcasting)");
    const bool autocast_mix =
        h.scalar_type() == torch::kFloat && delta.scalar_type() == torch::kBFloat16;
    if (delta.scalar_type() != h.scalar_type() && !autocast_mix)
      return Support::no(str("no kernel for ", dtype_name(h.scalar_type()), " + ",
                             dtype_name(delta.scalar_type())));
  }
  return add_layer_norm_supports(OpTarget::of(h));
}

KernelPath add_layer_norm_path(const torch::Tensor& h, const torch::Tensor& delta,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
  return choose_path("add_layer_norm", OpTarget::of(h),
                     add_layer_norm_supports(h, delta, weight, bias));
}

AddNorm add_layer_norm_reference(const torch::Tensor& h, const torch::Tensor& delta,
                                 const torch::Tensor& weight, const torch::Tensor& bias,
                                 double eps) {
  auto sum = delta.defined() ? h + delta : h;
  return {sum, torch::layer_norm(sum, {sum.size(-1)}, weight, bias, eps)};
}

AddNorm add_layer_norm_fused(const torch::Tensor& h, const torch::Tensor& delta,
                             const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
  const auto s = add_layer_norm_supports(h, delta, weight, bias);
  HERD_CHECK(s.ok, "add_layer_norm: the fused kernel does not take h ", h.sizes(), " ",
             h.scalar_type(), " on ", h.device(), ": ", s.why);
  return apply_fused(h, delta, weight, bias, eps);
}

AddNorm add_layer_norm(const torch::Tensor& h, const torch::Tensor& delta,
                       const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
  if (add_layer_norm_path(h, delta, weight, bias) == KernelPath::reference)
    return add_layer_norm_reference(h, delta, weight, bias, eps);
  return apply_fused(h, delta, weight, bias, eps);
}

AddNorm add_layer_norm(const torch::Tensor& h, const torch::Tensor& delta,
                       const torch::nn::LayerNorm& ln) {
  const auto& o = ln->options;
  HERD_CHECK(o.normalized_shape().size() == 1 && o.elementwise_affine(),
             "add_layer_norm: needs a LayerNorm over one dimension with weight and bias");
  return add_layer_norm(h, delta, ln->weight, ln->bias, o.eps());
}

}  // namespace herd::ops
