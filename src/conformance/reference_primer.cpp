// Reference adapters for Primer (paper definition; golden files written from the paper's
// formulas): multi-dconv-head attention and the squared-ReLU FFN.
#include "blocks/primer.h"
#include "conformance/reference_util.h"
#include "layers/mlp.h"

namespace herd {

// variant mdha: config {d_model, num_heads, kernel_size}; squared_relu_ffn: {d_model, d_ff}.
ReferenceModule reference_primer(const YAML::Node& config, const std::string& variant) {
  const std::string block = "primer";
  ref::check_variant(block, variant, {"mdha", "squared_relu_ffn"});
  ReferenceModule out;
  if (variant == "mdha") {
    ref::check_keys(config, block, {"d_model", "num_heads", "kernel_size", "bias", "causal"});
    auto m = PrimerMDHA(
        ref::get_int(config, block, "d_model"), ref::get_int(config, block, "num_heads"),
        ref::get_int(config, block, "kernel_size", 3), ref::get_bool(config, block, "causal", true),
        ref::get_bool(config, block, "bias", true));
    out.module = m.ptr();
    out.name_map = ref::identity_map(*m);
    out.forward = [m = m.ptr()](const std::map<std::string, torch::Tensor>& in) {
      return m->forward(ref::input_of(in));
    };
  } else {
    ref::check_keys(config, block, {"d_model", "d_ff", "bias"});
    auto m = Mlp(ref::get_int(config, block, "d_model"), ref::get_int(config, block, "d_ff"),
                 Activation::squared_relu, ref::get_bool(config, block, "bias", true));
    out.module = m.ptr();
    out.name_map = ref::identity_map(*m);
    out.forward = [m = m.ptr()](const std::map<std::string, torch::Tensor>& in) {
      return m->forward(ref::input_of(in));
    };
  }
  return out;
}

}  // namespace herd
