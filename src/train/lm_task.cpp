// Causal language modelling (GPT stack) on a prepared text dataset: next-token loss,
// validation perplexity, sampling.
#include <cmath>

#include "core/log.h"
#include "data/text/loader.h"
#include "data/text/manifest.h"
#include "data/text/tokenizer.h"
#include "models/gpt.h"
#include "train/generate.h"
#include "train/task.h"
#include "train/text_data.h"
#include "train/trainer.h"

namespace herd {
namespace {

// llm.c folders carry no tokenizer: without data.tokenizer, training and eval work and
// sampling is skipped.
std::optional<data::Tokenizer> lm_tokenizer(const Config& cfg, const data::DatasetManifest& m) {
  if (data::is_llmc_folder(m) && cfg.data.tokenizer.empty()) return std::nullopt;
  return load_tokenizer(cfg, m);
}

class LmTask : public Task {
 public:
  LmTask(const Config& base, const Runtime& rt)
      : rt_(rt),
        loader_(base, base.seq_len()),
        manifest_(loader_.manifest()),
        tokenizer_(lm_tokenizer(base, manifest_)),
        model_(nullptr),
        val_(manifest_, base.seq_len()) {
    cfg_ = with_dataset(base, manifest_);
    model_ = Gpt(cfg_.model);
    model_->to(rt_.device, rt_.param_dtype);
    if (!has_eval())
      log::warn(manifest_.manifest_path(), ": the validation split has no sample of ",
                cfg_.seq_len() + 1,
                " tokens; evaluation is skipped (prepare with a larger --val-fraction)");
  }

  torch::nn::Module& model() override { return *model_; }
  std::string data_summary() const override { return loader_.describe(); }
  int64_t units_per_row() const override { return cfg_.seq_len(); }

  TaskBatch next_batch(int64_t global, int64_t rank, int64_t world) override {
    auto b = loader_.next_batch(global, rank, world);
    return {{b.input, b.target}};
  }
  LossOutput loss(const TaskBatch& mb) override {
    return {model_->loss(mb.parts[0].to(rt_.device), mb.parts[1].to(rt_.device)), {}};
  }
  std::string loader_state() const override { return loader_.state(); }
  void restore_loader(const std::string& s) override { loader_.restore(s); }

  bool has_eval() const override { return val_.num_samples() > 0; }
  EvalResult evaluate(int64_t max_batches, const EvalShard& shard) override {
    HERD_CHECK(has_eval(), cfg_.data.dir,
               ": the validation split has no sample of seq_len+1 tokens");
    const double loss = lm_validation_loss(model_, cfg_, rt_, val_, max_batches, shard);
    return {{"loss", loss}, {"ppl", std::exp(loss)}};
  }
  std::optional<std::string> sample(const SampleRequest& r) override {
    if (tokenizer_) return sample_text(model_, *tokenizer_, rt_, r);
    if (!told_no_sampling_)
      log::info("sampling skipped: ", manifest_.dir,
                " is a folder of llm.c shards without a tokenizer (set data.tokenizer to sample)");
    told_no_sampling_ = true;
    return std::nullopt;
  }

  std::string data_identity() const override {
    return tokenizer_ ? tokenizer_->identity() : manifest_.tokenizer_identity;
  }
  std::string tokenizer_path() const override { return tokenizer_ ? tokenizer_->path() : ""; }

