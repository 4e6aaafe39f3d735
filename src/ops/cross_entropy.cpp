// linear_cross_entropy: the chunk loop (ATen GEMMs on any device), autograd and dispatch. The
// per-row pass is cross_entropy_cpu.cpp / cross_entropy_cuda.cpp.
#include "ops/cross_entropy.h"
#include <ATen/record_function.h>

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "core/error.h"
#include "ops/cross_entropy_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// fp32 logits per chunk; see cross_entropy_chunk_rows in the header.
constexpr int64_t kLogitsChunkBytes = 64 << 20;
constexpr int64_t kMinChunkRows = 64;

std::pair<torch::Tensor, torch::Tensor> rows_on_device(torch::Tensor& z, const torch::Tensor& t,
                                                       int64_t ignore, double scale, bool grad,
                                                       bool argmax) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (z.is_cuda()) return detail::cross_entropy_rows_cuda(z, t, ignore, scale, grad, argmax);
#endif
  return detail::cross_entropy_rows_cpu(z, t, ignore, scale, grad, argmax);
}

struct Wanted {
  bool dx = false, dw = false, db = false;
  bool correct = false;  // count rows whose argmax is the target
  bool any() const { return dx || dw || db; }
};

struct ChunkResult {
  torch::Tensor loss, correct;  // 0-dim: mean loss (accumulation dtype), int64 count
  torch::Tensor dx, dw, db;     // of the mean loss; undefined where not wanted
};

// The chunk loop. x [N, D], w [V, D], b [V] or undefined: one dtype, contiguous.
ChunkResult run_chunks(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                       const torch::Tensor& targets, int64_t ignore, int64_t chunk_rows,
                       Wanted want) {
  const int64_t N = x.size(0), V = w.size(0);
  const auto acc = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const auto valid = targets != ignore;
  HERD_CHECK(!(valid & ((targets < 0) | (targets >= V))).any().item<bool>(),
             "cross_entropy: a target is outside [0, ", V, ") and is not the ignore index ",
             ignore);
  const int64_t n_valid = valid.sum().item<int64_t>();
  const double scale = n_valid > 0 ? 1.0 / static_cast<double>(n_valid) : 0.0;
  const int64_t R = chunk_rows > 0 ? std::min(chunk_rows, N) : cross_entropy_chunk_rows(N, V);

  ChunkResult out;
  auto logits = torch::empty({R, V}, x.options());  // reused by every chunk
  auto loss_sum = torch::zeros({}, x.options().dtype(torch::kDouble));
  auto correct = torch::zeros({}, targets.options());
  // Reduced-precision GEMMs accumulate dW over the chunks in fp32 (one rounding, at the end).
  const bool low = acc != x.scalar_type();
  torch::Tensor dw_part;
  if (want.dx) out.dx = torch::empty_like(x);
  if (want.dw) {
    out.dw = torch::empty_like(w, w.options().dtype(acc));
    if (low) dw_part = torch::empty_like(w);
  }
  if (want.db) out.db = torch::zeros({V}, w.options().dtype(acc));
  const auto wt = w.t();
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t rc = std::min(R, N - r0);
    auto z = logits.narrow(0, 0, rc);
    const auto xc = x.narrow(0, r0, rc);
    if (b.defined())
      at::addmm_out(z, b, xc, wt);
    else
      at::mm_out(z, xc, wt);
    const auto tc = targets.narrow(0, r0, rc);
    auto [row_loss, argmax] = rows_on_device(z, tc, ignore, scale, want.any(), want.correct);
    loss_sum.add_(row_loss.sum(0, false, torch::kDouble));
    if (want.correct) correct.add_(((argmax == tc) & valid.narrow(0, r0, rc)).sum());
    if (!want.any()) continue;
    // z now holds dlogits of the chunk.
    if (want.dx) {
      auto dxc = out.dx.narrow(0, r0, rc);
      at::mm_out(dxc, z, w);
    }
    if (want.dw) {
      const auto zt = z.t();
      if (low) {
        at::mm_out(dw_part, zt, xc);
        if (r0 == 0)
          out.dw.copy_(dw_part);
        else
          out.dw.add_(dw_part);
      } else if (r0 == 0) {
        at::mm_out(out.dw, zt, xc);
      } else {
        out.dw.addmm_(zt, xc);
      }
    }
    if (want.db) out.db.add_(z.sum(0, false, acc));
  }
  // 0 / 0 = NaN when every row is ignored, as torch's mean reduction.
  out.loss = (loss_sum / static_cast<double>(n_valid)).to(acc);
  out.correct = correct;
  return out;
}

