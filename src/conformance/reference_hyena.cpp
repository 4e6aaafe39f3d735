// Golden adapter: herd's hyena built from the reference constructor arguments.
#include "blocks/hyena.h"
#include "conformance/reference_util.h"

namespace herd {

// Conformance adapter: config = HyenaOperator constructor arguments.
ReferenceModule reference_hyena(const YAML::Node& config, const std::string& variant) {
  const std::string block = "hyena";
  ref::check_keys(config, block,
                  {"d_model",
                   "l_max",
                   "order",
                   "filter_order",
                   "num_heads",
                   "inner_factor",
                   "num_blocks",
                   "outer_mixing",
                   "post_order_ffn",
                   "short_filter_order",
                   "activation",
                   "dropout",
                   "filter_dropout",
                   "emb_dim",
                   "w",
                   "modulate",
                   "lr_pos_emb",
                   "lr",
                   "wd",
                   "bias",
                   "num_inner_mlps",
                   "normalized",
                   "fused_fft_conv",
                   "fused_bias_fc",
                   "jit_filter",
                   "return_state"});
  HERD_CHECK(ref::get_int(config, block, "num_heads", 1) == 1 &&
                 ref::get_int(config, block, "inner_factor", 1) == 1 &&
                 ref::get_int(config, block, "num_blocks", 1) == 1,
             block, " config: num_heads, inner_factor and num_blocks must be 1");
  HERD_CHECK(!ref::get_bool(config, block, "outer_mixing", false) &&
                 !ref::get_bool(config, block, "post_order_ffn", false) &&
                 !ref::get_bool(config, block, "normalized", false) &&
                 ref::get_bool(config, block, "bias", true),
             block, " config: outer_mixing, post_order_ffn, normalized must be false, bias true");
  HERD_CHECK(!config["activation"] || config["activation"].as<std::string>() == "id", block,
             " config: key \"activation\": expected \"id\"");
  HyenaOptions o;
  o.d_model = ref::get_int(config, block, "d_model");
  o.l_max = ref::get_int(config, block, "l_max");
  o.order = ref::get_int(config, block, "order", 2);
  o.filter_order = ref::get_int(config, block, "filter_order", 64);
  o.emb_dim = ref::get_int(config, block, "emb_dim", 3);
  o.w = ref::get_double(config, block, "w", 1.0);
  o.short_filter_order = ref::get_int(config, block, "short_filter_order", 3);
  o.num_inner_mlps = ref::get_int(config, block, "num_inner_mlps", 2);
  o.modulate = ref::get_bool(config, block, "modulate", true);
  auto m = Hyena(o);
  return mirrored_reference(m.ptr(),
                            [p = m.ptr()](const torch::Tensor& x) { return p->forward(x); });
}

}  // namespace herd
