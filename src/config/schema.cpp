#include "config/schema.h"

#include <cmath>
#include <sstream>

namespace herd::cfg {
namespace {

// A key's storage: `+` turns the capture-free lambda into the Field's function pointer.
#define HERD_FIELD(member)   \
  +[](Config & c) -> auto& { \
    return c.member;         \
  }

bool is_mlm(const Config& c) {
  return c.task.type == "mlm" || (c.task.type == "auto" && c.model.stack == "bert");
}

bool is_synthetic(const Config& c) {
  return c.data.synthetic.enabled();
}
const char* const kSyntheticTasks = "a data.synthetic.task";

std::vector<KeySpec> build_keys() {
  using K = KeySpec;
  const unsigned bert_vit = kBert | kVit;
  return {
      // model
      K("model", "stack", HERD_FIELD(model.stack), "the model family (docs/blocks.md \"Stacks\")")
          .one_of({"gpt", "bert", "vit"}),
      K("model", "vocab_size", HERD_FIELD(model.vocab_size),
        "token vocabulary; 0 takes it from the dataset manifest (required for llm.c shard "
        "folders); vit has none")
          .min(0),
      K("model", "d_model", HERD_FIELD(model.d_model), "width of the residual stream").min(1),
      K("model", "n_layer", HERD_FIELD(model.n_layer), "number of blocks").min(1),
      K("model", "n_head", HERD_FIELD(model.n_head), "attention heads (default of the blocks)")
          .min(1),
      K("model", "max_seq_len", HERD_FIELD(model.max_seq_len),
        "longest sequence; vit derives it: (image_size / patch_size)^2 (+1 for pool: cls)")
          .min(1),
      K("model", "positional", HERD_FIELD(model.positional), "position embeddings")
          .one_of({"learned", "none"}),
      K("model", "mlp", HERD_FIELD(model.mlp), "the MLP of each block")
          .one_of({"gelu", "gelu_tanh", "squared_relu", "m2_glu"}),
      K("model", "mlp_ratio", HERD_FIELD(model.mlp_ratio),
        "MLP hidden width = mlp_ratio * d_model (GLU: per branch)")
          .min(1)
          .max(64),
      K("model", "mlp_nblocks", HERD_FIELD(model.mlp_nblocks),
        "blocks of m2_glu's block-diagonal linears (at most d_model)")
          .min(1)
          .max(4096)
          .applies([](const Config& c) { return c.model.mlp == "m2_glu"; }, "mlp: m2_glu", true),
      K("model", "norm_eps", HERD_FIELD(model.norm_eps), "LayerNorm epsilon").min(0).max(1),
      K("model", "embd_dropout", HERD_FIELD(model.embd_dropout),
        "dropout on the embeddings' output (training only)")
          .min(0)
          .max(1, true),
      K("model", "resid_dropout", HERD_FIELD(model.resid_dropout),
        "dropout on each mixer and MLP branch before its residual add")
          .min(0)
          .max(1, true),
      K("model", "mlp_dropout", HERD_FIELD(model.mlp_dropout),
        "dropout on the MLP's hidden activation (m2_glu: before wo)")
          .min(0)
          .max(1, true),
      K("model", "init", HERD_FIELD(model.init),
        "the stacks' own layers (embeddings, head, MLPs): gpt2 = N(0, init_std) as GPT-2 and HF "
        "BERT; torch = PyTorch's defaults (N(0, 1) embeddings, kaiming-uniform linears); mixers "
        "keep their reference init")
          .one_of({"gpt2", "torch"}),
      K("model", "init_std", HERD_FIELD(model.init_std), "std of the normal weight init")
          .min(0)
          .max(10)
          .applies([](const Config& c) { return c.model.init == "gpt2"; }, "init: gpt2", true),
      K("model", "tie_embeddings", HERD_FIELD(model.tie_embeddings),
        "the output head shares the token embedding"),
      K("model", "mixer", {}, "the sequence mixer of every layer: {type: NAME, ...its options}")
          .form("mapping or block name", "attention"),
      K("model", "layers", {},
        "hybrid stacks: [{at: [1, 5], mixer: {type: attention}}] overrides chosen layers")
          .form("list of {at, mixer}", "[]"),
      K("model", "norm", HERD_FIELD(model.norm),
        "pre: x + f(LN(x)) and a final LN; post: LN(x + f(x)) (bert's default)")
          .one_of({"pre", "post"})
          .only(bert_vit),
      K("model", "mixer_residual", HERD_FIELD(model.mixer_residual),
        "false: M2-BERT's layer LN(m + mlp(m)), m = mixer(x)")
          .only(bert_vit)
          .applies([](const Config& c) { return c.model.norm == "post"; },
                   "norm: post (M2-BERT's layer)", true),
      K("model", "num_classes", HERD_FIELD(model.num_classes),
        "classification head (0: none; bert > 0 swaps the MLM head; vit requires it)")
          .min(0)
          .only(bert_vit),
      K("model", "pool", HERD_FIELD(model.pool), "what the classifier reads: first token or mean")
          .one_of({"cls", "mean"})
          .only(bert_vit),
      K("model", "type_vocab_size", HERD_FIELD(model.type_vocab_size),
        "token-type (segment) embeddings; 0: none")
          .min(0)
          .only(kBert),
      K("model", "padding_idx", HERD_FIELD(model.padding_idx),
        "word-embedding row that gets no gradient from the lookup and starts at zero (torch's "
        "padding_idx, M2-BERT's pad_token_id); -1: none")
          .min(-1)
          .only(kBert),
      K("model", "image_size", HERD_FIELD(model.image_size), "image side in pixels")
          .min(1)
          .only(kVit),
      K("model", "patch_size", HERD_FIELD(model.patch_size), "patch side; divides image_size")
          .min(1)
          .only(kVit),
      K("model", "channels", HERD_FIELD(model.channels), "image channels").min(1).only(kVit),
      // data
      K("data", "dir", HERD_FIELD(data.dir),
        "a prepared dataset (`herd prepare text|images`) or a folder of llm.c shards"),
      K("data", "mix", {}, "instead of dir: [{dir: a, weight: 0.7}, {dir: b, weight: 0.3}]")
          .form("list of {dir, weight > 0}", "[]"),
      K("data", "tokenizer", HERD_FIELD(data.tokenizer),
        "tokenizer file; default: the one the manifest records"),
      K("data", "seq_len", HERD_FIELD(data.seq_len), "training sequence length; 0: max_seq_len")
          .min(0),
      K("data.augment", "random_resized_crop", HERD_FIELD(data.augment.random_resized_crop),
        "train-time random resized crop (images)")
          .applies([](const Config& c) { return c.model.stack == "vit"; }, "stack: vit", false),
      K("data.augment", "min_scale", HERD_FIELD(data.augment.min_scale),
        "smallest share of the image area a crop covers")
          .min(0, true)
          .max(1)
          .applies([](const Config& c) { return c.model.stack == "vit"; }, "stack: vit", false),
      K("data.augment", "max_scale", HERD_FIELD(data.augment.max_scale),
        "largest share of the image area a crop covers (>= min_scale)")
          .min(0, true)
          .max(1)
          .applies([](const Config& c) { return c.model.stack == "vit"; }, "stack: vit", false),
      K("data.augment", "hflip", HERD_FIELD(data.augment.hflip), "random horizontal flips")
          .applies([](const Config& c) { return c.model.stack == "vit"; }, "stack: vit", false),
      // data.synthetic (src/data/synthetic/, docs/synthetic.md)
      K("data.synthetic", "task", HERD_FIELD(data.synthetic.task),
        "a generated task instead of data.dir: safari's recall and induction, zoology's mqar, "
        "passkey")
          .one_of({"none", "associative_recall", "induction_head", "mqar", "passkey"})
          .only(kGpt)
          .applies(is_synthetic, "", false),
      K("data.synthetic", "vocab_size", HERD_FIELD(data.synthetic.vocab_size),
        "tokens in all, special ones included (safari: vocab_size - 2 ordinary tokens)")
          .min(3)
          .applies(is_synthetic, kSyntheticTasks, true),
      K("data.synthetic", "seq_len", HERD_FIELD(data.synthetic.seq_len),
        "the reference's input length; rows: recall 2*(seq_len/2)+2, induction seq_len+1, "
        "mqar and passkey seq_len")
          .min(1)
          .applies(is_synthetic, kSyntheticTasks, true),
      K("data.synthetic", "train_examples", HERD_FIELD(data.synthetic.train_examples),
        "a fixed training set repeated over epochs; 0: fresh examples every step")
          .min(0)
          .applies(is_synthetic, kSyntheticTasks, true),
      K("data.synthetic", "test_examples", HERD_FIELD(data.synthetic.test_examples),
        "the fixed held-out set, evaluated whole every train.eval_every steps")
          .min(1)
          .applies(is_synthetic, kSyntheticTasks, true),
      K("data.synthetic", "loss", HERD_FIELD(data.synthetic.loss),
        "where the loss looks: every position, or the answers only; auto: all for recall and "
        "induction (safari), answer for mqar and passkey")
          .one_of({"auto", "all", "answer"})
          .applies(is_synthetic, kSyntheticTasks, true),
      K("data.synthetic", "num_kv_pairs", HERD_FIELD(data.synthetic.num_kv_pairs),
        "mqar: key-value pairs (and queries) per example; 4 * pairs <= seq_len")
          .min(1)
          .applies([](const Config& c) { return c.data.synthetic.task == "mqar"; },
                   "data.synthetic.task: mqar", true),
      K("data.synthetic", "power_a", HERD_FIELD(data.synthetic.power_a),
        "mqar: the query gaps' power law p(g) ~ a * g^(a-1) (1: uniform)")
          .min(0, true)
          .max(1)
          .applies([](const Config& c) { return c.data.synthetic.task == "mqar"; },
                   "data.synthetic.task: mqar", true),
      K("data.synthetic", "random_non_queries", HERD_FIELD(data.synthetic.random_non_queries),
        "mqar: the slots between queries hold random tokens instead of 0")
          .applies([](const Config& c) { return c.data.synthetic.task == "mqar"; },
                   "data.synthetic.task: mqar", true),
      K("data.synthetic", "key_len", HERD_FIELD(data.synthetic.key_len),
        "passkey: digits of the key (accuracy: all of them recalled)")
          .min(1)
          .max(1000)
          .applies([](const Config& c) { return c.data.synthetic.task == "passkey"; },
                   "data.synthetic.task: passkey", true),
      K("data.synthetic", "depth", {},
        "passkey: where the key is stated in the filler (0 start, 1 end); a list: examples cycle "
        "through it and eval reports accuracy_depth_D for each")
          .form("number or list of numbers in [0, 1]", "0.5")
          .applies([](const Config& c) { return c.data.synthetic.task == "passkey"; },
                   "data.synthetic.task: passkey", true),
      // optimizer
      K("optimizer", "name", HERD_FIELD(optimizer.name),
        "adamw: p *= 1 - lr*wd (torch); decoupled_adamw: p *= 1 - lr/peak_lr*wd (composer, m2)")
          .one_of({"adamw", "decoupled_adamw"}),
      K("optimizer", "lr", HERD_FIELD(optimizer.lr), "peak learning rate").min(0).max(10),
      K("optimizer", "betas", {}, "AdamW's beta1, beta2, each in [0, 1)")
          .form("list of two numbers", "[0.9, 0.95]"),
      K("optimizer", "groups", {},
        "per-group lr/weight_decay over the blocks' own (herd config check lists the groups)")
          .form("mapping name -> {lr, weight_decay}", "{}"),
      K("optimizer", "eps", HERD_FIELD(optimizer.eps), "AdamW epsilon").min(0).max(1),
      K("optimizer", "weight_decay", HERD_FIELD(optimizer.weight_decay),
        "weight decay of the untagged parameters that decay (see no_decay)")
          .min(0)
          .max(10),
      K("optimizer", "no_decay", {},
        "untagged parameters without weight decay, by kind: vector (1-D), bias, norm, embedding")
          .form("list of vector|bias|norm|embedding", "[vector, embedding]"),
      K("optimizer", "block_groups", HERD_FIELD(optimizer.block_groups),
        "false: ignore the blocks' own groups (every parameter by the untagged rule), as m2 "
        "trains"),
      K("optimizer", "sources", {}, "written by herd import: where each recipe value came from")
          .form("mapping key -> text", "{}"),
      // schedule
      K("schedule", "warmup_steps", HERD_FIELD(schedule.warmup_steps), "linear warmup steps")
          .min(0),
      K("schedule", "decay", HERD_FIELD(schedule.decay), "the shape after warmup")
          .one_of({"cosine", "linear", "constant"}),
      K("schedule", "min_lr_ratio", HERD_FIELD(schedule.min_lr_ratio),
        "final lr as a fraction of the peak")
          .min(0)
          .max(1),
      // train
      K("train", "steps", HERD_FIELD(train.steps), "optimizer steps").min(1),
      K("train", "batch_size", HERD_FIELD(train.batch_size),
        "sequences per optimizer step (global, over all ranks)")
          .min(1),
      K("train", "micro_batch_size", HERD_FIELD(train.micro_batch_size),
        "sequences per forward/backward; divides batch_size; 0: batch_size")
          .min(0),
      K("train", "grad_clip", HERD_FIELD(train.grad_clip), "global grad-norm clip; 0: off").min(0),
      K("train", "seed", HERD_FIELD(train.seed), "seed of init, data order and sampling").min(0),
      K("train", "device", HERD_FIELD(train.device), "where to train")
          .one_of({"auto", "cpu", "cuda"}),
      K("train", "precision", HERD_FIELD(train.precision), "auto: bf16 on CUDA, fp32 on CPU")
          .one_of({"auto", "fp32", "bf16", "fp64"}),
      K("train", "eval_every", HERD_FIELD(train.eval_every), "steps between evals; 0: at the end")
          .min(0),
      K("train", "eval_batches", HERD_FIELD(train.eval_batches), "batches per eval").min(1),
      K("train", "sample_every", HERD_FIELD(train.sample_every),
        "steps between samples; 0: at the end")
          .min(0),
      K("train", "sample_tokens", HERD_FIELD(train.sample_tokens), "tokens per sample; 0: none")
          .min(0),
      K("train", "sample_prompt", HERD_FIELD(train.sample_prompt), "prompt of the samples"),
      K("train", "sample_temperature", HERD_FIELD(train.sample_temperature),
        "sampling temperature; 0: greedy")
          .min(0)
          .max(100),
      K("train", "sample_top_k", HERD_FIELD(train.sample_top_k), "top-k sampling; 0: off").min(0),
      K("train", "threads", HERD_FIELD(train.threads), "CPU threads; 0: torch's default")
          .min(0)
          .max(1024),
      K("train", "max_bad_steps", HERD_FIELD(train.max_bad_steps),
        "non-finite steps in a row (each skipped, no update) that stop the run")
          .min(1),
      K("train", "activation_checkpointing", HERD_FIELD(train.activation_checkpointing),
        "layer: recompute each block in backward (less memory, same losses)")
          .one_of({"none", "layer"}),
      K("train", "backend", HERD_FIELD(train.backend),
        "data-parallel backend; auto: nccl on CUDA, gloo on CPU")
          .one_of({"auto", "nccl", "gloo"}),
      K("train", "dist_timeout_s", HERD_FIELD(train.dist_timeout_s),
        "a rank that died or hung fails the others after this")
          .min(1)
          .max(86400),
      K("train", "bucket_cap_mb", HERD_FIELD(train.bucket_cap_mb),
        "gradient all-reduce bucket size")
          .min(1e-6)
          .max(1e6),
      K("train", "zero", HERD_FIELD(train.zero),
        "optimizer sharding over ranks: 0 off, 1 AdamW state (ZeRO-1), 2 also gradients (ZeRO-2)")
          .min(0)
          .max(2),
      K("train", "context_parallel", HERD_FIELD(train.context_parallel),
        "ranks sharing each sequence, each holding 1/C of its positions; divides the world size")
          .min(1)
          .max(4096),
      // checkpoint, logging
      K("checkpoint", "every", HERD_FIELD(checkpoint.every), "steps between checkpoints; 0: end")
          .min(0),
      K("checkpoint", "keep_last", HERD_FIELD(checkpoint.keep_last), "checkpoints kept").min(1),
      K("logging", "every", HERD_FIELD(logging.every), "steps between log lines").min(1),
      K("logging", "level", HERD_FIELD(logging.level), "log verbosity")
          .one_of({"debug", "info", "warn", "error"}),
      // task
      K("task", "type", HERD_FIELD(task.type), "what the run optimizes; auto: from model.stack")
          .one_of({"auto", "lm", "mlm", "classify", "image"}),
      K("task", "mask_rate", HERD_FIELD(task.mask_rate),
        "mlm: share of tokens selected (80% [MASK], 10% random, 10% kept)")
          .min(0, true)
          .max(1, true)
          .applies(is_mlm, "task.type: mlm", false),
      K("task", "init_from", HERD_FIELD(task.init_from),
        "a checkpoint whose weights start the run, fresh optimizer (classify: the encoder's)")
          .applies([](const Config& c) { return !c.task.init_from.empty(); }, "", false),
      K("task", "train_file", HERD_FIELD(task.train_file), "classify: labelled jsonl (required)")
          .applies([](const Config& c) { return c.task.type == "classify"; }, "task.type: classify",
                   false),
      K("task", "val_file", HERD_FIELD(task.val_file), "classify: labelled jsonl (optional)")
          .applies([](const Config& c) { return c.task.type == "classify"; }, "task.type: classify",
                   false),
      K("task", "text_field", HERD_FIELD(task.text_field), "classify: the text's jsonl field")
          .applies([](const Config& c) { return c.task.type == "classify"; }, "task.type: classify",
                   false),
      K("task", "pair_field", HERD_FIELD(task.pair_field),
        "classify: the second sentence's field; \"\": none")
          .applies([](const Config& c) { return c.task.type == "classify"; }, "task.type: classify",
                   false),
      K("task", "label_field", HERD_FIELD(task.label_field), "classify: the label's field")
          .applies([](const Config& c) { return c.task.type == "classify"; }, "task.type: classify",
                   false),
  };
}

#undef HERD_FIELD

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string md_cell(std::string s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

}  // namespace

unsigned stack_bit(const std::string& stack) {
  if (stack == "gpt") return kGpt;
  if (stack == "bert") return kBert;
  return stack == "vit" ? kVit : 0u;
}

std::string stack_names(unsigned mask) {
  std::string s;
  for (auto [bit, name] : {std::pair{kGpt, "gpt"}, {kBert, "bert"}, {kVit, "vit"}})
    if (mask & bit) s += (s.empty() ? "" : "|") + std::string(name);
  return s;
}

KeySpec::KeySpec(std::string sec, std::string n, Field f, std::string d)
    : section(std::move(sec)), name(std::move(n)), field(f), doc(std::move(d)) {}

KeySpec& KeySpec::min(double v, bool open) {
  lo = Bound{v, open};
  return *this;
}
KeySpec& KeySpec::max(double v, bool open) {
  hi = Bound{v, open};
  return *this;
}
KeySpec& KeySpec::one_of(std::vector<std::string> c) {
  choices = std::move(c);
  return *this;
}
KeySpec& KeySpec::only(unsigned mask) {
  stacks = mask;
  return *this;
}
KeySpec& KeySpec::applies(bool (*pred)(const Config&), std::string text, bool reject_otherwise) {
  when = pred;
  when_text = std::move(text);
  reject = reject_otherwise;
  return *this;
}
KeySpec& KeySpec::form(std::string type, std::string def) {
  custom_type = std::move(type);
  custom_default = std::move(def);
  return *this;
}

std::string KeySpec::type_name() const {
  if (!choices.empty()) {
    std::string s;
    for (const auto& c : choices) s += (s.empty() ? "" : " | ") + c;
    return s;
  }
  switch (field.index()) {
    case 1:
    case 2:
      return "integer";
    case 3:
      return "number";
    case 4:
      return "bool";
    case 5:
      return "string";
    default:
      return custom_type;
  }
}

std::string KeySpec::default_text() const {
  Config c;
  if (auto f = std::get_if<int64_t& (*)(Config&)>(&field)) return std::to_string((*f)(c));
  if (auto f = std::get_if<uint64_t& (*)(Config&)>(&field)) return std::to_string((*f)(c));
  if (auto f = std::get_if<double& (*)(Config&)>(&field)) return number_text((*f)(c));
  if (auto f = std::get_if<bool& (*)(Config&)>(&field)) return (*f)(c) ? "true" : "false";
  if (auto f = std::get_if<std::string& (*)(Config&)>(&field))
    return (*f)(c).empty() ? "\"\"" : (*f)(c);
  return custom_default;
}

std::string KeySpec::range_text() const {
  if (!lo && !hi) return "";
  if (lo && !hi) return str(lo->open ? "> " : ">= ", number_text(lo->value));
  if (!lo) return str(hi->open ? "< " : "<= ", number_text(hi->value));
  return str(lo->open ? "(" : "[", number_text(lo->value), ", ", number_text(hi->value),
             hi->open ? ")" : "]");
}

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> keys = build_keys();
  return keys;
}

const std::vector<std::string>& config_sections() {
  static const std::vector<std::string> sections = [] {
    std::vector<std::string> s;
    for (const auto& k : config_keys())
      if (s.empty() || s.back() != k.section) s.push_back(k.section);
    return s;
  }();
  return sections;
}

void read_key(ConfigMap& m, const KeySpec& k, Config& c) {
  if (auto f = std::get_if<int64_t& (*)(Config&)>(&k.field)) {
    int64_t& v = (*f)(c);
    const int64_t lo = k.lo ? static_cast<int64_t>(k.lo->value) + (k.lo->open ? 1 : 0) : INT64_MIN;
    const int64_t hi = k.hi ? static_cast<int64_t>(k.hi->value) - (k.hi->open ? 1 : 0) : INT64_MAX;
    v = m.get_int(k.name, v, lo, hi);
  } else if (auto f = std::get_if<uint64_t& (*)(Config&)>(&k.field)) {
    uint64_t& v = (*f)(c);
    v = static_cast<uint64_t>(m.get_int(k.name, static_cast<int64_t>(v), 0));
  } else if (auto f = std::get_if<double& (*)(Config&)>(&k.field)) {
    double& v = (*f)(c);
    Range r;
    if (k.lo) r.lo = k.lo->value, r.lo_open = k.lo->open;
    if (k.hi) r.hi = k.hi->value, r.hi_open = k.hi->open;
    v = m.get_number(k.name, v, r);
  } else if (auto f = std::get_if<bool& (*)(Config&)>(&k.field)) {
    bool& v = (*f)(c);
    v = m.get_bool(k.name, v);
  } else if (auto f = std::get_if<std::string& (*)(Config&)>(&k.field)) {
    std::string& v = (*f)(c);
    v = k.choices.empty() ? m.get_string(k.name, v) : m.get_choice(k.name, v, k.choices);
  }
}

void check_applies(const KeySpec& k, const ConfigMap& m, const Config& c) {
  if (!m.has(k.name)) return;
  if (!(k.stacks & stack_bit(c.model.stack)))
    m.fail(k.name, str("only applies to stack: ", stack_names(k.stacks)));
  if (k.reject && k.when && !k.when(c)) m.fail(k.name, str("only applies to ", k.when_text));
}

bool dumped(const KeySpec& k, const Config& c) {
  return (k.stacks & stack_bit(c.model.stack)) && (!k.when || k.when(c));
}

void dump_key(const KeySpec& k, const Config& cfg, YAML::Node& section) {
  Config& c = const_cast<Config&>(cfg);  // the accessors only read here
  if (auto f = std::get_if<int64_t& (*)(Config&)>(&k.field)) section[k.name] = (*f)(c);
  if (auto f = std::get_if<uint64_t& (*)(Config&)>(&k.field)) section[k.name] = (*f)(c);
  if (auto f = std::get_if<double& (*)(Config&)>(&k.field)) section[k.name] = (*f)(c);
  if (auto f = std::get_if<bool& (*)(Config&)>(&k.field)) section[k.name] = (*f)(c);
  if (auto f = std::get_if<std::string& (*)(Config&)>(&k.field)) section[k.name] = (*f)(c);
}

std::string config_docs_markdown() {
  std::ostringstream o;
  o << "# Config reference\n\n"
    << "Generated by `herd config docs --out docs/config.md` from the key table in\n"
    << "src/config/schema.cpp; a test fails when this file is stale. Every key is optional.\n"
    << "Override any of them on the command line: `--set section.key=value`.\n"
    << "Mixer (block) options live under `model.mixer` and are documented per block in\n"
    << "docs/blocks.md. \"Stacks\" lists where a key may be set; \"applies\" the further\n"
    << "condition under which it takes effect (and is written to the resolved config).\n";
  std::string section;
  for (const auto& k : config_keys()) {
    if (k.section != section) {
      section = k.section;
      o << "\n## " << section << "\n\n"
        << "| key | type | default | range | stacks | meaning |\n"
        << "|---|---|---|---|---|---|\n";
    }
    std::string stacks = k.stacks == kAllStacks ? "all" : stack_names(k.stacks);
    if (k.when && !k.when_text.empty()) stacks += ", applies with " + k.when_text;
    o << "| `" << k.name << "` | " << md_cell(k.type_name()) << " | `" << k.default_text() << "` | "
      << md_cell(k.range_text()) << " | " << md_cell(stacks) << " | " << md_cell(k.doc) << " |\n";
  }
  return o.str();
}

}  // namespace herd::cfg
