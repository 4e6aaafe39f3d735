#include "ops/blockdiag_linear.h"
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace herd::ops {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_shapes(const torch::Tensor& x, const torch::Tensor& weight, int64_t out_features) {
  HERD_CHECK(weight.dim() == 3, "blockdiag_linear: weight must be (nblocks, q, p), got ",
             weight.sizes());
  const int64_t nb = weight.size(0), q = weight.size(1), p = weight.size(2);
  const int64_t in = x.size(-1);
  HERD_CHECK(in <= nb * p, "blockdiag_linear: input has ", in, " features, weight ", weight.sizes(),
             " takes at most ", nb * p);
  HERD_CHECK(out_features <= nb * q, "blockdiag_linear: out_features ", out_features,
             " exceeds nblocks*q = ", nb * q);
}

// y[:, b q:(b+1) q] = x[:, b p:(b+1) p] W_b^T for every block, written in place: each
// operand is a strided view that BLAS reads with its leading dimension, so nothing is copied.
torch::Tensor blocks_forward(const torch::Tensor& x2, const torch::Tensor& w,
                             const torch::Tensor& bias) {
  const int64_t nb = w.size(0), q = w.size(1), p = w.size(2);
  auto y = torch::empty({x2.size(0), nb * q}, x2.options());
  for (int64_t b = 0; b < nb; ++b) {
    auto yb = y.narrow(1, b * q, q);  // an lvalue: the _out functions take Tensor&
    auto xb = x2.narrow(1, b * p, p);
    if (bias.defined())
      at::addmm_out(yb, bias.narrow(0, b * q, q), xb, w[b].t());
    else
      at::mm_out(yb, xb, w[b].t());
  }
  return y;
}

struct BlockdiagFunction : torch::autograd::Function<BlockdiagFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x2,
                               const torch::Tensor& w, const torch::Tensor& bias) {
    RECORD_FUNCTION("herd::blockdiag_linear forward", std::vector<c10::IValue>());
    ctx->save_for_backward({x2, w, bias});
    return blocks_forward(x2, w, bias.numel() > 0 ? bias : torch::Tensor());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2 = saved[0], &w = saved[1], &bias = saved[2];
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const auto dy = grads[0].contiguous();
    const int64_t nb = w.size(0), q = w.size(1), p = w.size(2);
    torch::Tensor dx, dw, db;
    if (torch::GradMode::is_enabled()) {                // double backward: differentiable ops
      auto dyb = dy.view({-1, nb, q}).transpose(0, 1);  // (nb, N, q)
      auto xb = x2.view({-1, nb, p}).transpose(0, 1);
      if (ctx->needs_input_grad(0)) dx = torch::bmm(dyb, w).transpose(0, 1).reshape({-1, nb * p});
      if (ctx->needs_input_grad(1)) dw = torch::bmm(dyb.transpose(1, 2), xb);
    } else {
      if (ctx->needs_input_grad(0)) dx = torch::empty_like(x2);
      if (ctx->needs_input_grad(1)) dw = torch::empty_like(w);
      for (int64_t b = 0; b < nb; ++b) {
        auto dyb = dy.narrow(1, b * q, q);
        if (dx.defined()) {
          auto dxb = dx.narrow(1, b * p, p);
          at::mm_out(dxb, dyb, w[b]);
        }
        if (dw.defined()) {
          auto dwb = dw[b];
          at::mm_out(dwb, dyb.t(), x2.narrow(1, b * p, p));
        }
      }
    }
    if (bias.numel() > 0 && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

// Under autocast blockdiag_linear() hands the fused path x and the weight in the autocast
// dtype, as the reference's bmm would run, and adds the (float) bias after it, as the
// reference's `y + bias` promotes.
Support blockdiag_linear_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support blockdiag_linear_supports(const torch::Tensor& x, const torch::Tensor& weight,
                                  int64_t out_features, const torch::Tensor& bias) {
  check_shapes(x, weight, out_features);
  const int64_t nb = weight.size(0), q = weight.size(1), p = weight.size(2);
  if (x.size(-1) != nb * p || out_features != nb * q)
    return Support::no("features not a multiple of nblocks (padding/truncation)");
  if (x.numel() == 0) return Support::no("empty input");
  if (weight.scalar_type() != x.scalar_type() || weight.device() != x.device() ||
      (bias.defined() && (bias.scalar_type() != x.scalar_type() || bias.device() != x.device())))
    return Support::no("weight/bias dtype or device differ from x");
  return blockdiag_linear_supports(OpTarget::of(x));
}

KernelPath blockdiag_linear_path(const torch::Tensor& x, const torch::Tensor& weight,
                                 int64_t out_features, const torch::Tensor& bias) {
  return choose_path("blockdiag_linear", OpTarget::of(x),
                     blockdiag_linear_supports(x, weight, out_features, bias));
}

torch::Tensor blockdiag_linear_fused(const torch::Tensor& x, const torch::Tensor& weight,
                                     int64_t out_features, const torch::Tensor& bias) {
  const auto s = blockdiag_linear_supports(x, weight, out_features, bias);
  HERD_CHECK(s.ok, "blockdiag_linear: the fused path does not take x ", x.sizes(), " with weight ",
             weight.sizes(), ": ", s.why);
  auto lead = x.sizes().vec();
  lead.back() = out_features;
  auto x2 = x.reshape({-1, x.size(-1)});
  if (x2.stride(1) != 1) x2 = x2.contiguous();
  auto y = BlockdiagFunction::apply(x2, weight.contiguous(),
                                    bias.defined() ? bias : torch::empty({0}, x.options()));
  return y.view(lead);
}

torch::Tensor blockdiag_linear(const torch::Tensor& x, const torch::Tensor& weight,
                               int64_t out_features, const torch::Tensor& bias) {
  const auto dev = x.device().type();
  const bool cast = at::autocast::is_autocast_enabled(dev) && x.scalar_type() == torch::kFloat &&
                    weight.scalar_type() == torch::kFloat;
  if (!cast) {
    if (blockdiag_linear_path(x, weight, out_features, bias) == KernelPath::reference)
      return blockdiag_linear_reference(x, weight, out_features, bias);
    return blockdiag_linear_fused(x, weight, out_features, bias);
  }
  const auto dt = at::autocast::get_autocast_dtype(dev);
  const auto xc = x.to(dt), wc = weight.to(dt);  // differentiable casts: float grads flow back
  if (blockdiag_linear_path(xc, wc, out_features, {}) == KernelPath::reference)
    return blockdiag_linear_reference(x, weight, out_features, bias);
  auto y = blockdiag_linear_fused(xc, wc, out_features, {});
  return bias.defined() ? y + bias : y;
}

torch::Tensor blockdiag_linear_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                         int64_t out_features, const torch::Tensor& bias) {
  check_shapes(x, weight, out_features);
  const int64_t nb = weight.size(0), q = weight.size(1), p = weight.size(2);
  const int64_t in = x.size(-1);
  auto lead = x.sizes().vec();
  lead.pop_back();
  auto xp = in < nb * p ? torch::constant_pad_nd(x, {0, nb * p - in}) : x;
  // [N, nb, p] -> [nb, N, p] @ [nb, p, q] -> [nb, N, q] -> [N, nb*q]
  const int64_t n = x.numel() / std::max<int64_t>(in, 1);
  auto xb = xp.reshape({n, nb, p}).transpose(0, 1);
  auto y = torch::bmm(xb, weight.transpose(1, 2)).transpose(0, 1).reshape({n, nb * q});
  if (out_features < nb * q) y = y.narrow(-1, 0, out_features);
  if (bias.defined()) y = y + bias;
  lead.push_back(out_features);
  return y.reshape(lead);
}

}  // namespace herd::ops

namespace herd {

BlockdiagLinearImpl::BlockdiagLinearImpl(int64_t in, int64_t out, int64_t nb, bool use_bias)
    : in_features(in), out_features(out), nblocks(nb) {
  HERD_CHECK(in > 0 && out > 0 && nb > 0, "BlockdiagLinear: in_features ", in, ", out_features ",
             out, " and nblocks ", nb, " must be positive");
  const int64_t p = (in + nb - 1) / nb, q = (out + nb - 1) / nb;
  // Each block is a small nn.Linear(p, q): same uniform(+-1/sqrt(fan_in)) init, fan_in = p.
  const double bound = 1.0 / std::sqrt(static_cast<double>(p));
  weight = register_parameter("weight", torch::empty({nb, q, p}).uniform_(-bound, bound));
  if (use_bias) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    bias = register_parameter("bias", torch::empty({out}).uniform_(-b, b));
  }
}

torch::Tensor BlockdiagLinearImpl::forward(const torch::Tensor& x) {
  HERD_CHECK(x.size(-1) == in_features, "BlockdiagLinear: expected ", in_features,
             " input features, got ", x.size(-1));
  return ops::blockdiag_linear(x, weight, out_features, bias);
}

}  // namespace herd