// Gradients are computed in forward (run_chunks) and scaled here; see ops/cross_entropy.h.
struct LinearCrossEntropyFunction : torch::autograd::Function<LinearCrossEntropyFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b_in, const torch::Tensor& targets,
                               int64_t ignore, int64_t chunk_rows, bool need_dx, bool need_dw,
                               bool need_db, bool count_correct) {
    RECORD_FUNCTION("herd::cross_entropy forward", std::vector<c10::IValue>());
    const bool has_bias = b_in.numel() > 0;  // see apply_fused
    auto r = run_chunks(x, w, has_bias ? b_in : torch::Tensor(), targets, ignore, chunk_rows,
                        {need_dx, need_dw, need_db && has_bias, count_correct});
    ctx->save_for_backward({x, w, b_in, targets});
    ctx->saved_data["ignore"] = ignore;
    ctx->saved_data["has_bias"] = has_bias;
    if (r.dx.defined()) ctx->saved_data["dx"] = r.dx;
    if (r.dw.defined()) ctx->saved_data["dw"] = r.dw;
    if (r.db.defined()) ctx->saved_data["db"] = r.db;
    ctx->mark_non_differentiable({r.correct});
    return {r.loss, r.correct};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto& g = grads[0];
    variable_list none(10);
    if (!g.defined()) return none;
    const auto saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const bool need[3] = {ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                          has_bias && ctx->needs_input_grad(2)};
    const char* names[3] = {"dx", "dw", "db"};
    bool ready = !torch::GradMode::is_enabled();
    for (int i = 0; i < 3; ++i) ready &= !need[i] || ctx->saved_data.count(names[i]) > 0;
    variable_list out = none;
    if (ready) {
      // Handed over (the saved references dropped): autograd may then take them as they are.
      const bool unit = !g.is_cuda() && g.item<double>() == 1.0;
      for (int i = 0; i < 3; ++i) {
        if (!need[i]) continue;
        auto t = ctx->saved_data[names[i]].toTensor();
        ctx->saved_data.erase(names[i]);
        out[i] = unit ? t : t.mul_(g);
      }
      return out;
    }
    // Double backward (a graph of the gradient), or a second backward through a retained
    // graph: recompute through the reference, differentiably.
    const bool create_graph = torch::GradMode::is_enabled();
    torch::AutoGradMode grad_on(true);
    std::vector<torch::Tensor> in(3), wrt;
    for (int i = 0; i < 3; ++i) {
      in[i] = saved[i];
      if (!create_graph && need[i]) in[i] = saved[i].detach().requires_grad_(true);
      if (need[i]) wrt.push_back(in[i]);
    }
    auto loss = linear_cross_entropy_reference(in[0], in[1], has_bias ? in[2] : torch::Tensor(),
                                               saved[3], ctx->saved_data["ignore"].toInt());
    auto d = torch::autograd::grad({loss}, wrt, {g}, create_graph, create_graph);
    for (int i = 0, k = 0; i < 3; ++i)
      if (need[i]) out[i] = d[k++];
    return out;
  }
};

// autograd::Function cannot take an undefined tensor input; no bias travels as an empty one.
torch::Tensor apply_fused(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          const torch::Tensor& targets, int64_t ignore, torch::Tensor* correct,
                          int64_t chunk_rows) {
  torch::Tensor xs = x, ws = w, bs = b;
  const auto dev = x.device().type();
  if (at::autocast::is_autocast_enabled(dev)) {
    // The autocast dtype for the GEMMs, cast once (not per chunk); the row pass upcasts.
    const auto low = at::autocast::get_autocast_dtype(dev);
    xs = x.to(low);
    ws = w.to(low);
    if (b.defined()) bs = b.to(low);
  }
  xs = xs.contiguous();
  ws = ws.contiguous();
  bs = bs.defined() ? bs.contiguous() : torch::empty({0}, ws.options());
  const bool grad = torch::GradMode::is_enabled();
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  auto out = LinearCrossEntropyFunction::apply(
      xs, ws, bs, targets.contiguous(), ignore, chunk_rows, grad && xs.requires_grad(),
      grad && ws.requires_grad(), grad && b.defined() && bs.requires_grad(), correct != nullptr);
  if (correct) *correct = out[1];
  return out[0];
}

