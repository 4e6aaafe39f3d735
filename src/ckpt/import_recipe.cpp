#include "ckpt/import_recipe.h"

#include <optional>
#include <sstream>

#include "core/error.h"
#include "data/manifest_file.h"

namespace herd::ckpt {
namespace {

// The optimizer of the paper config herd follows for a model, used where a checkpoint is silent.
struct PaperRecipe {
  const char* config;  // herd's config and the reference files it follows
  const char* name;
  double lr, weight_decay, beta1, beta2, eps, grad_clip;
};
// configs/hyena-153m.yaml and configs/h3-125m.yaml: safari configs/experiment/pile/base.yaml
// (lr 6e-4, wd 0.1, gradient_clip_val 1.0) with configs/optimizer/adamw.yaml's betas and torch's
// eps. tests/test_import_recipe.cpp holds these to the config files.
const PaperRecipe kSafariPile{
    "configs/hyena-153m.yaml, configs/h3-125m.yaml (safari pile/base.yaml)",
    "adamw",
    6e-4,
    0.1,
    0.9,
    0.999,
    1e-8,
    1.0};
// configs/m2-bert-base-80m.yaml: m2
// bert/yamls/pretrain/monarch-mixer-pretrain-786dim-80m-parameters (composer's decoupled_adamw,
// gradient_clipping threshold 1.0).
const PaperRecipe kM2Bert{"configs/m2-bert-base-80m.yaml (m2 pretrain yaml)",
                          "decoupled_adamw",
                          8e-4,
                          1e-5,
                          0.9,
                          0.98,
                          1e-6,
                          1.0};

// Numbers as their shortest round-trip text (0.0006, not yaml-cpp's 0.00059999999999999995).
YAML::Node number_node(double v) {
  return YAML::Node(data::shortest_double(v));
}

std::string text_of(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

// Reads the source's values and writes the config's, recording each one's origin.
class RecipeWriter {
 public:
  RecipeWriter(YAML::Node& root, std::string where) : root_(root), where_(std::move(where)) {}

  // The value at `path` ("model.layer.lr") of `n` as T, or nullopt when absent or null; any
  // other form is an error naming the key and the `expected` one.
  template <typename T>
  std::optional<T> value(const YAML::Node& n, const std::string& path, const char* expected) const {
    const YAML::Node v = at(n, path);
    if (!v || v.IsNull()) return std::nullopt;
    try {
      if (v.IsScalar()) return v.as<T>();
    } catch (const YAML::Exception&) {
    }
    throw Error(str(where_, " ", path, ": expected ", expected, ", got ", text_of(v)));
  }
  std::optional<double> number(const YAML::Node& n, const std::string& path) const {
    return value<double>(n, path, "a number");
  }
  std::optional<bool> flag(const YAML::Node& n, const std::string& path) const {
    return value<bool>(n, path, "true or false");
  }
  std::optional<std::pair<double, double>> pair(const YAML::Node& n,
                                                const std::string& path) const {
    const YAML::Node v = at(n, path);
    if (!v || v.IsNull()) return std::nullopt;
    try {
      if (v.IsSequence() && v.size() == 2)
        return std::make_pair(v[0].as<double>(), v[1].as<double>());
    } catch (const YAML::Exception&) {
    }
    throw Error(str(where_, " ", path, ": expected a list of two numbers, got ", text_of(v)));
  }

  // Sets config key `key` to `value`, taken from `from`.
  void set(const std::string& key, const YAML::Node& value, const std::string& from) {
    YAML::Node node = root_;
    std::string rest = key;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      const std::string head = rest.substr(0, dot);
      if (!node[head] || !node[head].IsMap()) node[head] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[head]);  // rebinds; `node = ...` would overwrite the parent's value
      rest = rest.substr(dot + 1);
    }
    node[rest] = value;
    values_.push_back({key, text_of(value), from});
    root_["optimizer"]["sources"][key] = from;
  }
  // A value from the source when it has one (at `path`), else the paper's.
  void set_number(const std::string& key, const YAML::Node& src, const std::string& path,
                  double paper, const std::string& paper_from) {
    if (auto v = number(src, path))
      set(key, number_node(*v), where_ + " " + path);
    else
      set(key, number_node(paper), paper_from);
  }
  const std::string& where() const { return where_; }
  std::vector<RecipeValue> values() const { return values_; }

 private:
  static YAML::Node at(const YAML::Node& n, const std::string& path) {
    YAML::Node cur = n;
    std::string rest = path;
    while (true) {
      if (!cur || !cur.IsMap()) return YAML::Node();
      const auto dot = rest.find('.');
      cur.reset(cur[rest.substr(0, dot)]);
      if (dot == std::string::npos) return cur;
      rest = rest.substr(dot + 1);
    }
  }

