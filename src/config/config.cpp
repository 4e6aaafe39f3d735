#include "config/config.h"

#include <algorithm>
#include <map>

#include "config/node.h"
#include "config/schema.h"
#include "data/synthetic/spec.h"

namespace herd {
namespace {

std::string origin_of(const YAML::Node& node, const std::string& file, const std::string& path) {
  if (node.IsDefined() && !node.Mark().is_null())
    return str(file, ":", node.Mark().line + 1, " ", path);
  return str(file, " ", path);
}

// A mixer mapping: `type` plus the block's own options (checked when the block is built).
MixerSpec parse_mixer(cfg::ConfigMap& parent, const std::string& key, const MixerSpec& def) {
  if (!parent.has(key)) {
    parent.raw(key);
    return def;
  }
  YAML::Node node = parent.raw(key);
  const std::string path = parent.path().empty() ? key : parent.path() + "." + key;
  MixerSpec spec;
  spec.origin = origin_of(node, parent.file(), path);
  if (node.IsScalar()) {  // shorthand: `mixer: hyena`
    spec.type = node.Scalar();
    spec.options = YAML::Node(YAML::NodeType::Map);
    return spec;
  }
  cfg::ConfigMap map(node, parent.file(), path);
  spec.type = map.require_string("type");
  spec.options = YAML::Node(YAML::NodeType::Map);
  for (const auto& kv : node)
    if (kv.first.Scalar() != "type") spec.options[kv.first.Scalar()] = kv.second;
  return spec;
}

// Stack rules the key table cannot say: bert's default norm, vit's derived length.
void check_stack(cfg::ConfigMap& m, ModelConfig& c) {
  const bool bert = c.stack == "bert", vit = c.stack == "vit";
  if (bert && !m.has("norm")) c.norm = "post";
  if (!vit) return;
  if (c.vocab_size != 0) m.fail("vocab_size", "a vit stack has no vocabulary; remove the key");
  if (!m.has("num_classes")) m.fail("num_classes", "required for stack: vit (e.g. 10)");
  if (c.num_classes < 1)
    m.fail("num_classes", str("expected positive integer, got ", c.num_classes));
  if (c.image_size % c.patch_size != 0)
    m.fail("patch_size", str("must divide image_size ", c.image_size, ", got ", c.patch_size));
  const int64_t side = c.image_size / c.patch_size;
  const int64_t tokens = side * side + (c.pool == "cls" ? 1 : 0);
  if (m.has("max_seq_len") && c.max_seq_len != tokens)
    m.fail("max_seq_len", str("is derived for vit: (image_size / patch_size)^2",
                              c.pool == "cls" ? " + 1 (class token)" : "", " = ", tokens,
                              "; remove the key, got ", c.max_seq_len));
  c.max_seq_len = tokens;
}

// The structured model keys: mixer and the hybrid layer plan.
void parse_model(cfg::ConfigMap& m, ModelConfig& c) {
  // Like M2's BlockdiagLinear, a d_model that is not a multiple is zero-padded per block.
  if (c.mlp == "m2_glu" && c.mlp_nblocks > c.d_model)
    m.fail("mlp_nblocks", str("must be at most d_model ", c.d_model, ", got ", c.mlp_nblocks));
  c.mixer = parse_mixer(m, "mixer", c.mixer);
  if (c.mixer.origin.empty()) c.mixer.origin = str(m.file(), " ", m.path(), ".mixer");
  c.layers.assign(c.n_layer, c.mixer);
  // Hybrid stacks: `layers: [{at: [1, 5], mixer: {type: attention}}]` overrides chosen layers.
  for (auto& item : m.child_list("layers")) {
    auto at = item.get_int_list("at", {});
    if (at.empty()) item.fail("at", "expected a non-empty list of 0-based layer indices");
    MixerSpec spec = parse_mixer(item, "mixer", c.mixer);
    if (!item.has("mixer")) item.fail("mixer", "required mapping is missing");
    for (int64_t i : at) {
      if (i < 0 || i >= c.n_layer)
        item.fail("at", str("layer index ", i, " out of range [0, ", c.n_layer, ")"));
      c.layers[i] = spec;
    }
    item.finish();
  }
  check_stack(m, c);
  if (c.positional == "learned" && c.max_seq_len <= 0) m.fail("max_seq_len", "must be positive");
}

// `mix: [{dir: a, weight: 0.7}, {dir: b, weight: 0.3}]` blends datasets instead of `dir`.
void parse_data(cfg::ConfigMap& m, cfg::ConfigMap& augment, DataConfig& c) {
  if (m.has("mix")) {
    c.mix.clear();
    for (auto& item : m.child_list("mix")) {
      DataSource src;
      src.dir = item.require_string("dir");
      if (src.dir.empty()) item.fail("dir", "empty path (expected a prepared dataset directory)");
      if (!item.has("weight")) item.fail("weight", "required number > 0 is missing");
      src.weight = item.get_double("weight", 0.0);
      if (!(src.weight > 0)) item.fail("weight", str("must be > 0, got ", src.weight));
      for (const auto& other : c.mix)
        if (other.dir == src.dir)
          item.fail("dir", str("\"", src.dir, "\" is listed twice (merge the weights)"));
      item.finish();
      c.mix.push_back(src);
    }
    if (c.mix.empty()) m.fail("mix", "empty list (expected at least one {dir, weight})");
    if (!c.dir.empty()) m.fail("mix", "data.dir and data.mix are exclusive (use one of them)");
  } else {
    m.raw("mix");
  }
  if (c.augment.min_scale > c.augment.max_scale)
    augment.fail("min_scale", "expected 0 < min_scale <= max_scale <= 1");
}

// passkey's `depth: 0.5` or `depth: [0, 0.5, 1]`.
void parse_depths(cfg::ConfigMap& m, SyntheticConfig& s) {
  if (!m.has("depth")) {
    m.raw("depth");
    return;
  }
  const YAML::Node node = m.raw("depth");
  const char* form = "expected a number or a list of numbers in [0, 1], e.g. [0, 0.5, 1]";
  s.depths.clear();
  try {
    if (node.IsScalar()) s.depths.push_back(node.as<double>());
    if (node.IsSequence())
      for (const auto& d : node) s.depths.push_back(d.as<double>());
  } catch (const YAML::Exception&) {
    m.fail("depth", form);
  }
  if (s.depths.empty()) m.fail("depth", form);
}

// data.synthetic: exclusive with files; checked per task (data/synthetic/spec.h); it sets the
// rows' length (data.seq_len, and model.max_seq_len unless given) and the vocabulary (unless
// given).
void parse_synthetic(cfg::ConfigMap& data_map, cfg::ConfigMap& synth_map, cfg::ConfigMap& model,
                     Config& c) {
  namespace syn_spec = ::herd::data::synthetic;
  auto& s = c.data.synthetic;
  parse_depths(synth_map, s);
  if (!s.enabled()) return;
  if (!c.data.dir.empty())
    data_map.fail("dir", "data.dir and data.synthetic are exclusive (use one of them)");
  if (!c.data.mix.empty())
    data_map.fail("mix", "data.mix and data.synthetic are exclusive (use one of them)");
  if (auto p = syn_spec::check_spec(s)) synth_map.fail(p->key, p->message);
  s.loss = syn_spec::effective_loss(s);
  const int64_t rows = syn_spec::row_len(s);
  if (data_map.has("seq_len") && c.data.seq_len != rows)
    data_map.fail("seq_len", str("data.synthetic sets it (", s.task, " rows of ", rows,
                                 " tokens); remove the key, got ", c.data.seq_len));
  c.data.seq_len = rows;
  if (!model.has("max_seq_len"))
    c.model.max_seq_len = rows;
  else if (c.model.max_seq_len < rows)
    model.fail(
        "max_seq_len",
        str("shorter than the ", rows, "-token rows of data.synthetic (", s.task, ", seq_len ",
            s.seq_len, "); remove the key or set at least ", rows, ", got ", c.model.max_seq_len));
  if (c.model.vocab_size == 0)
    c.model.vocab_size = s.vocab_size;
  else if (c.model.vocab_size < s.vocab_size)
    model.fail("vocab_size",
               str("smaller than data.synthetic.vocab_size ", s.vocab_size,
                   "; remove the key or set at least that, got ", c.model.vocab_size));
}

void parse_betas(cfg::ConfigMap& m, OptimizerConfig& c) {
  if (!m.has("betas")) {
    m.raw("betas");
    return;
  }
  YAML::Node betas = m.raw("betas");
  if (!betas.IsSequence() || betas.size() != 2)
    m.fail("betas", "expected a list of two numbers in [0, 1), e.g. [0.9, 0.95]");
  try {
    c.beta1 = betas[0].as<double>();
    c.beta2 = betas[1].as<double>();
  } catch (const YAML::Exception&) {
    m.fail("betas", "expected a list of two numbers in [0, 1), e.g. [0.9, 0.95]");
  }
  if (c.beta1 < 0 || c.beta1 >= 1 || c.beta2 < 0 || c.beta2 >= 1)
    m.fail("betas", "expected a list of two numbers in [0, 1)");
}

// `groups: {filter: {lr: 6.0e-4, weight_decay: 0.0}, decay: {weight_decay: 0.01}}`.
void parse_groups(cfg::ConfigMap& m, OptimizerConfig& c) {
  if (!m.has("groups")) {
    m.raw("groups");
    return;
  }
  const YAML::Node g = m.raw("groups");
  const char* form = "expected a mapping group -> {lr, weight_decay}, e.g. {filter: {lr: 6.0e-4}}";
  if (!g.IsMap()) m.fail("groups", form);
  auto groups = m.child("groups");
  for (const auto& entry : g) {
    const auto name = entry.first.as<std::string>();
    if (!entry.second.IsMap()) groups.fail(name, form);
    auto e = groups.child(name);
    OptimizerConfig::GroupOverride o;
    if (e.has("lr")) o.lr = e.get_double("lr", 0.0, 0.0, 10.0);
    if (e.has("weight_decay")) o.weight_decay = e.get_double("weight_decay", 0.0, 0.0, 10.0);
    e.finish();
    c.groups[name] = o;
  }
  groups.finish();
}

// `no_decay: [bias, norm]` (kinds of untagged parameters kept out of weight decay) and
// `sources: {optimizer.lr: "...", ...}` (herd import's notes).
void parse_decay_rule(cfg::ConfigMap& m, OptimizerConfig& c) {
  static const std::vector<std::string> kinds{"vector", "bias", "norm", "embedding"};
  if (m.has("no_decay")) {
    const YAML::Node n = m.raw("no_decay");
    const char* form = "expected a list of vector|bias|norm|embedding, e.g. [bias, norm]";
    if (!n.IsSequence()) m.fail("no_decay", form);
    c.no_decay.clear();
    for (const auto& item : n) {
      const std::string k = item.IsScalar() ? item.Scalar() : "";
      if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) m.fail("no_decay", form);
      c.no_decay.push_back(k);
    }
  } else {
    m.raw("no_decay");
  }
  if (m.has("sources")) {
    const YAML::Node n = m.raw("sources");
    if (!n.IsMap()) m.fail("sources", "expected a mapping config key -> text");
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) m.fail("sources", "expected a mapping config key -> text");
      c.sources[kv.first.Scalar()] = kv.second.Scalar();
    }
  } else {
    m.raw("sources");
  }
}

