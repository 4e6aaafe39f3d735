#include "ckpt/import.h"

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>

#include "ckpt/checkpoint.h"
#include "ckpt/import_recipe.h"
#include "ckpt/torch_pickle.h"
#include "config/node.h"
#include "conformance/reference.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/stack.h"

namespace herd::ckpt {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Lightning and composer prefix every key with "model."; the reference loaders strip it.
std::map<std::string, torch::Tensor> strip_model_prefix(std::map<std::string, torch::Tensor> in) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : in) out[starts_with(k, "model.") ? k.substr(6) : k] = v;
  return out;
}

YAML::Node load_json_or_yaml(const std::string& path) {
  return cfg::load_yaml_file(path);
}

// The model section of what may be a Lightning hyper_parameters dict, meta.json or the model
// config itself.
YAML::Node unwrap_model_config(const YAML::Node& n, const std::string& key_marker) {
  if (!n || !n.IsMap()) return n;
  if (n[key_marker]) return n;
  for (const char* wrapper : {"model", "config"})
    if (n[wrapper] && n[wrapper].IsMap() && n[wrapper][key_marker]) return n[wrapper];
  return n;
}

int64_t req_int(const YAML::Node& n, const std::string& key, const std::string& where) {
  HERD_CHECK(n && n.IsMap() && n[key] && n[key].IsScalar(), where, ": reference config has no \"",
             key, "\"");
  try {
    return n[key].as<int64_t>();
  } catch (const YAML::Exception&) {
    throw Error(str(where, ": reference config \"", key, "\": expected an integer"));
  }
}
template <typename T>
T opt(const YAML::Node& n, const std::string& key, T def) {
  if (!n || !n.IsMap() || !n[key] || n[key].IsNull()) return def;
  try {
    return n[key].as<T>();
  } catch (const YAML::Exception&) {
    throw Error(str("reference config \"", key, "\": unexpected value ", YAML::Dump(n[key])));
  }
}

// The reference adapter's name map (reference name -> herd name inside the block).
std::map<std::string, std::string> adapter_names(const std::string& block, const YAML::Node& config,
                                                 const std::string& variant) {
  return find_reference(block).build(config, variant).name_map;
}

// A safari layer config as the HyenaOperator / H3 constructor sees it: `_name_` names the
// class and the Pile config's `local_order` is swallowed by **kwargs.
YAML::Node constructor_args(const YAML::Node& layer, int64_t d_model, int64_t l_max) {
  YAML::Node args(YAML::NodeType::Map);
  for (const auto& kv : layer) {
    const std::string k = kv.first.Scalar();
    if (k == "_name_" || k == "local_order") continue;
    args[k] = YAML::Clone(kv.second);
  }
  args["d_model"] = d_model;
  if (!args["l_max"] || args["l_max"].IsNull()) args["l_max"] = l_max;
  return args;
}

// ---- safari ConvLMHeadModel ----

