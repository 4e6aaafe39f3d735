// Causal LM on a generated task (data.synthetic, src/data/synthetic/): the LM task's model
// and loss (targets kIgnore where the loss does not look), evaluated on the whole fixed test
// set: loss and accuracy at the answers (val_loss, val_accuracy; passkey also per depth).
#include "data/synthetic/score.h"
#include "data/synthetic/synthetic_data.h"
#include "models/gpt.h"
#include "train/task.h"

namespace herd {
namespace {

namespace syn = data::synthetic;

class SyntheticLmTask : public Task {
 public:
  SyntheticLmTask(const Config& base, const Runtime& rt)
      : rt_(rt), data_(base.data.synthetic, base.train.seed), model_(nullptr) {
    cfg_ = base;
    const auto& s = base.data.synthetic;
    HERD_CHECK(cfg_.model.vocab_size >= s.vocab_size, base.source,
               " model.vocab_size: ", cfg_.model.vocab_size,
               " is smaller than data.synthetic.vocab_size ", s.vocab_size);
    HERD_CHECK(cfg_.model.max_seq_len >= data_.row_len(), base.source,
               " model.max_seq_len: ", cfg_.model.max_seq_len, " is shorter than the rows of ",
               data_.row_len(), " tokens data.synthetic makes (", s.task, ", seq_len ", s.seq_len,
               ")");
    model_ = Gpt(cfg_.model);
    model_->to(rt_.device, rt_.param_dtype);
  }

  torch::nn::Module& model() override { return *model_; }
  std::string data_summary() const override { return data_.describe(); }
  int64_t units_per_row() const override { return data_.row_len(); }

  TaskBatch next_batch(int64_t global, int64_t rank, int64_t world) override {
    auto b = data_.next_batch(global, rank, world);
    return {{b.input, b.target}};
  }
  LossOutput loss(const TaskBatch& mb) override {
    return {model_->loss(mb.parts[0].to(rt_.device), mb.parts[1].to(rt_.device)), {}};
  }
  std::string loader_state() const override { return data_.state(); }
  void restore_loader(const std::string& s) override { data_.restore(s); }

  bool has_eval() const override { return data_.test_size() > 0; }
  // The whole test set every time (max_batches does not apply: a partial set would make the
  // accuracy depend on train.eval_batches).
  EvalResult evaluate(int64_t, const EvalShard& shard) override {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t mb = cfg_.micro_batch();
    const auto n = data_.test_size();
    const int64_t batches = eval_batch_count(n, mb, 0);
    const auto groups = data_.generator().group_names();
    syn::AnswerCounts counts;
    counts.group_correct.assign(groups.size(), 0.0);
    counts.group_count.assign(groups.size(), 0.0);
    EvalSums loss_sum(2);  // loss summed over the answers, answers
    {
      SequenceSplitScope split(shard.split);  // [dist] context parallel: blocks see the shard
      for (int64_t i : shard.mine(batches)) {
        const auto first = static_cast<uint64_t>(i * mb);
        const auto rows =
            static_cast<int64_t>(std::min<uint64_t>(static_cast<uint64_t>(mb), n - first));
        answer_pass(data_.test_batch(first, rows), shard, loss_sum, counts);
      }
    }
    model_->train();
    // [dist] one sum over the ranks: loss, then the counts.
    std::vector<double> local = {counts.correct, counts.count};
    for (size_t g = 0; g < groups.size(); ++g) {
      local.push_back(counts.group_correct[g]);
      local.push_back(counts.group_count[g]);
    }
    const auto loss_total = loss_sum.total(shard);
    const double loss = loss_total[0] / loss_total[1];
    const auto total = shard.reduce(local);
    EvalResult r = {{"loss", loss}, {"accuracy", total[1] > 0 ? total[0] / total[1] : 0.0}};
    for (size_t g = 0; g < groups.size(); ++g) {
      const double c = total[2 + 2 * g], k = total[3 + 2 * g];
      r.emplace_back("accuracy_" + groups[g], k > 0 ? c / k : 0.0);
    }
    return r;
  }

  std::string data_identity() const override { return data_.identity(); }

 private:
  // Scores one test batch at its answers into `counts`, their loss and number into `loss_sum`.
  // [dist] Context parallel: this rank runs its shard of positions and sums the loss at the
  // answers there; the predictions are gathered into whole rows, scored by the first shard.
  void answer_pass(const syn::SyntheticBatch& b, const EvalShard& shard, EvalSums& loss_sum,
                   syn::AnswerCounts& counts) {
    const TaskBatch mine = TaskBatch{{b.input, b.target, b.answer}}.sequence_shard(
        shard.context_index(), shard.context_parts());
    torch::Tensor h;
    {
      AutocastScope autocast(rt_);
      h = model_->hidden(mine.parts[0].to(rt_.device));
    }
    const auto at = mine.parts[2].to(rt_.device);
    const auto logits =
        torch::nn::functional::linear(h.index({at}), model_->head_weight().to(h.scalar_type()))
            .to(torch::kFloat64);
    auto predicted = mine.parts[1].to(rt_.device);
    const auto targets = predicted.index({at});
    loss_sum.add(0, torch::nn::functional::cross_entropy(
                        logits, targets,
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)));
    loss_sum.add(1, static_cast<double>(targets.numel()));
    predicted = all_positions(predicted.masked_scatter(at, logits.argmax(-1))).cpu();
    if (shard.first_shard())
      syn::score_answers(predicted, b.target, b.answer, b.group,
                         data_.generator().whole_example_accuracy(), counts);
  }

  Runtime rt_;
  syn::SyntheticData data_;
  Gpt model_;
};

}  // namespace

std::unique_ptr<Task> make_synthetic_lm_task(const Config& cfg, const Runtime& rt) {
  return std::make_unique<SyntheticLmTask>(cfg, rt);
}

}  // namespace herd
