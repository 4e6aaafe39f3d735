#include "config/config.h"

#include "config/node.h"

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

// Keys of one stack only are errors elsewhere; vit derives max_seq_len from the image.
void parse_stack_keys(cfg::ConfigMap& m, ModelConfig& c) {
  auto only = [&](const char* key, bool applies, const char* stacks) {
    if (m.has(key) && !applies) m.fail(key, str("only applies to stack: ", stacks));
  };
  const bool bert = c.stack == "bert", vit = c.stack == "vit";
  only("num_classes", bert || vit, "bert|vit");
  only("pool", bert || vit, "bert|vit");
  only("type_vocab_size", bert, "bert");
  only("norm", bert || vit, "bert|vit (gpt is pre-norm)");
  for (const char* key : {"image_size", "patch_size", "channels"}) only(key, vit, "vit");
  c.norm = m.get_choice("norm", bert ? "post" : c.norm, {"pre", "post"});
  if (m.has("mixer_residual") && c.norm != "post")
    m.fail("mixer_residual", "only applies to norm: post (M2-BERT's layer)");
  c.mixer_residual = m.get_bool("mixer_residual", c.mixer_residual);
  c.num_classes = m.get_int("num_classes", c.num_classes, vit ? 1 : 0);
  c.pool = m.get_choice("pool", c.pool, {"cls", "mean"});
  c.type_vocab_size = m.get_int("type_vocab_size", c.type_vocab_size, 0);
  if (!vit) return;
  if (c.vocab_size != 0) m.fail("vocab_size", "a vit stack has no vocabulary; remove the key");
  if (!m.has("num_classes")) m.fail("num_classes", "required for stack: vit (e.g. 10)");
  c.image_size = m.get_int("image_size", c.image_size, 1);
  c.patch_size = m.get_int("patch_size", c.patch_size, 1);
  c.channels = m.get_int("channels", c.channels, 1);
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

void parse_model(cfg::ConfigMap m, ModelConfig& c) {
  c.stack = m.get_choice("stack", c.stack, {"gpt", "bert", "vit"});
  c.vocab_size = m.get_int("vocab_size", c.vocab_size, 0);
  c.d_model = m.get_int("d_model", c.d_model, 1);
  c.n_layer = m.get_int("n_layer", c.n_layer, 1);
  c.n_head = m.get_int("n_head", c.n_head, 1);
  c.max_seq_len = m.get_int("max_seq_len", c.max_seq_len, 1);
  c.positional = m.get_choice("positional", c.positional, {"learned", "none"});
  c.mlp = m.get_choice("mlp", c.mlp, {"gelu", "gelu_tanh", "squared_relu", "m2_glu"});
  c.mlp_ratio = m.get_int("mlp_ratio", c.mlp_ratio, 1, 64);
  if (m.has("mlp_nblocks") && c.mlp != "m2_glu")
    m.fail("mlp_nblocks", "only applies to mlp: m2_glu");
  c.mlp_nblocks = m.get_int("mlp_nblocks", c.mlp_nblocks, 1, 4096);
  // Like M2's BlockdiagLinear, a d_model that is not a multiple is zero-padded per block.
  if (c.mlp_nblocks > c.d_model)
    m.fail("mlp_nblocks", str("must be at most d_model ", c.d_model, ", got ", c.mlp_nblocks));
  c.norm_eps = m.get_double("norm_eps", c.norm_eps, 0.0, 1.0);
  c.init_std = m.get_double("init_std", c.init_std, 0.0, 10.0);
  c.tie_embeddings = m.get_bool("tie_embeddings", c.tie_embeddings);
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
  parse_stack_keys(m, c);
  if (c.positional == "learned" && c.max_seq_len <= 0) m.fail("max_seq_len", "must be positive");
  m.finish();
}

void parse_data(cfg::ConfigMap m, DataConfig& c) {
  c.dir = m.get_string("dir", c.dir);
  // `mix: [{dir: a, weight: 0.7}, {dir: b, weight: 0.3}]` blends datasets instead of `dir`.
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
  }
  c.tokenizer = m.get_string("tokenizer", c.tokenizer);
  c.seq_len = m.get_int("seq_len", c.seq_len, 0);
  if (m.has("augment")) {
    auto a = m.child("augment");
    c.augment.random_resized_crop =
        a.get_bool("random_resized_crop", c.augment.random_resized_crop);
    c.augment.min_scale = a.get_double("min_scale", c.augment.min_scale, 0.0, 1.0);
    c.augment.max_scale = a.get_double("max_scale", c.augment.max_scale, 0.0, 1.0);
    c.augment.hflip = a.get_bool("hflip", c.augment.hflip);
    if (c.augment.min_scale <= 0 || c.augment.min_scale > c.augment.max_scale)
      a.fail("min_scale", "expected 0 < min_scale <= max_scale <= 1");
    a.finish();
  }
  m.finish();
}

