// Sequence classification (BERT stack) on labelled jsonl, usually fine-tuning the encoder of
// a pretrained MLM checkpoint (task.init_from). Inputs are [CLS] text [SEP] (pair [SEP]),
// truncated to the sequence length and padded with [PAD] per batch to its longest row; the
// pad mask keeps every real position (and mean pooling) independent of the pads.
#include <algorithm>

#include "ckpt/checkpoint.h"
#include "core/log.h"
#include "data/hash.h"
#include "data/text/labelled_text.h"
#include "data/text/loader.h"
#include "data/text/tokenizer.h"
#include "models/bert.h"
#include "train/task.h"
#include "train/trainer.h"

namespace herd {
namespace {

struct Encoded {
  torch::Tensor tokens, types, labels, lengths;  // [N, T], [N, T], [N], [N] real tokens
  int64_t rows() const { return labels.size(0); }
};

// Rows padded per batch: the columns up to the longest real row, and the pad mask [B, L]
// (true past each row's length) that keeps the pads out of every real position.
struct PaddedRows {
  torch::Tensor tokens, types, pad;
};

PaddedRows trim_to_longest(const torch::Tensor& tokens, const torch::Tensor& types,
                           const torch::Tensor& lengths) {
  const int64_t L = std::max<int64_t>(1, lengths.max().item<int64_t>());
  auto pad = torch::arange(L, lengths.options()).unsqueeze(0) >= lengths.unsqueeze(1);
  return {tokens.narrow(1, 0, L), types.narrow(1, 0, L), pad};
}

class ClassifyTask : public Task {
 public:
  ClassifyTask(const Config& base, const Runtime& rt)
      : rt_(rt), tokenizer_(data::Tokenizer::load(tokenizer_file(base))), model_(nullptr) {
    const auto& t = base.task;
    const data::LabelledFields fields{t.text_field, t.pair_field, t.label_field};
    const auto train = data::read_labelled_jsonl(t.train_file, fields);
    names_ = data::label_names(train);
    HERD_CHECK(names_.size() >= 2, t.train_file, ": ", names_.size(),
               " distinct label(s); classification needs at least 2");
    train_ = encode(train, base, t.train_file);
    if (!t.val_file.empty())
      val_ = encode(data::read_labelled_jsonl(t.val_file, fields), base, t.val_file);

    cfg_ = base;
    if (cfg_.model.vocab_size == 0) cfg_.model.vocab_size = tokenizer_.vocab_size();
    const auto classes = static_cast<int64_t>(names_.size());
    HERD_CHECK(cfg_.model.num_classes == 0 || cfg_.model.num_classes == classes, base.source,
               " model.num_classes: ", cfg_.model.num_classes, " but ", t.train_file, " has ",
               classes, " labels (leave it 0 to take them from the data)");
    cfg_.model.num_classes = classes;
    cfg_.resolved["model"]["vocab_size"] = cfg_.model.vocab_size;
    cfg_.resolved["model"]["num_classes"] = cfg_.model.num_classes;
    model_ = Bert(cfg_.model);
    if (!t.init_from.empty()) {
      auto ck = ckpt::open(t.init_from);
      HERD_CHECK(ck.state.tokenizer_identity == tokenizer_.identity(), t.init_from,
                 ": pretrained with tokenizer ", ck.state.tokenizer_identity, ", this run uses ",
                 tokenizer_.identity());
      load_pretrained_encoder(model_, ck.file("model.pt"));
    }
    model_->to(rt_.device, rt_.param_dtype);
    order_ = data::EpochOrder(static_cast<uint64_t>(train_.rows()), base.train.seed);
  }

  torch::nn::Module& model() override { return *model_; }
  std::string data_summary() const override {
    return str(train_.rows(), " labelled train examples, ", val_.labels.defined() ? val_.rows() : 0,
               " val, ", names_.size(), " classes");
  }
  int64_t units_per_row() const override { return cfg_.seq_len(); }

  TaskBatch next_batch(int64_t global, int64_t rank, int64_t world) override {
    data::check_even_slice(global, rank, world);
    const auto mine = data::rank_rows(static_cast<uint64_t>(global), rank, world);
    std::vector<int64_t> rows;
    for (uint64_t i = mine.begin; i < mine.end; ++i)
      rows.push_back(static_cast<int64_t>(order_.sample_at(i)));
    order_.advance(static_cast<uint64_t>(global));
    auto idx = torch::tensor(rows, torch::kInt64);
    auto lengths = train_.lengths.index_select(0, idx);
    auto batch = trim_to_longest(train_.tokens.index_select(0, idx),
                                 train_.types.index_select(0, idx), lengths);
    return {{batch.tokens, batch.types, train_.labels.index_select(0, idx), lengths}};
  }
  LossOutput loss(const TaskBatch& mb) override {
    // Each micro-batch is cut again to its own longest row.
    auto rows = trim_to_longest(mb.parts[0], mb.parts[1], mb.parts[3]);
    auto logits = model_->classify(rows.tokens.to(rt_.device), rows.types.to(rt_.device),
                                   rows.pad.to(rt_.device));
    auto labels = mb.parts[2].to(rt_.device);
    return {torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels),
            {{"acc", {logits.argmax(-1).eq(labels).sum(), static_cast<double>(labels.size(0))}}}};
  }
  std::string loader_state() const override { return order_.state().to_string(); }
  void restore_loader(const std::string& s) override {
    order_.restore(data::LoaderState::from_string(s), "labelled-text loader");
  }