  YAML::Node& root_;
  std::string where_;
  std::vector<RecipeValue> values_;
};

YAML::Node flow_pair(double a, double b) {
  YAML::Node n(YAML::NodeType::Sequence);
  n.push_back(number_node(a));
  n.push_back(number_node(b));
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// lr, weight_decay, betas, eps (under `optimizer_path` of src) and the clip (at clip_path).
void optimizer_recipe(RecipeWriter& w, const YAML::Node& src, const std::string& optimizer_path,
                      const std::string& clip_path, const PaperRecipe& paper) {
  const std::string from = str("paper config ", paper.config);
  const std::string o = optimizer_path.empty() ? "" : optimizer_path + ".";
  w.set("optimizer.name", YAML::Node(paper.name), from);
  w.set_number("optimizer.lr", src, o + "lr", paper.lr, from);
  w.set_number("optimizer.weight_decay", src, o + "weight_decay", paper.weight_decay, from);
  if (auto b = w.pair(src, o + "betas"))
    w.set("optimizer.betas", flow_pair(b->first, b->second), w.where() + " " + o + "betas");
  else
    w.set("optimizer.betas", flow_pair(paper.beta1, paper.beta2), from);
  w.set_number("optimizer.eps", src, o + "eps", paper.eps, from);
  w.set_number("train.grad_clip", src, clip_path, paper.grad_clip, from);
}

YAML::Node kinds(std::initializer_list<const char*> names) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const char* k : names) n.push_back(k);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// safari: the layer's optimizer kwargs, train.optimizer_param_grouping, optimizer, trainer.
void safari_recipe(RecipeWriter& w, const YAML::Node& reference, const std::string& mixer) {
  // Lightning hyper_parameters hold the model under `model`; a bare model config is the model.
  const bool full = reference["model"] && reference["model"].IsMap();
  const std::string layer = full ? "model.layer" : "layer";
  const std::string layer_from = w.where() + " " + layer;
  if (mixer == "hyena") {
    // HyenaOperator's defaults where the layer config is silent: lr 1e-3, lr_pos_emb 1e-5, wd 0.
    const std::string dflt = "safari HyenaOperator default (the layer config does not set it)";
    w.set_number("model.mixer.filter_lr", reference, layer + ".lr", 1e-3, dflt);
    w.set_number("model.mixer.lr_pos_emb", reference, layer + ".lr_pos_emb", 1e-5, dflt);
    w.set_number("model.mixer.filter_wd", reference, layer + ".wd", 0.0, dflt);
  } else if (auto lr = w.number(reference, layer + ".lr")) {  // h3: the SSM kernels' lr
    w.set("model.mixer.ssm_lr", number_node(*lr), layer_from + ".lr");
  }
  // Without optimizer_param_grouping every untagged parameter is in safari's main group.
  const std::string grouping = "train.optimizer_param_grouping";
  const YAML::Node g = full && reference["train"] && reference["train"].IsMap()
                           ? reference["train"]["optimizer_param_grouping"]
                           : YAML::Node();
  if (!g || g.IsNull()) {
    w.set("optimizer.no_decay", kinds({}),
          full ? str(w.where(), ": no ", grouping, " (every untagged parameter decays)")
               : str("safari's Pile configs (no ", grouping, "): every untagged parameter decays"));
  } else {
    YAML::Node no_decay = kinds({"embedding"});  // add_optimizer_hooks: nn.Embedding always
    if (!w.flag(reference, grouping + ".bias_weight_decay").value_or(false))
      no_decay.push_back("bias");
    if (!w.flag(reference, grouping + ".normalization_weight_decay").value_or(false))
      no_decay.push_back("norm");
    w.set("optimizer.no_decay", no_decay, w.where() + " " + grouping);
  }
  optimizer_recipe(w, full ? reference : YAML::Node(), "optimizer", "trainer.gradient_clip_val",
                   kSafariPile);
}

// m2: config.json's filter settings; create_param_groups decays every untagged parameter.
void m2_recipe(RecipeWriter& w, const YAML::Node& config_json) {
  const YAML::Node c =
      config_json["config"] && config_json["config"].IsMap() ? config_json["config"] : config_json;
  const std::string dflt = "m2 BertConfig default (config.json does not set it)";
  // A null kernel lr leaves the filter in the main group's lr (composer's default group).
  if (auto lr = w.number(c, "long_conv_kernel_learning_rate"))
    w.set("model.mixer.filter_lr", number_node(*lr), w.where() + " long_conv_kernel_learning_rate");
  else
    w.set("model.mixer.filter_lr", number_node(kM2Bert.lr),
          str("paper config ", kM2Bert.config, " optimizer.lr (long_conv_kernel_learning_rate is ",
              "null or absent: the main group's lr)"));
  w.set_number("model.mixer.lr_pos_emb", c, "hyena_lr_pos_emb", 1e-5, dflt);
  w.set_number("model.mixer.filter_wd", c, "hyena_wd", 0.1, dflt);
  w.set("optimizer.no_decay", kinds({}), "m2 create_param_groups: every untagged parameter decays");
  // The filter settings above are what config.json declares; m2's training never applies them.
  w.set("optimizer.block_groups", YAML::Node(false),
        "m2 BertEncoder deep-copies its layer and torch's Parameter deepcopy drops HyenaFilter's "
        "_optim tags: create_param_groups finds none and trains one group "
        "(tests/data/m2_train_parity.json)");
  optimizer_recipe(w, YAML::Node(), "", "", kM2Bert);
}

}  // namespace

std::vector<RecipeValue> add_import_recipe(RefSource source, const YAML::Node& reference,
                                           YAML::Node& root, const std::string& where) {
  RecipeWriter w(root, where);
  if (source == RefSource::Safari)
    safari_recipe(w, reference, root["model"]["mixer"]["type"].as<std::string>());
  else if (source == RefSource::M2)
    m2_recipe(w, reference);
  return w.values();
}

}  // namespace herd::ckpt