void parse_optimizer(cfg::ConfigMap m, OptimizerConfig& c) {
  c.name = m.get_choice("name", c.name, {"adamw"});
  c.lr = m.get_double("lr", c.lr, 0.0, 10.0);
  if (m.has("betas")) {
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
  c.eps = m.get_double("eps", c.eps, 0.0, 1.0);
  c.weight_decay = m.get_double("weight_decay", c.weight_decay, 0.0, 10.0);
  m.finish();
}

void parse_schedule(cfg::ConfigMap m, ScheduleConfig& c) {
  c.warmup_steps = m.get_int("warmup_steps", c.warmup_steps, 0);
  c.decay = m.get_choice("decay", c.decay, {"cosine", "linear", "constant"});
  c.min_lr_ratio = m.get_double("min_lr_ratio", c.min_lr_ratio, 0.0, 1.0);
  m.finish();
}

void parse_train(cfg::ConfigMap m, TrainConfig& c) {
  c.steps = m.get_int("steps", c.steps, 1);
  c.batch_size = m.get_int("batch_size", c.batch_size, 1);
  c.micro_batch_size = m.get_int("micro_batch_size", c.micro_batch_size, 0);
  if (c.micro_batch_size > 0 && c.batch_size % c.micro_batch_size != 0)
    m.fail("micro_batch_size",
           str("must divide train.batch_size ", c.batch_size, ", got ", c.micro_batch_size));
  c.grad_clip = m.get_double("grad_clip", c.grad_clip, 0.0);
  c.seed = static_cast<uint64_t>(m.get_int("seed", static_cast<int64_t>(c.seed), 0));
  c.device = m.get_choice("device", c.device, {"auto", "cpu", "cuda"});
  c.precision = m.get_choice("precision", c.precision, {"auto", "fp32", "bf16", "fp64"});
  c.eval_every = m.get_int("eval_every", c.eval_every, 0);
  c.eval_batches = m.get_int("eval_batches", c.eval_batches, 1);
  c.sample_every = m.get_int("sample_every", c.sample_every, 0);
  c.sample_tokens = m.get_int("sample_tokens", c.sample_tokens, 0);
  c.sample_prompt = m.get_string("sample_prompt", c.sample_prompt);
  c.sample_temperature = m.get_double("sample_temperature", c.sample_temperature, 0.0, 100.0);
  c.sample_top_k = m.get_int("sample_top_k", c.sample_top_k, 0);
  c.threads = m.get_int("threads", c.threads, 0, 1024);
  c.max_bad_steps = m.get_int("max_bad_steps", c.max_bad_steps, 1);
  c.activation_checkpointing =
      m.get_choice("activation_checkpointing", c.activation_checkpointing, {"none", "layer"});
  c.backend = m.get_choice("backend", c.backend, {"auto", "nccl", "gloo"});
  c.dist_timeout_s = m.get_double("dist_timeout_s", c.dist_timeout_s, 1.0, 86400.0);
  c.bucket_cap_mb = m.get_double("bucket_cap_mb", c.bucket_cap_mb, 1e-6, 1e6);
  m.finish();
}

void parse_checkpoint(cfg::ConfigMap m, CheckpointConfig& c) {
  c.every = m.get_int("every", c.every, 0);
  c.keep_last = m.get_int("keep_last", c.keep_last, 1);
  m.finish();
}

void parse_logging(cfg::ConfigMap m, LoggingConfig& c) {
  c.every = m.get_int("every", c.every, 1);
  c.level = m.get_choice("level", c.level, {"debug", "info", "warn", "error"});
  m.finish();
}

YAML::Node mixer_node(const MixerSpec& spec) {
  YAML::Node n(YAML::NodeType::Map);
  n["type"] = spec.type;
  for (const auto& kv : spec.options.node()) n[kv.first.Scalar()] = kv.second;
  return n;
}

void parse_task(cfg::ConfigMap m, TaskConfig& c) {
  c.type = m.get_choice("type", c.type, {"auto", "lm", "mlm", "classify", "image"});
  c.mask_rate = m.get_double("mask_rate", c.mask_rate, 0.0, 1.0);
  c.init_from = m.get_string("init_from", c.init_from);
  c.train_file = m.get_string("train_file", c.train_file);
  c.val_file = m.get_string("val_file", c.val_file);
  c.text_field = m.get_string("text_field", c.text_field);
  c.pair_field = m.get_string("pair_field", c.pair_field);
  c.label_field = m.get_string("label_field", c.label_field);
  if (c.type == "classify" && c.train_file.empty())
    m.fail("train_file", "required for task.type classify (labelled jsonl)");
  m.finish();
}

// Every effective value, defaults included, in a stable order.
YAML::Node resolve(const Config& c) {
  YAML::Node r;
  auto& m = c.model;
  r["model"]["stack"] = m.stack;
  r["model"]["vocab_size"] = m.vocab_size;
  r["model"]["d_model"] = m.d_model;
  r["model"]["n_layer"] = m.n_layer;
  r["model"]["n_head"] = m.n_head;
  r["model"]["max_seq_len"] = m.max_seq_len;
  r["model"]["positional"] = m.positional;
  r["model"]["mlp"] = m.mlp;
  r["model"]["mlp_ratio"] = m.mlp_ratio;
  // Only for m2_glu, so checkpoints of the other MLPs keep the resolved keys they had.
  if (m.mlp == "m2_glu") r["model"]["mlp_nblocks"] = m.mlp_nblocks;
  r["model"]["norm_eps"] = m.norm_eps;
  r["model"]["init_std"] = m.init_std;
  r["model"]["tie_embeddings"] = m.tie_embeddings;
  r["model"]["mixer"] = mixer_node(m.mixer);
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
  if (layers.size() > 0) r["model"]["layers"] = layers;
  // Stack keys only where they apply, so GPT checkpoints keep the resolved keys they had.
  if (m.stack != "gpt") {
    r["model"]["norm"] = m.norm;
    if (m.norm == "post") r["model"]["mixer_residual"] = m.mixer_residual;
    r["model"]["num_classes"] = m.num_classes;
    r["model"]["pool"] = m.pool;
  }
  if (m.stack == "bert") r["model"]["type_vocab_size"] = m.type_vocab_size;
  if (m.stack == "vit") {
    r["model"]["image_size"] = m.image_size;
    r["model"]["patch_size"] = m.patch_size;
    r["model"]["channels"] = m.channels;
  }
  r["data"]["dir"] = c.data.dir;
  // Only with a mix, so the resolved configs of single-dataset runs keep their keys.
  for (const auto& src : c.data.mix) {
    YAML::Node item;
    item["dir"] = src.dir;
    item["weight"] = src.weight;
    r["data"]["mix"].push_back(item);
  }
  r["data"]["tokenizer"] = c.data.tokenizer;
  r["data"]["seq_len"] = c.seq_len();
  if (c.model.stack == "vit") {
    r["data"]["augment"]["random_resized_crop"] = c.data.augment.random_resized_crop;
    r["data"]["augment"]["min_scale"] = c.data.augment.min_scale;
    r["data"]["augment"]["max_scale"] = c.data.augment.max_scale;
    r["data"]["augment"]["hflip"] = c.data.augment.hflip;
  }
  auto& o = c.optimizer;
  r["optimizer"]["name"] = o.name;
  r["optimizer"]["lr"] = o.lr;
  r["optimizer"]["betas"].push_back(o.beta1);
  r["optimizer"]["betas"].push_back(o.beta2);
  r["optimizer"]["eps"] = o.eps;
  r["optimizer"]["weight_decay"] = o.weight_decay;
  r["schedule"]["warmup_steps"] = c.schedule.warmup_steps;
  r["schedule"]["decay"] = c.schedule.decay;
  r["schedule"]["min_lr_ratio"] = c.schedule.min_lr_ratio;
  auto& t = c.train;
  r["train"]["steps"] = t.steps;
  r["train"]["batch_size"] = t.batch_size;
  r["train"]["micro_batch_size"] = c.micro_batch();
  r["train"]["grad_clip"] = t.grad_clip;
  r["train"]["seed"] = t.seed;
  r["train"]["device"] = t.device;
  r["train"]["precision"] = t.precision;
  r["train"]["eval_every"] = t.eval_every;
  r["train"]["eval_batches"] = t.eval_batches;
  r["train"]["sample_every"] = t.sample_every;
  r["train"]["sample_tokens"] = t.sample_tokens;
  r["train"]["sample_prompt"] = t.sample_prompt;
  r["train"]["sample_temperature"] = t.sample_temperature;
  r["train"]["sample_top_k"] = t.sample_top_k;
  r["train"]["threads"] = t.threads;
  r["train"]["activation_checkpointing"] = t.activation_checkpointing;
  r["train"]["backend"] = t.backend;
  r["train"]["dist_timeout_s"] = t.dist_timeout_s;
  r["train"]["bucket_cap_mb"] = t.bucket_cap_mb;
  r["train"]["max_bad_steps"] = t.max_bad_steps;
  r["checkpoint"]["every"] = c.checkpoint.every;
  r["checkpoint"]["keep_last"] = c.checkpoint.keep_last;
  r["logging"]["every"] = c.logging.every;
  r["logging"]["level"] = c.logging.level;
  auto& k = c.task;
  r["task"]["type"] = k.type;
  if (k.type == "mlm" || (k.type == "auto" && c.model.stack == "bert"))
    r["task"]["mask_rate"] = k.mask_rate;
  if (!k.init_from.empty()) r["task"]["init_from"] = k.init_from;
  if (k.type == "classify") {
    r["task"]["train_file"] = k.train_file;
    r["task"]["val_file"] = k.val_file;
    r["task"]["text_field"] = k.text_field;
    r["task"]["pair_field"] = k.pair_field;
    r["task"]["label_field"] = k.label_field;
  }
  return r;
}

}  // namespace

Config parse_config(YAML::Node root, const std::string& source) {
  Config c;
  c.source = source;
  cfg::ConfigMap top(root, source, "");
  parse_model(top.child("model"), c.model);
  parse_data(top.child("data"), c.data);
  parse_optimizer(top.child("optimizer"), c.optimizer);
  parse_schedule(top.child("schedule"), c.schedule);
  parse_train(top.child("train"), c.train);
  parse_checkpoint(top.child("checkpoint"), c.checkpoint);
  parse_logging(top.child("logging"), c.logging);
  parse_task(top.child("task"), c.task);
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
