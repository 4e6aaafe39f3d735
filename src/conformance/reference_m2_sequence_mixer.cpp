// Golden adapter: herd's m2_sequence_mixer built from the reference constructor arguments.
#include "blocks/monarch_mixer.h"
#include "conformance/reference_util.h"

namespace herd {

// Conformance adapter: config = MonarchMixerSequenceMixing constructor arguments.
ReferenceModule reference_m2_sequence_mixer(const YAML::Node& config, const std::string& variant) {
  const std::string block = "m2_sequence_mixer";
  ref::check_keys(
      config, block,
      {"d_model", "l_max", "dropout", "hyena_kernel_lr", "bidirectional", "hyena_lr_pos_emb",
       "hyena_w", "hyena_w_mod", "hyena_wd", "hyena_emb_dim", "hyena_filter_dropout",
       "hyena_filter_order", "residual_long_conv", "hyena_training_additions"});
  HERD_CHECK(!ref::get_bool(config, block, "hyena_training_additions", false), block,
             " config: key \"hyena_training_additions\": expected false (no LayerNorm/dropout)");
  MonarchMixerOptions o;
  o.d_model = ref::get_int(config, block, "d_model");
  o.l_max = ref::get_int(config, block, "l_max", 128);
  o.bidirectional = ref::get_bool(config, block, "bidirectional", false);
  o.filter_order = ref::get_int(config, block, "hyena_filter_order", 16);
  o.emb_dim = ref::get_int(config, block, "hyena_emb_dim", 3);
  o.w = ref::get_double(config, block, "hyena_w", 10.0);
  o.w_mod = ref::get_double(config, block, "hyena_w_mod", 1.0);
  o.residual_long_conv = ref::get_bool(config, block, "residual_long_conv", false);
  auto m = MonarchMixer(o);
  return mirrored_reference(m.ptr(),
                            [p = m.ptr()](const torch::Tensor& x) { return p->forward(x); });
}

}  // namespace herd