// The herd config of ConvLMHeadModel arguments; the block adapters validate the layer options.
YAML::Node safari_config(const YAML::Node& ref0, const std::string& where) {
  const YAML::Node ref = unwrap_model_config(ref0, "d_model");
  HERD_CHECK(ref && ref.IsMap(), where, ": no safari model config (ConvLMHeadModel arguments)");
  const std::string name = opt<std::string>(ref, "_name_", "lm");
  HERD_CHECK(name == "lm", where, ": safari model \"", name,
             "\" is not ConvLMHeadModel (_name_: lm); herd imports the LM only");
  const int64_t d = req_int(ref, "d_model", where), n_layer = req_int(ref, "n_layer", where);
  int64_t vocab = req_int(ref, "vocab_size", where);
  const int64_t multiple = opt<int64_t>(ref, "pad_vocab_size_multiple", 1);
  if (vocab % multiple != 0) vocab += multiple - vocab % multiple;  // as ConvLMHeadModel does
  const int64_t d_inner = opt<int64_t>(ref, "d_inner", 4 * d);
  HERD_CHECK(d_inner % d == 0, where, ": d_inner ", d_inner, " is not a multiple of d_model ", d,
             " (herd's mlp_ratio is an integer)");
  const int64_t positions = opt<int64_t>(ref, "max_position_embeddings", 0);
  const YAML::Node layer = ref["layer"];
  HERD_CHECK(layer && layer.IsMap() && layer["_name_"], where,
             ": reference config has no layer._name_");
  const std::string mixer = layer["_name_"].as<std::string>();
  HERD_CHECK(mixer == "hyena" || mixer == "h3", where, ": safari layer \"", mixer,
             "\" is not supported (expected hyena or h3)");
  YAML::Node dataset = ref0["dataset"];
  int64_t l_max = opt<int64_t>(layer, "l_max", 0);
  if (l_max <= 0 && dataset && dataset.IsMap()) l_max = opt<int64_t>(dataset, "max_length", 0);
  if (l_max <= 0) l_max = positions > 0 ? positions : 2048;

  YAML::Node m(YAML::NodeType::Map);
  m["stack"] = "gpt";
  m["vocab_size"] = vocab;
  m["d_model"] = d;
  m["n_layer"] = n_layer;
  const YAML::Node attn = ref["attn_cfg"];
  const int64_t heads = attn && attn.IsMap() ? opt<int64_t>(attn, "num_heads", 1) : 1;
  m["n_head"] = heads;
  m["max_seq_len"] = l_max;
  m["positional"] = positions > 0 ? "learned" : "none";
  m["mlp"] = "gelu_tanh";  // FusedMLP / Mlp with gelu approximate="tanh"
  m["mlp_ratio"] = d_inner / d;
  m["norm_eps"] = opt<double>(ref, "layer_norm_epsilon", 1e-5);
  m["tie_embeddings"] = true;
  const YAML::Node args = constructor_args(layer, d, l_max);
  YAML::Node mx(YAML::NodeType::Map);
  mx["type"] = mixer;
  if (mixer == "hyena") {
    mx["order"] = opt<int64_t>(args, "order", 2);
    mx["filter_order"] = opt<int64_t>(args, "filter_order", 64);
    mx["emb_dim"] = opt<int64_t>(args, "emb_dim", 3);
    mx["w"] = opt<double>(args, "w", 1.0);
    mx["short_filter_order"] = opt<int64_t>(args, "short_filter_order", 3);
    mx["num_inner_mlps"] = opt<int64_t>(args, "num_inner_mlps", 2);
    mx["modulate"] = opt<bool>(args, "modulate", true);
  } else {
    mx["d_state"] = opt<int64_t>(args, "d_state", 64);
    mx["head_dim"] = opt<int64_t>(args, "head_dim", 1);
  }
  m["mixer"] = mx;
  adapter_names(mixer, args, "");  // rejects options herd does not model
  std::set<int64_t> attn_layers;
  if (ref["attn_layer_idx"] && ref["attn_layer_idx"].IsSequence())
    for (const auto& i : ref["attn_layer_idx"]) attn_layers.insert(i.as<int64_t>());
  if (!attn_layers.empty()) {
    HERD_CHECK(opt<int64_t>(attn, "rotary_emb_dim", 0) == 0, where,
               ": attn_cfg.rotary_emb_dim is not supported (herd's attention has no rotary)");
    YAML::Node at(YAML::NodeType::Sequence);
    for (int64_t i : attn_layers) {
      HERD_CHECK(i >= 0 && i < n_layer, where, ": attn_layer_idx ", i, " out of range");
      at.push_back(i);
    }
    YAML::Node entry, amx;
    amx["type"] = "attention";
    entry["at"] = at;
    entry["mixer"] = amx;
    m["layers"].push_back(entry);
  }
  YAML::Node root;
  root["model"] = m;
  return root;
}

// ---- m2 BertForMaskedLM ----

