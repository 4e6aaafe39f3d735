// Reference adapters for softmax attention (torch.nn.MultiheadAttention).
#include "blocks/attention.h"
#include "conformance/reference_util.h"
#include "core/error.h"

namespace herd {

// config: nn.MultiheadAttention constructor arguments; variant causal|bidirectional.
ReferenceModule reference_attention(const YAML::Node& config, const std::string& variant) {
  const std::string block = "attention";
  ref::check_keys(config, block,
                  {"embed_dim", "num_heads", "bias", "dropout", "batch_first", "add_bias_kv",
                   "add_zero_attn", "kdim", "vdim"});
  ref::check_variant(block, variant, {"causal", "bidirectional"});
  const int64_t d = ref::get_int(config, block, "embed_dim");
  const int64_t h = ref::get_int(config, block, "num_heads");
  const bool bias = ref::get_bool(config, block, "bias", true);
  const bool batch_first = ref::get_bool(config, block, "batch_first", false);
  HERD_CHECK(!ref::get_bool(config, block, "add_bias_kv", false) &&
                 !ref::get_bool(config, block, "add_zero_attn", false),
             block, " config: add_bias_kv/add_zero_attn must be false (herd has no bias_k/v)");
  HERD_CHECK(
      ref::get_int(config, block, "kdim", d) == d && ref::get_int(config, block, "vdim", d) == d,
      block, " config: kdim/vdim must equal embed_dim ", d, " (self-attention only)");
  auto m = Attention(d, h, variant == "causal", bias);
  ReferenceModule out;
  out.module = m.ptr();
  out.name_map = ref::identity_map(*m);
  out.forward = [m = m.ptr(), batch_first](const std::map<std::string, torch::Tensor>& in) {
    const auto& x = ref::input_of(in);
    // batch_first=false files hold [L, B, D]; herd is always [B, L, D].
    return batch_first ? m->forward(x) : m->forward(x.transpose(0, 1)).transpose(0, 1);
  };
  return out;
}

}  // namespace herd