  bool has_eval() const override { return val_.labels.defined(); }
  EvalResult evaluate(int64_t max_batches, const EvalShard& shard) override {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t n = val_.rows(), mb = cfg_.micro_batch();
    const int64_t batches = eval_batch_count(static_cast<uint64_t>(n), mb, max_batches);
    EvalSums sums(3);  // loss * rows, correct, rows
    for (int64_t b : shard.mine(batches)) {
      const int64_t k = std::min(mb, n - b * mb);
      AutocastScope autocast(rt_);
      auto rows = trim_to_longest(val_.tokens.narrow(0, b * mb, k), val_.types.narrow(0, b * mb, k),
                                  val_.lengths.narrow(0, b * mb, k));
      auto logits = model_
                        ->classify(rows.tokens.to(rt_.device), rows.types.to(rt_.device),
                                   rows.pad.to(rt_.device))
                        .to(torch::kFloat32);
      auto labels = val_.labels.narrow(0, b * mb, k).to(rt_.device);
      sums.add(0, torch::nn::functional::cross_entropy(logits, labels).to(torch::kFloat64) *
                      static_cast<double>(k));
      sums.add(1, logits.argmax(-1).eq(labels).sum());
      sums.add(2, static_cast<double>(k));
    }
    model_->train();
    const auto total = sums.total(shard);  // [dist] over every rank's batches
    return {{"loss", total[0] / total[2]}, {"acc", total[1] / total[2]}};
  }

  std::string data_identity() const override {
    uint64_t h = data::fnv1a64(tokenizer_.identity());
    for (const auto& name : names_) h = data::fnv1a64(name + '\n', h);
    return str(tokenizer_.identity(), "+labels:", data::hex64(h));
  }
  std::string tokenizer_path() const override { return tokenizer_.path(); }

 private:
  static std::string tokenizer_file(const Config& cfg) {
    if (!cfg.data.tokenizer.empty()) return cfg.data.tokenizer;
    HERD_CHECK(!cfg.task.init_from.empty(), cfg.source,
               " data.tokenizer: required for task.type classify unless task.init_from names a "
               "checkpoint (whose tokenizer is used)");
    auto ck = ckpt::open(cfg.task.init_from);
    HERD_CHECK(!ck.state.tokenizer_file.empty(), cfg.task.init_from,
               ": checkpoint has no tokenizer");
    return ck.file(ck.state.tokenizer_file);
  }

  Encoded encode(const std::vector<data::LabelledExample>& examples, const Config& cfg,
                 const std::string& file) const {
    const int64_t T = cfg.seq_len(), N = static_cast<int64_t>(examples.size());
    Encoded e{torch::full({N, T}, static_cast<int64_t>(tokenizer_.pad_id()), torch::kInt64),
              torch::zeros({N, T}, torch::kInt64), torch::empty({N}, torch::kInt64),
              torch::empty({N}, torch::kInt64)};
    auto tok = e.tokens.accessor<int64_t, 2>();
    auto typ = e.types.accessor<int64_t, 2>();
    for (int64_t i = 0; i < N; ++i) {
      const auto& ex = examples[static_cast<size_t>(i)];
      auto it = std::find(names_.begin(), names_.end(), ex.label);
      HERD_CHECK(it != names_.end(), file, ": example ", i + 1, " has label ", ex.label,
                 " which the training file does not have");
      e.labels[i] = static_cast<int64_t>(it - names_.begin());
      std::vector<int64_t> ids{tokenizer_.cls_id()}, types{0};
      auto append = [&](const std::string& text, int64_t type) {
        for (int id : tokenizer_.encode(text)) {
          ids.push_back(id);
          types.push_back(type);
        }
        ids.push_back(tokenizer_.sep_id());
        types.push_back(type);
      };
      append(ex.text, 0);
      if (!cfg.task.pair_field.empty()) append(ex.pair, 1);
      const int64_t n = std::min<int64_t>(T, static_cast<int64_t>(ids.size()));
      e.lengths[i] = n;
      for (int64_t j = 0; j < n; ++j) {
        tok[i][j] = ids[static_cast<size_t>(j)];
        typ[i][j] = types[static_cast<size_t>(j)];
      }
    }
    return e;
  }

  Runtime rt_;
  data::Tokenizer tokenizer_;
  std::vector<std::string> names_;
  Encoded train_, val_;
  Bert model_;
  data::EpochOrder order_;
};

}  // namespace

std::unique_ptr<Task> make_classify_task(const Config& cfg, const Runtime& rt) {
  return std::make_unique<ClassifyTask>(cfg, rt);
}

}  // namespace herd