// The herd config of an M2 BertConfig (config.json).
YAML::Node m2_config(const YAML::Node& ref0, const std::string& where) {
  const YAML::Node ref = unwrap_model_config(ref0, "hidden_size");
  HERD_CHECK(ref && ref.IsMap(), where, ": no m2 BertConfig (config.json)");
  auto need = [&](const char* key, bool want) {
    HERD_CHECK(opt<bool>(ref, key, !want) == want, where, ": ", key, " must be ",
               want ? "true" : "false", " (herd models M2-BERT as in the pretraining yamls)");
  };
  need("monarch_mixer_sequence_mixing", true);
  need("use_glu_mlp", true);
  need("use_monarch_mlp", true);
  need("hyena_training_additions", false);
  const std::string act = opt<std::string>(ref, "hidden_act", "gelu");
  HERD_CHECK(act == "gelu", where, ": hidden_act \"", act, "\" (herd's M2-BERT uses gelu)");
  const int64_t d = req_int(ref, "hidden_size", where);
  const int64_t inter = req_int(ref, "intermediate_size", where);
  HERD_CHECK(inter % d == 0, where, ": intermediate_size ", inter, " is not a multiple of ", d);
  const int64_t positions = req_int(ref, "max_position_embeddings", where);
  const int64_t l_max = opt<int64_t>(ref, "long_conv_l_max", positions);
  HERD_CHECK(l_max == positions, where, ": long_conv_l_max ", l_max,
             " differs from max_position_embeddings ", positions, " (herd uses one length)");
  YAML::Node m(YAML::NodeType::Map);
  m["stack"] = "bert";
  m["vocab_size"] = req_int(ref, "vocab_size", where);
  m["d_model"] = d;
  m["n_layer"] = req_int(ref, "num_hidden_layers", where);
  m["n_head"] = opt<int64_t>(ref, "num_attention_heads", 1);
  m["max_seq_len"] = positions;
  m["positional"] = opt<bool>(ref, "use_positional_encodings", true) ? "learned" : "none";
  m["type_vocab_size"] = opt<int64_t>(ref, "type_vocab_size", 2);
  // BertEmbeddings' nn.Embedding(padding_idx=pad_token_id): HF's default 0, null for none.
  m["padding_idx"] = ref["pad_token_id"] && ref["pad_token_id"].IsNull()
                         ? int64_t{-1}
                         : opt<int64_t>(ref, "pad_token_id", 0);
  m["norm"] = "post";
  m["mixer_residual"] = false;
  m["mlp"] = "m2_glu";
  m["mlp_ratio"] = inter / d;
  m["mlp_nblocks"] = opt<int64_t>(ref, "monarch_mlp_nblocks", 4);
  m["norm_eps"] = opt<double>(ref, "layer_norm_eps", 1e-12);
  m["init_std"] = opt<double>(ref, "initializer_range", 0.02);
  m["tie_embeddings"] = true;
  m["num_classes"] = 0;
  YAML::Node mx(YAML::NodeType::Map);
  mx["type"] = "m2";
  mx["bidirectional"] = opt<bool>(ref, "bidirectional", true);
  mx["filter_order"] = opt<int64_t>(ref, "hyena_filter_order", 64);
  mx["emb_dim"] = opt<int64_t>(ref, "hyena_emb_dim", 5);
  mx["w"] = opt<double>(ref, "hyena_w", 10.0);
  mx["w_mod"] = opt<double>(ref, "hyena_w_mod", 1.0);
  mx["residual_long_conv"] = opt<bool>(ref, "residual_long_conv", false);
  m["mixer"] = mx;
  YAML::Node a(YAML::NodeType::Map);
  a["d_model"] = d;
  a["l_max"] = l_max;
  a["bidirectional"] = mx["bidirectional"].as<bool>();
  a["hyena_filter_order"] = mx["filter_order"].as<int64_t>();
  a["hyena_emb_dim"] = mx["emb_dim"].as<int64_t>();
  a["hyena_w"] = mx["w"].as<double>();
  a["hyena_w_mod"] = mx["w_mod"].as<double>();
  a["residual_long_conv"] = mx["residual_long_conv"].as<bool>();
  adapter_names("m2_sequence_mixer", a, "");  // rejects options herd does not model
  YAML::Node root;
  root["model"] = m;
  return root;
}

// Adds "<ref_prefix><r>" -> "<herd_prefix><h>" for every entry of a block map.
void add_block(std::map<std::string, std::string>& herd_to_ref,
               const std::map<std::string, std::string>& block, const std::string& ref_prefix,
               const std::string& herd_prefix) {
  for (const auto& [r, h] : block) herd_to_ref[herd_prefix + h] = ref_prefix + r;
}

