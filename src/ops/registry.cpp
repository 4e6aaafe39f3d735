#include "ops/registry.h"

#include "core/error.h"
#include "ops/adamw.h"
#include "ops/add_layer_norm.h"
#include "ops/blockdiag_linear.h"
#include "ops/cross_entropy.h"
#include "ops/long_conv.h"
#include "ops/short_conv.h"
#include "ops/squared_relu.h"
#include "ops/ssm_kernel.h"

namespace herd::ops {

const std::vector<FusedOpEntry>& fused_ops() {
  // One line per op; the probe is the op's own supports() for a typical call.
  static const std::vector<FusedOpEntry> ops = {
      {"long_conv", "gated FFT long conv + D skip, causal/bidirectional (Hyena, H3, M2)",
       [](const OpTarget& t) { return long_conv_supports(t); }},
      {"blockdiag_linear", "Monarch block-diagonal linear: per-block GEMMs on strided views",
       [](const OpTarget& t) { return blockdiag_linear_supports(t); }},
      {"short_conv", "depthwise causal conv, K <= 64 (Hyena/M2 short filters, Primer dconv)",
       [](const OpTarget& t) { return short_conv_supports(t, 3); }},
      {"squared_relu", "bias + relu(x)^2, one pass each way, dbias included (Primer FFN)",
       [](const OpTarget& t) { return squared_relu_supports(t); }},
      {"ssm_kernel", "H3/S4D kernel 2Re(sum_n Ct exp(l w)) without the (H, N/2, L) Vandermonde",
       [](const OpTarget& t) { return ssm_vandermonde_supports(t); }},
      {"add_layer_norm", "residual add + LayerNorm, one pass each way (every block's norms)",
       [](const OpTarget& t) { return add_layer_norm_supports(t); }},
      {"cross_entropy", "linear + softmax cross-entropy by row chunks, no full logits (LM/MLM)",
       [](const OpTarget& t) { return linear_cross_entropy_supports(t); }},
      {"adamw", "AdamW step, one pass over every parameter (torch's update and state)",
       [](const OpTarget& t) { return adamw_supports(t); }},
  };
  return ops;
}

std::vector<OpTarget> reported_targets() {
  using c10::DeviceType;
  using c10::ScalarType;
  return {
      {DeviceType::CPU, ScalarType::Float, false},     {DeviceType::CPU, ScalarType::Double, false},
      {DeviceType::CPU, ScalarType::BFloat16, false},  {DeviceType::CUDA, ScalarType::Float, false},
      {DeviceType::CUDA, ScalarType::BFloat16, false}, {DeviceType::CUDA, ScalarType::Float, true}};
}

std::vector<std::string> fused_op_lines() {
  // A table: one row per op, one column per reported target; reasons numbered below it.
  const auto targets = reported_targets();
  const auto ops = fused_ops();
  size_t name_w = 9;
  for (const auto& op : ops) name_w = std::max(name_w, op.name.size() + 1);
  std::vector<size_t> col_w;  // each target's header, at least "reference(9) "
  for (const auto& t : targets) col_w.push_back(std::max<size_t>(14, t.describe().size() + 1));
  auto pad = [](std::string s, size_t w) {
    return s.size() < w ? s + std::string(w - s.size(), ' ') : s + " ";
  };
  std::vector<std::string> out;
  std::string head = pad("fused op", name_w);
  for (size_t j = 0; j < targets.size(); ++j) head += pad(targets[j].describe(), col_w[j]);
  out.push_back(head);
  std::vector<std::string> reasons;
  for (const auto& op : ops) {
    std::string line = pad(op.name, name_w);
    for (size_t j = 0; j < targets.size(); ++j) {
      const auto& t = targets[j];
      const Support s = op.probe(t);
      std::string cell;
      if (!fused_kernels_enabled()) {
        cell = "reference";
      } else if (s.ok) {
        cell = t.device == c10::DeviceType::CUDA ? "cuda" : "cpu";
      } else {
        const std::string why = op.name + ": " + s.why;
        size_t i = 0;
        while (i < reasons.size() && reasons[i] != why) ++i;
        if (i == reasons.size()) reasons.push_back(why);
        cell = str("reference(", i + 1, ")");
      }
      line += pad(cell, col_w[j]);
    }
    out.push_back(line);
  }
  for (size_t i = 0; i < reasons.size(); ++i) out.push_back(str("(", i + 1, ") ", reasons[i]));
  if (!fused_kernels_enabled()) out.push_back("every op on its reference: HERD_KERNELS=reference");
  return out;
}

}  // namespace herd::ops
