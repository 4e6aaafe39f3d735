// herd's run configuration: one typed struct per YAML section, validated when parsed.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace herd {

// A YAML tree with value semantics. yaml-cpp nodes are shared handles, and assigning to a
// handle rewrites the node every other handle sees; copies of configs must not alias.
class YamlValue {
 public:
  YamlValue() = default;
  YamlValue(const YAML::Node& node) { node_.reset(YAML::Clone(node)); }
  YamlValue(const YamlValue& other) { node_.reset(YAML::Clone(other.node_)); }
  YamlValue& operator=(const YamlValue& other) {
    if (this != &other) node_.reset(YAML::Clone(other.node_));
    return *this;
  }
  operator const YAML::Node&() const { return node_; }
  YAML::Node& node() { return node_; }
  const YAML::Node& node() const { return node_; }
  YAML::Node operator[](const std::string& key) { return node_[key]; }
  const YAML::Node operator[](const std::string& key) const { return node_[key]; }
  size_t size() const { return node_.size(); }

 private:
  YAML::Node node_;
};

// The mixer of one layer: `type` picks the registered block, `options` are its own keys.
struct MixerSpec {
  std::string type = "attention";
  YamlValue options;   // mapping without `type`; validated by the block's factory
  std::string origin;  // "file:line model.mixer" for error messages
};

struct ModelConfig {
  std::string stack = "gpt";  // gpt | bert | vit (docs/blocks.md "Stacks")
  int64_t vocab_size = 0;     // 0: taken from the dataset manifest
  int64_t d_model = 256;
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t max_seq_len = 256;
  std::string positional = "learned";  // learned | none
  std::string mlp = "gelu";            // gelu | gelu_tanh | squared_relu | m2_glu
  int64_t mlp_ratio = 4;               // hidden width = mlp_ratio * d_model (GLU: per branch)
  int64_t mlp_nblocks = 4;             // m2_glu only: blocks of its block-diagonal linears
  double norm_eps = 1e-5;
  // Dropout in training (0: off): on the embeddings' output, on every mixer and MLP branch
  // before its residual add, on the MLP's hidden activation. Mixers have their own (attention
  // and primer `dropout` on the probabilities, hyena `dropout` on the gated products).
  double embd_dropout = 0.0, resid_dropout = 0.0, mlp_dropout = 0.0;
  // gpt2: the stacks' own layers N(0, init_std) (GPT-2's and HF BERT's, the references');
  // torch: PyTorch's constructor defaults (N(0, 1) embeddings, kaiming-uniform linears).
  std::string init = "gpt2";
  double init_std = 0.02;
  bool tie_embeddings = true;
  MixerSpec mixer;                // default for every layer
  std::vector<MixerSpec> layers;  // resolved per-layer plan, size n_layer

  // Block layout. pre: x + f(LN(x)) with a final LN (GPT, ViT); post: LN(x + f(x)) with an
  // LN after the embeddings (BERT, the parsed default for stack: bert).
  std::string norm = "pre";
  // post only; false: M2-BERT's layer, LN(m + mlp(m)) with m = mixer(x) (no mixer residual/LN).
  bool mixer_residual = true;
  // bert and vit: 0 = no classification head; bert > 0 swaps the MLM head for pooler + classifier.
  int64_t num_classes = 0;
  std::string pool = "cls";  // cls (first token / class token) | mean (over positions)
  // bert only
  int64_t type_vocab_size = 2;  // token-type (segment) embeddings; 0 = none
  // The word-embedding row the lookup sends no gradient and init zeroes (torch's padding_idx,
  // HF/M2-BERT's pad_token_id); -1 = none.
  int64_t padding_idx = -1;
  // vit only; max_seq_len is derived: (image_size / patch_size)^2 (+1 for pool: cls)
  int64_t image_size = 28;
  int64_t patch_size = 4;
  int64_t channels = 1;
};

// Train-time image augmentation (image task; data::ImageAugment documents each step).
struct AugmentConfig {
  bool random_resized_crop = true;
  double min_scale = 0.35, max_scale = 1.0;  // share of the image area a crop covers
  bool hflip = true;
};

// One blended dataset of `data.mix` (see data/mixture.h).
struct DataSource {
  std::string dir;      // output of `herd prepare text`
  double weight = 1.0;  // > 0; only the ratios between sources matter
};

// A generated task instead of files (src/data/synthetic/, docs/synthetic.md): gpt stack only.
// seq_len is the reference's input length; the rows the model sees follow from it per task.
struct SyntheticConfig {
  std::string task = "none";  // none | associative_recall | induction_head | mqar | passkey
  int64_t vocab_size = 20;    // every token, special ones included
  int64_t seq_len = 40;
  int64_t train_examples = 5000;   // 0: fresh examples every step
  int64_t test_examples = 500;     // the fixed held-out set, evaluated whole
  std::string loss = "auto";       // auto | all (every position) | answer (answer positions only)
  int64_t num_kv_pairs = 8;        // mqar
  double power_a = 0.01;           // mqar: query gaps ~ power law with this exponent
  bool random_non_queries = true;  // mqar: non-query filler tokens random instead of 0
  int64_t key_len = 5;             // passkey: digits of the key
  std::vector<double> depths = {0.5};  // passkey: where the key is stated (0 start, 1 end)

  bool enabled() const { return task != "none"; }
};