// Aliases the reference state dict holds besides the canonical key: key -> canonical key.
std::string alias_of(RefSource source, const std::string& key) {
  static const std::regex sin(R"((.*\.implicit_filter)(_rev)?\.(\d+)\.freq)");
  std::smatch m;
  if (std::regex_match(key, m, sin)) {
    const std::string canonical = m[1].str() + ".1.freq";
    return canonical == key ? "" : canonical;
  }
  if (source == RefSource::Safari && key == "lm_head.weight")
    return "backbone.embeddings.word_embeddings.weight";
  if (source == RefSource::M2 && key == "cls.predictions.decoder.weight")
    return "bert.embeddings.word_embeddings.weight";
  return "";
}

}  // namespace

RefSource parse_ref_source(const std::string& name) {
  if (name == "safari") return RefSource::Safari;
  if (name == "m2") return RefSource::M2;
  if (name == "herd") return RefSource::Herd;
  throw Error(str("--from ", name, ": expected safari|m2|herd"));
}

ReferenceCheckpoint read_reference_checkpoint(RefSource source, const std::string& path) {
  ReferenceCheckpoint out;
  if (source == RefSource::Herd) {
    const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
    out.tensors = io::read_safetensors((dir / "model.safetensors").string()).tensors;
    HERD_CHECK(fs::is_regular_file(dir / "config.json"), (dir / "config.json").string(),
               ": missing (a herd export has model.safetensors and config.json)");
    out.model_config = load_json_or_yaml((dir / "config.json").string());
    return out;
  }
  HERD_CHECK(fs::is_regular_file(path), path, ": no such file");
  if (ends_with(path, ".safetensors")) {
    out.tensors = strip_model_prefix(io::read_safetensors(path).tensors);
  } else {
    const PyRef root = read_torch_file(path);
    HERD_CHECK(root->kind == PyValue::Kind::Dict, path, ": expected a dict at the top level");
    if (auto sd = root->get("state_dict")) {  // Lightning
      out.tensors = strip_model_prefix(tensors_of(sd, path + " state_dict"));
      if (auto hp = root->get("hyper_parameters")) out.model_config = to_yaml_node(hp);
    } else if (auto state = root->get("state"); state && state->get("model")) {  // composer
      out.tensors = strip_model_prefix(tensors_of(state->get("model"), path + " state.model"));
    } else {
      out.tensors = tensors_of(root, path);
    }
  }
  HERD_CHECK(!out.tensors.empty(), path, ": no tensors found");
  // A default YAML::Node is defined (null): test IsNull, not truthiness.
  if (source == RefSource::M2 && (!out.model_config || out.model_config.IsNull())) {
    const fs::path cj = fs::path(path).parent_path() / "config.json";
    if (fs::is_regular_file(cj)) out.model_config = load_json_or_yaml(cj.string());
  }
  return out;
}

YAML::Node herd_config_from_reference(RefSource source, const YAML::Node& reference,
                                      const std::string& where) {
  if (source == RefSource::Safari) return safari_config(reference, where);
  if (source == RefSource::M2) return m2_config(reference, where);
  return YAML::Clone(reference);
}