bool on(const torch::Tensor& t, const torch::Tensor& x) {
  return t.device() == x.device() && t.layout() == torch::kStrided;
}

}  // namespace

int64_t cross_entropy_chunk_rows(int64_t N, int64_t V) {
  const int64_t rows = std::max(kMinChunkRows, kLogitsChunkBytes / (4 * std::max<int64_t>(V, 1)));
  return std::max<int64_t>(1, std::min(N, rows));
}

Support linear_cross_entropy_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support linear_cross_entropy_supports(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const torch::Tensor& targets) {
  if (!x.defined() || !weight.defined() || !targets.defined() || x.dim() != 2 ||
      weight.dim() != 2 || targets.dim() != 1)
    return Support::no("needs x [N, D], weight [V, D], targets [N]");
  if (x.size(0) == 0 || x.size(1) != weight.size(1) || weight.size(0) == 0 ||
      targets.size(0) != x.size(0))
    return Support::no("shapes do not match (x [N, D], weight [V, D], targets [N], N, V >= 1)");
  if (!on(x, x) || !on(weight, x) || !on(targets, x) || (bias.defined() && !on(bias, x)))
    return Support::no("inputs on different devices, or sparse");
  if (targets.scalar_type() != torch::kLong) return Support::no("targets are not int64");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0)))
    return Support::no("bias is not [V]");
  const auto t = OpTarget::of(x);
  // Under autocast the GEMMs run in the autocast dtype whatever the inputs' dtypes.
  if (!t.autocast && (weight.scalar_type() != x.scalar_type() ||
                      (bias.defined() && bias.scalar_type() != x.scalar_type())))
    return Support::no("x, weight and bias differ in dtype");
  return linear_cross_entropy_supports(t);
}

KernelPath linear_cross_entropy_path(const torch::Tensor& x, const torch::Tensor& weight,
                                     const torch::Tensor& bias, const torch::Tensor& targets) {
  return choose_path("cross_entropy", OpTarget::of(x),
                     linear_cross_entropy_supports(x, weight, bias, targets));
}

torch::Tensor linear_cross_entropy_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                             const torch::Tensor& bias,
                                             const torch::Tensor& targets, int64_t ignore_index,
                                             torch::Tensor* correct) {
  auto logits = torch::nn::functional::linear(x, weight, bias);
  // Reduced-precision logits are upcast: the softmax over a large vocabulary needs fp32.
  if (logits.scalar_type() != torch::kFloat64) logits = logits.to(torch::kFloat32);
  if (correct) *correct = ((logits.argmax(-1) == targets) & (targets != ignore_index)).sum();
  return torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
}

torch::Tensor linear_cross_entropy_fused(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias, const torch::Tensor& targets,
                                         int64_t ignore_index, torch::Tensor* correct,
                                         int64_t chunk_rows) {
  const auto s = linear_cross_entropy_supports(x, weight, bias, targets);
  HERD_CHECK(s.ok, "cross_entropy: the fused path does not take x ", x.sizes(), " ",
             x.scalar_type(), " on ", x.device(), " with weight ", weight.sizes(), ": ", s.why);
  return apply_fused(x, weight, bias, targets, ignore_index, correct, chunk_rows);
}

torch::Tensor linear_cross_entropy(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias, const torch::Tensor& targets,
                                   int64_t ignore_index, torch::Tensor* correct) {
  if (linear_cross_entropy_path(x, weight, bias, targets) == KernelPath::reference)
    return linear_cross_entropy_reference(x, weight, bias, targets, ignore_index, correct);
  return apply_fused(x, weight, bias, targets, ignore_index, correct, 0);
}

}  // namespace herd::ops