struct DataConfig {
  std::string dir;        // output of `herd prepare text` (or `prepare images`)
  std::string tokenizer;  // optional; default: the one recorded in dir/manifest.yaml
  int64_t seq_len = 0;    // 0: model.max_seq_len
  AugmentConfig augment;  // images only
  // Instead of `dir`: several prepared datasets blended by weight (data/mixture.h).
  std::vector<DataSource> mix;
  SyntheticConfig synthetic;  // instead of dir/mix: generated examples (gpt stack)
};

struct OptimizerConfig {
  std::string name = "adamw";
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  // optimizer.groups.<name>: lr and/or weight decay of one parameter group, overriding the
  // block's declaration (train/optimizer.h; `herd config check` lists a model's groups).
  struct GroupOverride {
    std::optional<double> lr, weight_decay;
  };
  std::map<std::string, GroupOverride> groups;
  // Untagged parameters kept out of weight decay, by kind: vector (any 1-D parameter), bias
  // (a name ending in "bias"), norm (LayerNorm weights and biases), embedding. The default is
  // herd's GPT recipe (matrices decay); safari's Pile runs and m2's create_param_groups: [].
  std::vector<std::string> no_decay = {"vector", "embedding"};
  // false: the blocks' own groups are ignored and every parameter follows the untagged rule. m2's
  // pretraining trains that way: BertEncoder deep-copies its layer and torch's Parameter
  // deepcopy drops HyenaFilter's `_optim` tags, so create_param_groups finds none.
  bool block_groups = true;
  // optimizer.sources: where `herd import` took each recipe value from (config key -> text);
  // `herd config check` shows them beside the groups.
  std::map<std::string, std::string> sources;
};

struct ScheduleConfig {
  int64_t warmup_steps = 0;
  std::string decay = "cosine";  // cosine | linear | constant
  double min_lr_ratio = 0.1;
};

struct TrainConfig {
  int64_t steps = 1000;
  int64_t batch_size = 8;        // sequences per optimizer step (global)
  int64_t micro_batch_size = 0;  // 0: batch_size (no accumulation)
  double grad_clip = 1.0;        // 0: off
  uint64_t seed = 1337;
  std::string device = "auto";     // auto | cpu | cuda
  std::string precision = "auto";  // auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp64
  int64_t eval_every = 0;          // 0: only at the end
  int64_t eval_batches = 8;
  int64_t sample_every = 0;  // 0: only at the end
  int64_t sample_tokens = 64;
  std::string sample_prompt = "";
  double sample_temperature = 0.8;
  int64_t sample_top_k = 40;
  int64_t threads = 0;  // 0: torch default
  // Steps whose loss or gradient norm is not finite are skipped (no update); this many in a
  // row stop the run, the last good checkpoint intact.
  int64_t max_bad_steps = 10;
  // none | layer: each block's activations are recomputed in backward instead of kept
  // (less memory, about one more forward of compute; identical losses).
  std::string activation_checkpointing = "none";
  // Data-parallel runs (several ranks; see src/dist): the rest is ignored by one process.
  std::string backend = "auto";  // auto (nccl on CUDA, gloo on CPU) | nccl | gloo
  double dist_timeout_s = 600;   // a rank that died or hung fails the others after this
  double bucket_cap_mb = 25;     // gradient all-reduce bucket size
  // 0: every rank keeps all optimizer state; 1: AdamW's m, v sharded (ZeRO-1); 2: the
  // averaged gradients too (ZeRO-2). See src/dist/zero.h.
  int64_t zero = 0;
  // Context parallelism: C consecutive ranks share each sequence, one contiguous 1/C of its
  // positions each (world = data parallel x C). See src/dist/context_parallel.h.
  int64_t context_parallel = 1;
};

struct CheckpointConfig {
  int64_t every = 0;  // 0: only at the end
  int64_t keep_last = 3;
};

struct LoggingConfig {
  int64_t every = 10;
  std::string level = "info";
};

// What the run optimizes (src/train/task.h). Classification data (`classify`) is labelled
// jsonl: one {"text": ..., "label": ...} (or "text_a"/"text_b" pairs) per line.
struct TaskConfig {
  std::string type = "auto";  // auto (from model.stack) | lm | mlm | classify | image
  double mask_rate = 0.30;    // mlm: fraction of tokens selected (80% [MASK], 10% random, 10% kept)
  std::string init_from;      // a checkpoint whose encoder weights start the run (fine-tuning)
  std::string train_file;     // classify: labelled jsonl
  std::string val_file;       // classify: labelled jsonl (optional)
  std::string text_field = "text";
  std::string pair_field;  // classify: second sentence of a pair ("" none)
  std::string label_field = "label";
};

struct Config {
  std::string source;  // the file it came from
  ModelConfig model;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  CheckpointConfig checkpoint;
  LoggingConfig logging;
  TaskConfig task;
  YamlValue resolved;  // every key with its effective value (saved in the run directory)

  int64_t seq_len() const { return data.seq_len > 0 ? data.seq_len : model.max_seq_len; }
  int64_t micro_batch() const {
    return train.micro_batch_size > 0 ? train.micro_batch_size : train.batch_size;
  }
};

// Parses and validates; throws herd::Error naming file:line and key path.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(YAML::Node root, const std::string& source);

}  // namespace herd