std::map<std::string, std::string> reference_names(RefSource source, const ModelConfig& cfg,
                                                   torch::nn::Module& model) {
  std::map<std::string, std::string> herd_to_ref;
  if (source == RefSource::Herd) {
    for (const auto& kv : model.named_parameters()) herd_to_ref[kv.key()] = kv.key();
    for (const auto& kv : model.named_buffers()) herd_to_ref[kv.key()] = kv.key();
    return herd_to_ref;
  }
  const auto ln = [&](const std::string& r, const std::string& h) {
    herd_to_ref[h + ".weight"] = r + ".weight";
    herd_to_ref[h + ".bias"] = r + ".bias";
  };
  // Each layer's mixer map comes from its block adapter, built from the layer's options.
  auto layer_map = [&](int64_t i) {
    const MixerSpec& spec = cfg.layers[i];
    YAML::Node o = YAML::Clone(spec.options.node());
    if (spec.type == "attention") {
      YAML::Node a;
      a["embed_dim"] = cfg.d_model;
      a["num_heads"] = o["n_head"] ? o["n_head"].as<int64_t>() : cfg.n_head;
      auto m = adapter_names("attention", a, "causal");
      std::map<std::string, std::string> out;
      for (const auto& [r, h] : m)
        out[r == "in_proj_weight" ? "Wqkv.weight" : r == "in_proj_bias" ? "Wqkv.bias" : r] = h;
      return out;
    }
    if (spec.type == "m2") {
      YAML::Node a;
      a["d_model"] = cfg.d_model;
      a["l_max"] = cfg.max_seq_len;
      a["bidirectional"] = o["bidirectional"] ? o["bidirectional"].as<bool>() : cfg.stack != "gpt";
      a["residual_long_conv"] =
          o["residual_long_conv"] ? o["residual_long_conv"].as<bool>() : false;
      if (o["filter_order"]) a["hyena_filter_order"] = o["filter_order"];
      if (o["emb_dim"]) a["hyena_emb_dim"] = o["emb_dim"];
      return adapter_names("m2_sequence_mixer", a, "");
    }
    HERD_CHECK(spec.type == "hyena" || spec.type == "h3", "import: layer ", i, " mixer ", spec.type,
               " has no reference layout");
    YAML::Node a(YAML::NodeType::Map);
    for (const auto& kv : o) {
      const std::string k = kv.first.Scalar();
      // Optimizer settings do not change the weights' layout; the adapters do not take them.
      if (k == "filter_lr" || k == "filter_wd" || k == "ssm_lr") continue;
      a[k] = kv.second;
    }
    a["d_model"] = cfg.d_model;
    a["l_max"] = cfg.max_seq_len;
    return adapter_names(spec.type, a, "");
  };
  if (source == RefSource::Safari) {
    HERD_CHECK(cfg.stack == "gpt", "import --from safari: model.stack must be gpt, got ",
               cfg.stack);
    herd_to_ref["wte.weight"] = "backbone.embeddings.word_embeddings.weight";
    if (cfg.positional == "learned")
      herd_to_ref["wpe.weight"] = "backbone.embeddings.position_embeddings.weight";
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
      const std::string r = str("backbone.layers.", i, "."), h = str("h.", i, ".");
      ln(r + "norm1", h + "ln_1");
      ln(r + "norm2", h + "ln_2");
      ln(r + "mlp.fc1", h + "mlp.fc1");
      ln(r + "mlp.fc2", h + "mlp.fc2");
      add_block(herd_to_ref, layer_map(i), r + "mixer.", h + "mixer.");
    }
    ln("backbone.ln_f", "ln_f");
  } else {
    HERD_CHECK(cfg.stack == "bert" && cfg.num_classes == 0,
               "import --from m2: model.stack must be bert with the MLM head");
    herd_to_ref["wte.weight"] = "bert.embeddings.word_embeddings.weight";
    if (cfg.positional == "learned")
      herd_to_ref["wpe.weight"] = "bert.embeddings.position_embeddings.weight";
    if (cfg.type_vocab_size > 0)
      herd_to_ref["token_type_emb.weight"] = "bert.embeddings.token_type_embeddings.weight";
    ln("bert.embeddings.LayerNorm", "ln_emb");
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
      const std::string r = str("bert.encoder.layer.", i, "."), h = str("h.", i, ".");
      add_block(herd_to_ref, layer_map(i), r + "attention.", h + "mixer.");
      herd_to_ref[h + "mlp.gated_layers.weight"] = r + "mlp.gated_layers.weight";
      ln(r + "mlp.wo", h + "mlp.wo");
      ln(r + "mlp.layernorm", h + "ln_2");
    }
    ln("cls.predictions.transform.dense", "mlm_head.dense");
    ln("cls.predictions.transform.LayerNorm", "mlm_head.ln");
    herd_to_ref["mlm_head.bias"] = "cls.predictions.decoder.bias";
  }
  // Only names the model really has (e.g. an attention layer without biases).
  std::map<std::string, std::string> out;
  for (const auto& kv : model.named_parameters())
    out[kv.key()] = herd_to_ref.count(kv.key()) ? herd_to_ref[kv.key()] : "";
  for (const auto& kv : model.named_buffers())
    out[kv.key()] = herd_to_ref.count(kv.key()) ? herd_to_ref[kv.key()] : "";
  return out;
}

