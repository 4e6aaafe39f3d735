// Reference adapter for the tiny GPT-2-style golden model (paper definition): builds herd's
// GPT from the file's config and maps GPT-2 parameter names onto herd's.
#include "conformance/reference_util.h"
#include "models/gpt.h"

namespace herd {

// config: {vocab_size, n_ctx, d_model, n_head, n_layer, ln_eps}. Output: mean cross-entropy.
ReferenceModule reference_gpt(const YAML::Node& config, const std::string& variant) {
  const std::string block = "gpt";
  ref::check_keys(config, block, {"vocab_size", "n_ctx", "d_model", "n_head", "n_layer", "ln_eps"});
  ModelConfig c;
  c.vocab_size = ref::get_int(config, block, "vocab_size");
  c.max_seq_len = ref::get_int(config, block, "n_ctx");
  c.d_model = ref::get_int(config, block, "d_model");
  c.n_head = ref::get_int(config, block, "n_head");
  c.n_layer = ref::get_int(config, block, "n_layer");
  c.norm_eps = ref::get_double(config, block, "ln_eps", 1e-5);
  c.mlp = "gelu_tanh";  // GPT-2's GELU
  c.mlp_ratio = 4;
  c.positional = "learned";
  c.tie_embeddings = true;
  c.mixer.type = "attention";
  c.mixer.options = YAML::Node(YAML::NodeType::Map);
  c.mixer.origin = "gpt reference config";
  c.layers.assign(c.n_layer, c.mixer);
  auto model = Gpt(c);

  ReferenceModule out;
  out.module = model.ptr();
  for (const char* name : {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"})
    out.name_map[name] = name;
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = str("h.", i, ".");
    const std::pair<const char*, const char*> renames[] = {
        {"ln_1.weight", "ln_1.weight"},
        {"ln_1.bias", "ln_1.bias"},
        {"c_attn.weight", "mixer.in_proj_weight"},
        {"c_attn.bias", "mixer.in_proj_bias"},
        {"c_proj.weight", "mixer.out_proj.weight"},
        {"c_proj.bias", "mixer.out_proj.bias"},
        {"ln_2.weight", "ln_2.weight"},
        {"ln_2.bias", "ln_2.bias"},
        {"c_fc.weight", "mlp.fc1.weight"},
        {"c_fc.bias", "mlp.fc1.bias"},
        {"c_fc_proj.weight", "mlp.fc2.weight"},
        {"c_fc_proj.bias", "mlp.fc2.bias"},
    };
    for (const auto& [ref_name, herd_name] : renames) out.name_map[h + ref_name] = h + herd_name;
  }
  out.forward = [m = model.ptr()](const std::map<std::string, torch::Tensor>& in) {
    auto target = in.find("target");
    HERD_CHECK(target != in.end(), "gpt: the golden file has no \"target\" tensor");
    return m->loss(ref::input_of(in), target->second);
  };
  return out;
}

}  // namespace herd
