// Reference adapters for m2's block-diagonal linear and the M2-BERT GLU dimension mixer.
#include "conformance/reference_util.h"
#include "core/error.h"
#include "layers/monarch_mlp.h"
#include "ops/blockdiag_linear.h"

namespace herd {

// config: BlockdiagLinear(in_features, out_features, bias, nblocks, shuffle=false).
ReferenceModule reference_m2_blockdiag_linear(const YAML::Node& config,
                                              const std::string& variant) {
  const std::string block = "m2_blockdiag_linear";
  ref::check_keys(config, block, {"in_features", "out_features", "nblocks", "bias", "shuffle"});
  HERD_CHECK(!ref::get_bool(config, block, "shuffle", false), block,
             " config: shuffle must be false (herd's BlockdiagLinear has no permutation)");
  auto m = BlockdiagLinear(
      ref::get_int(config, block, "in_features"), ref::get_int(config, block, "out_features"),
      ref::get_int(config, block, "nblocks"), ref::get_bool(config, block, "bias", true));
  ReferenceModule out;
  out.module = m.ptr();
  out.name_map = ref::identity_map(*m);
  out.forward = [m = m.ptr()](const std::map<std::string, torch::Tensor>& in) {
    return m->forward(ref::input_of(in));
  };
  return out;
}

// config: the BertConfig fields BertGatedLinearUnitMLP reads, either at top level or under
// "BertConfig fields". Only the GLU + Monarch (block-diagonal) MLP is modelled.
ReferenceModule reference_m2_dimension_mixer(const YAML::Node& config0,
                                             const std::string& variant) {
  const std::string block = "m2_dimension_mixer";
  const YAML::Node config =
      config0.IsMap() && config0["BertConfig fields"] ? config0["BertConfig fields"] : config0;
  ref::check_keys(
      config, block,
      {"hidden_size", "intermediate_size", "layer_norm_eps", "monarch_mlp_nblocks", "use_glu_mlp",
       "use_monarch_mlp", "hidden_dropout_prob", "monarch_mixer_sequence_mixing"});
  HERD_CHECK(ref::get_bool(config, block, "use_glu_mlp") &&
                 ref::get_bool(config, block, "use_monarch_mlp"),
             block,
             " config: use_glu_mlp and use_monarch_mlp must be true (herd models the "
             "block-diagonal GLU MLP only)");
  auto m = MonarchGluMlp(ref::get_int(config, block, "hidden_size"),
                         ref::get_int(config, block, "intermediate_size"),
                         ref::get_int(config, block, "monarch_mlp_nblocks"),
                         ref::get_double(config, block, "layer_norm_eps", 1e-12));
  ReferenceModule out;
  out.module = m.ptr();
  out.name_map = ref::identity_map(*m);
  out.forward = [m = m.ptr()](const std::map<std::string, torch::Tensor>& in) {
    return m->forward(ref::input_of(in));
  };
  return out;
}

}  // namespace herd