 private:
  Runtime rt_;
  TextTrainData loader_;
  data::DatasetManifest manifest_;            // the first dataset: validation split, tokenizer
  std::optional<data::Tokenizer> tokenizer_;  // none: llm.c shards without data.tokenizer
  Gpt model_;
  data::ValLoader val_;
  bool told_no_sampling_ = false;
};

}  // namespace

Config with_dataset(Config cfg, const data::DatasetManifest& manifest) {
  if (cfg.model.vocab_size == 0) {
    cfg.model.vocab_size = manifest.vocab_size;
  } else if (cfg.model.vocab_size < manifest.vocab_size) {
    throw Error(str(cfg.source, " model.vocab_size: ", cfg.model.vocab_size,
                    " is smaller than the dataset's ", manifest.vocab_size, " (",
                    manifest.manifest_path(), ")"));
  }
  cfg.resolved["model"]["vocab_size"] = cfg.model.vocab_size;
  return cfg;
}

double lm_validation_loss(Gpt& model, const Config& cfg, const Runtime& rt, data::ValLoader& val,
                          int64_t max_batches, const EvalShard& shard) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t mb = cfg.micro_batch();
  const int64_t batches = eval_batch_count(val.num_samples(), mb, max_batches);
  EvalSums sums(2);  // loss * rows, rows
  {
    SequenceSplitScope split(shard.split);  // [dist] context parallel: blocks see the shard
    for (int64_t i : shard.mine(batches)) {
      val.seek(static_cast<uint64_t>(i * mb));
      auto batch = val.next_batch(mb);
      const auto n = static_cast<double>(batch->input.size(0));
      const TaskBatch mine = TaskBatch{{batch->input, batch->target}}.sequence_shard(
          shard.context_index(), shard.context_parts());
      AutocastScope autocast(rt);
      const auto loss = model->loss(mine.parts[0].to(rt.device), mine.parts[1].to(rt.device));
      sums.add(0, shard.loss_term(loss.to(torch::kFloat64), n));
      sums.add(1, shard.first_shard() ? n : 0.0);
    }
  }
  model->train();
  const auto total = sums.total(shard);  // [dist] over every rank's batches
  HERD_CHECK(total[1] > 0, cfg.data.dir,
             ": the validation split has no sample of seq_len+1 tokens");
  return total[0] / total[1];
}

std::string sample_text(Gpt& model, const data::Tokenizer& tok, const Runtime& rt,
                        const SampleRequest& r) {
  model->eval();
  std::vector<int64_t> ids{tok.eos_id()};  // a document boundary: what follows is a new text
  for (int id : tok.encode(r.prompt)) ids.push_back(id);
  SampleOptions o;
  o.max_tokens = r.max_tokens;
  o.temperature = r.temperature;
  o.top_k = r.top_k;
  o.seed = r.seed;
  o.context = model->cfg.max_seq_len;
  o.stop_token = tok.eos_id();
  std::vector<int64_t> out;
  {
    AutocastScope autocast(rt);
    out = sample_tokens_cached(*model, ids, o);  // per-layer caches (blocks/inference.h)
  }
  model->train();
  std::vector<int> text_ids;
  for (int64_t id : out)
    if (id != tok.eos_id()) text_ids.push_back(static_cast<int>(id));
  return r.prompt + tok.decode(text_ids);
}

data::Tokenizer load_tokenizer(const Config& cfg, const data::DatasetManifest& manifest) {
  const std::string path =
      cfg.data.tokenizer.empty() ? manifest.tokenizer_path : cfg.data.tokenizer;
  HERD_CHECK(!path.empty(), manifest.dir,
             ": a folder of llm.c shards has no tokenizer; this task needs one (data.tokenizer)");
  auto tok = data::Tokenizer::load(path);
  if (data::is_llmc_folder(manifest)) return tok;  // nothing recorded to compare with
  HERD_CHECK(tok.identity() == manifest.tokenizer_identity, path, ": tokenizer identity ",
             tok.identity(), " differs from the one the dataset was made with (",
             manifest.tokenizer_identity, ", ", manifest.manifest_path(), ")");
  // Refused up front: a model over more ids than the tokenizer decodes fails when it samples.
  HERD_CHECK(tok.vocab_size() >= manifest.vocab_size, manifest.manifest_path(),
             " vocab_size: ", manifest.vocab_size, " exceeds the vocabulary of its tokenizer ",
             path, " (", tok.vocab_size(), " ids); fix the manifest or the tokenizer");
  return tok;
}

std::unique_ptr<Task> make_lm_task(const Config& cfg, const Runtime& rt) {
  if (cfg.data.synthetic.enabled()) return make_synthetic_lm_task(cfg, rt);
  return std::make_unique<LmTask>(cfg, rt);
}

}  // namespace herd