void load_reference_weights(RefSource source, const ReferenceCheckpoint& ref,
                            const ModelConfig& cfg, torch::nn::Module& model,
                            const std::string& where) {
  const auto names = reference_names(source, cfg, model);
  std::map<std::string, torch::Tensor> herd_tensors;
  for (const auto& kv : model.named_parameters()) herd_tensors[kv.key()] = kv.value();
  for (const auto& kv : model.named_buffers()) herd_tensors[kv.key()] = kv.value();
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [h, r] : names) {
    HERD_CHECK(!r.empty(), where, ": herd tensor ", h, " has no reference counterpart");
    auto it = ref.tensors.find(r);
    HERD_CHECK(it != ref.tensors.end(), where, ": missing tensor ", r, " (herd ", h, ")");
    const auto& dst = herd_tensors.at(h);
    HERD_CHECK(it->second.sizes() == dst.sizes(), where, ": tensor ", r, " has shape ",
               it->second.sizes(), ", herd's ", h, " expects ", dst.sizes());
    copies.emplace_back(dst, it->second);
    used.insert(r);
  }
  for (const auto& [k, t] : ref.tensors) {
    if (used.count(k)) continue;
    if (source == RefSource::M2 && k == "bert.embeddings.position_ids") {
      HERD_CHECK(t.numel() >= cfg.max_seq_len && t.flatten()
                                                     .slice(0, 0, cfg.max_seq_len)
                                                     .to(torch::kInt64)
                                                     .equal(torch::arange(cfg.max_seq_len)),
                 where, ": tensor ", k, " is not 0, 1, 2, ... (herd's positions are)");
      continue;
    }
    const std::string canonical = alias_of(source, k);
    HERD_CHECK(!canonical.empty(), where, ": unknown tensor ", k, " ", t.sizes(),
               " (not part of herd's ", cfg.stack, " model)");
    auto c = ref.tensors.find(canonical);
    HERD_CHECK(c != ref.tensors.end() && used.count(canonical), where, ": tensor ", k,
               " is an alias of ", canonical, ", which is missing");
    HERD_CHECK(c->second.sizes() == t.sizes() && c->second.equal(t), where, ": tensor ", k,
               " differs from ", canonical, " (herd ties them)");
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.dtype()));
}

ImportResult import_checkpoint(const ImportRequest& req) {
  const ReferenceCheckpoint ref = read_reference_checkpoint(req.source, req.checkpoint);
  YAML::Node root;
  std::string source_name;
  std::vector<RecipeValue> recipe;
  if (!req.herd_config.empty()) {
    root = cfg::load_yaml_file(req.herd_config);
    source_name = req.herd_config;
  } else {
    YAML::Node rc = ref.model_config;
    source_name = req.checkpoint;
    if (!req.reference_config.empty()) {
      rc = load_json_or_yaml(req.reference_config);
      source_name = req.reference_config;
    }
    HERD_CHECK(rc && !rc.IsNull(), req.checkpoint,
               ": the file holds no model hyper-parameters; pass --config (a herd YAML) or "
               "--reference-config (safari's model config / m2's config.json)");
    root = herd_config_from_reference(req.source, rc, source_name);
    std::string where = source_name;
    if (req.reference_config.empty() && req.source == RefSource::Safari)
      where += " hyper_parameters";
    else if (req.reference_config.empty() && req.source == RefSource::M2)
      where = (fs::path(req.checkpoint).parent_path() / "config.json").string();
    recipe = add_import_recipe(req.source, rc, root, where);
  }
  Config config = parse_config(root, source_name);
  auto model = build_model(config.model);
  load_reference_weights(req.source, ref, config.model, *model, req.checkpoint);

  // ckpt::save writes checkpoints_dir/step_00000000; it is moved to exactly `out`.
  const fs::path out = fs::absolute(req.out);
  HERD_CHECK(!fs::exists(out) || fs::is_empty(out), req.out, ": exists and is not empty");
  const fs::path staging =
      out.parent_path() / str(".", out.filename().string(), ".import-", ::getpid());
  fs::remove_all(staging);
  SaveRequest s;
  s.checkpoints_dir = staging.string();
  s.model = model.get();
  s.config = config.resolved.node();
  s.tokenizer_path = req.tokenizer;
  s.keep_last = 1;
  const std::string written = save(s);
  if (fs::exists(out)) fs::remove(out);
  fs::rename(written, out);
  fs::remove_all(staging);
  return {out.string(), config, recipe};
}

}  // namespace herd::ckpt