YAML::Node mixer_node(const MixerSpec& spec) {
  YAML::Node n(YAML::NodeType::Map);
  n["type"] = spec.type;
  for (const auto& kv : spec.options.node()) n[kv.first.Scalar()] = kv.second;
  return n;
}

// The structured keys' resolved form (the key table dumps the scalars).
void dump_structured(const std::string& path, const Config& c, YAML::Node& section) {
  const auto& m = c.model;
  if (path == "model.mixer") section["mixer"] = mixer_node(m.mixer);
  if (path == "model.layers") {
    YAML::Node layers(YAML::NodeType::Sequence);
    for (int64_t i = 0; i < m.n_layer; ++i) {
      if (m.layers[i].type == m.mixer.type &&
          YAML::Dump(m.layers[i].options) == YAML::Dump(m.mixer.options))
        continue;
      YAML::Node item;
      item["at"].push_back(i);
      item["mixer"] = mixer_node(m.layers[i]);
      layers.push_back(item);
    }
    if (layers.size() > 0) section["layers"] = layers;
  }
  // Only with a mix, so the resolved configs of single-dataset runs keep their keys.
  if (path == "data.mix")
    for (const auto& src : c.data.mix) {
      YAML::Node item;
      item["dir"] = src.dir;
      item["weight"] = src.weight;
      section["mix"].push_back(item);
    }
  if (path == "data.synthetic.depth") {
    const auto& d = c.data.synthetic.depths;
    if (d.size() == 1) section["depth"] = d.front();
    for (size_t i = 0; d.size() > 1 && i < d.size(); ++i) section["depth"].push_back(d[i]);
  }
  if (path == "optimizer.groups")
    for (const auto& [name, o] : c.optimizer.groups) {
      if (o.lr) section["groups"][name]["lr"] = *o.lr;
      if (o.weight_decay) section["groups"][name]["weight_decay"] = *o.weight_decay;
    }
  if (path == "optimizer.no_decay") {
    section["no_decay"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& k : c.optimizer.no_decay) section["no_decay"].push_back(k);
    section["no_decay"].SetStyle(YAML::EmitterStyle::Flow);
  }
  if (path == "optimizer.sources" && !c.optimizer.sources.empty())
    for (const auto& [key, text] : c.optimizer.sources) section["sources"][key] = text;
  if (path == "optimizer.betas") {
    section["betas"].push_back(c.optimizer.beta1);
    section["betas"].push_back(c.optimizer.beta2);
  }
}

