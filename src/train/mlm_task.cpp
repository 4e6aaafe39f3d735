// Masked language modelling (BERT stack) on a prepared text dataset: each sample starts with
// [CLS]; a fraction task.mask_rate of the other tokens is selected (80% [MASK], 10% random,
// 10% kept) and predicted. The masking of a sample depends only on (seed, its global index),
// so resumed runs and any number of ranks mask identically.
#include <cmath>

#include "core/log.h"
#include "data/hash.h"
#include "data/text/loader.h"
#include "data/text/manifest.h"
#include "data/text/mlm_mask.h"
#include "data/text/tokenizer.h"
#include "models/bert.h"
#include "train/task.h"
#include "train/text_data.h"
#include "train/trainer.h"

namespace herd {
namespace {

class MlmTask : public Task {
 public:
  MlmTask(const Config& base, const Runtime& rt)
      : rt_(rt),
        loader_(base, base.seq_len()),
        manifest_(loader_.manifest()),
        tokenizer_(load_tokenizer(base, manifest_)),
        model_(nullptr),
        val_(manifest_, base.seq_len()) {
    cfg_ = with_dataset(base, manifest_);
    HERD_CHECK(cfg_.model.num_classes == 0, base.source,
               " model.num_classes: ", cfg_.model.num_classes,
               "; masked-LM pretraining needs 0 (the MLM head)");
    special_.mask_id = tokenizer_.mask_id();
    special_.vocab_size = cfg_.model.vocab_size;
    special_.never_mask = {tokenizer_.pad_id(), tokenizer_.cls_id(), tokenizer_.sep_id(),
                           tokenizer_.eos_id(), tokenizer_.bos_id(), tokenizer_.mask_id()};
    model_ = Bert(cfg_.model);
    model_->to(rt_.device, rt_.param_dtype);
  }

  torch::nn::Module& model() override { return *model_; }
  std::string data_summary() const override {
    return str(loader_.describe(), ", mask rate ", cfg_.task.mask_rate);
  }
  int64_t units_per_row() const override { return cfg_.seq_len(); }

  TaskBatch next_batch(int64_t global, int64_t rank, int64_t world) override {
    const uint64_t first = loader_.samples_drawn() + static_cast<uint64_t>(rank * global / world);
    auto b = loader_.next_batch(global, rank, world);
    return masked(b.input, first, cfg_.train.seed);
  }
  LossOutput loss(const TaskBatch& mb) override {
    auto r = model_->mlm(mb.parts[0].to(rt_.device), mb.parts[1].to(rt_.device));
    // r.correct is already on the host (the masked-position gather in Bert::mlm syncs); a
    // fill on the loss's device keeps it out of a host-to-device copy.
    auto correct =
        torch::full({}, static_cast<double>(r.correct),
                    torch::TensorOptions().dtype(torch::kFloat64).device(r.loss.device()));
    return {r.loss, {{"mlm_acc", {correct, static_cast<double>(r.count)}}}};
  }
  std::string loader_state() const override { return loader_.state(); }
  void restore_loader(const std::string& s) override { loader_.restore(s); }

  bool has_eval() const override { return val_.num_samples() > 0; }
  EvalResult evaluate(int64_t max_batches, const EvalShard& shard) override {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t mb = cfg_.micro_batch();
    const int64_t batches = eval_batch_count(val_.num_samples(), mb, max_batches);
    EvalSums sums(3);  // loss * masked, correct, masked
    {
      SequenceSplitScope split(shard.split);  // [dist] context parallel: blocks see the shard
      for (int64_t i : shard.mine(batches)) {
        const auto row = static_cast<uint64_t>(i * mb);
        val_.seek(row);
        auto b = val_.next_batch(mb);
        // A fixed masking of the validation split, the same at every evaluation; [dist] then
        // this rank's positions of it.
        const TaskBatch mine = masked(b->input, row, cfg_.train.seed ^ 0x5a5a5a5aULL)
                                   .sequence_shard(shard.context_index(), shard.context_parts());
        AutocastScope autocast(rt_);
        auto r = model_->mlm(mine.parts[0].to(rt_.device), mine.parts[1].to(rt_.device));
        const double group_masked = shard.group_sum(static_cast<double>(r.count));
        sums.add(0, shard.loss_term(r.loss.to(torch::kFloat64), group_masked));
        sums.add(1, static_cast<double>(r.correct));  // this shard's masked positions
        sums.add(2, static_cast<double>(r.count));
      }
    }
    model_->train();
    const auto total = sums.total(shard);  // [dist] over every rank's batches
    HERD_CHECK(total[2] > 0, cfg_.data.dir, ": the validation split gave no masked token");
    return {{"loss", total[0] / total[2]}, {"mlm_acc", total[1] / total[2]}};
  }

  std::string data_identity() const override { return tokenizer_.identity(); }
  std::string tokenizer_path() const override { return tokenizer_.path(); }

 private:
  // [CLS] + the first T-1 tokens of each row, masked; row i is global sample first + i.
  TaskBatch masked(const torch::Tensor& input, uint64_t first, uint64_t seed) const {
    const int64_t rows = input.size(0), T = input.size(1);
    auto cls = torch::full({rows, 1}, static_cast<int64_t>(tokenizer_.cls_id()), torch::kInt64);
    auto tokens = torch::cat({cls, input.narrow(1, 0, T - 1)}, 1);
    std::vector<uint64_t> seeds;
    for (int64_t i = 0; i < rows; ++i)
      seeds.push_back(data::mix64(seed ^ data::mix64(first + static_cast<uint64_t>(i))));
    auto m = data::mask_rows(tokens, cfg_.task.mask_rate, special_, seeds);
    return {{m.input, m.labels}};
  }

  Runtime rt_;
  TextTrainData loader_;
  data::DatasetManifest manifest_;  // the first dataset: validation split, tokenizer
  data::Tokenizer tokenizer_;
  data::MaskSpecial special_;
  Bert model_;
  data::ValLoader val_;
};

}  // namespace

std::unique_ptr<Task> make_mlm_task(const Config& cfg, const Runtime& rt) {
  return std::make_unique<MlmTask>(cfg, rt);
}

}  // namespace herd