YAML::Node section_node(YAML::Node& root, const std::string& section) {
  const auto dot = section.find('.');
  if (dot == std::string::npos) return root[section];
  return root[section.substr(0, dot)][section.substr(dot + 1)];
}

// Every effective value, defaults included, in the key table's order. Keys that do not apply
// (another stack, another MLP, another task) are left out, so checkpoints keep the keys they had.
YAML::Node resolve(const Config& c) {
  YAML::Node r;
  for (const auto& k : cfg::config_keys()) {
    if (!cfg::dumped(k, c)) continue;
    YAML::Node section = section_node(r, k.section);
    if (std::holds_alternative<std::monostate>(k.field))
      dump_structured(k.path(), c, section);
    else
      cfg::dump_key(k, c, section);
  }
  r["data"]["seq_len"] = c.seq_len();
  r["train"]["micro_batch_size"] = c.micro_batch();
  return r;
}

}  // namespace

Config parse_config(YAML::Node root, const std::string& source) {
  Config c;
  c.source = source;
  cfg::ConfigMap top(root, source, "");
  std::map<std::string, cfg::ConfigMap> maps;  // one per section, nested ones from their parent
  for (const auto& s : cfg::config_sections()) {
    const auto dot = s.find('.');
    maps.emplace(s, dot == std::string::npos ? top.child(s)
                                             : maps.at(s.substr(0, dot)).child(s.substr(dot + 1)));
  }
  for (const auto& k : cfg::config_keys()) cfg::read_key(maps.at(k.section), k, c);
  parse_model(maps.at("model"), c.model);
  parse_data(maps.at("data"), maps.at("data.augment"), c.data);
  parse_synthetic(maps.at("data"), maps.at("data.synthetic"), maps.at("model"), c);
  parse_betas(maps.at("optimizer"), c.optimizer);
  parse_groups(maps.at("optimizer"), c.optimizer);
  parse_decay_rule(maps.at("optimizer"), c.optimizer);
  if (c.task.type == "classify" && c.task.train_file.empty())
    maps.at("task").fail("train_file", "required for task.type classify (labelled jsonl)");
  if (c.train.micro_batch_size > 0 && c.train.batch_size % c.train.micro_batch_size != 0)
    maps.at("train").fail("micro_batch_size",
                          str("must divide train.batch_size ", c.train.batch_size, ", got ",
                              c.train.micro_batch_size));
  for (const auto& k : cfg::config_keys()) cfg::check_applies(k, maps.at(k.section), c);
  for (auto it = cfg::config_sections().rbegin(); it != cfg::config_sections().rend(); ++it)
    maps.at(*it).finish();
  top.finish();
  if (c.seq_len() > c.model.max_seq_len)
    throw Error(str(source, " data.seq_len: ", c.seq_len(), " exceeds model.max_seq_len ",
                    c.model.max_seq_len));
  if (c.micro_batch() > c.train.batch_size)
    throw Error(str(source, " train.micro_batch_size: ", c.micro_batch(),
                    " exceeds train.batch_size ", c.train.batch_size));
  c.resolved = resolve(c);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = cfg::load_yaml_file(path);
  for (const auto& o : overrides) cfg::apply_override(root, o);
  return parse_config(root, path);
}

}  // namespace herd
