// What a run optimizes: a model, its data and its loss. The training loop (trainer.cpp) is
// the same for every task; a task is picked by `task.type` (or from model.stack) and
// registered by name in task.cpp.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "train/eval_shard.h"
#include "train/runtime.h"

namespace herd {

// One batch of any task: tensors that share their leading (row) dimension.
struct TaskBatch {
  std::vector<torch::Tensor> parts;
  int64_t rows() const { return parts.empty() ? 0 : parts.front().size(0); }
  TaskBatch slice(int64_t start, int64_t n) const;
  // Shard `index` of `count` along every part's sequence dimension (dim 1): context parallel.
  TaskBatch sequence_shard(int64_t index, int64_t count) const;
};

// A metric accumulated as sum / count (so micro-batches and ranks can be combined).
struct Tally {
  double sum = 0, count = 0;
  double mean() const { return count > 0 ? sum / count : std::nan(""); }
};
using Tallies = std::map<std::string, Tally>;

// A train metric of one micro-batch whose sum stays a scalar tensor (on the model's device),
// so that the step reads every metric with its loss in one host copy (train/step_totals.h).
struct DeviceTally {
  torch::Tensor sum;
  double count = 0;
};

struct LossOutput {
  torch::Tensor loss;  // scalar, mean over the micro-batch; backward() runs on it
  std::map<std::string, DeviceTally> tallies;  // extra train metrics, e.g. masked-token accuracy
};

// Ordered evaluation results, e.g. {{"loss", 3.2}, {"ppl", 24.5}} or {{"loss"..}, {"acc"..}}.
using EvalResult = std::vector<std::pair<std::string, double>>;
double eval_value(const EvalResult& r, const std::string& name);  // NaN when absent
std::string format_eval(const EvalResult& r);                     // "loss 3.2000 | ppl 24.53"

struct SampleRequest {
  std::string prompt;
  int64_t max_tokens = 64;
  double temperature = 0.8;
  int64_t top_k = 40;
  uint64_t seed = 0;
};

class Task {
 public:
  virtual ~Task() = default;
  // The config resolved against the data (vocab size, number of classes).
  const Config& config() const { return cfg_; }
  virtual torch::nn::Module& model() = 0;
  // One line on the data, for the start-of-run log.
  virtual std::string data_summary() const = 0;
  // Throughput units: tokens per row for text, 1 per image.
  virtual int64_t units_per_row() const = 0;
  virtual std::string unit() const { return "tok"; }

  // Rank `rank`'s rows of the next global batch; every rank advances the same position.
  // During training next_batch and loader_state run on the loader thread (train/prefetch.h),
  // beside loss/evaluate/sample on the caller's: they may touch only the training loader
  // (no model, no global RNG, which would make runs depend on thread timing).
  virtual TaskBatch next_batch(int64_t global_batch, int64_t rank, int64_t world) = 0;
  // Forward and loss of one micro-batch (the caller sets autocast).
  virtual LossOutput loss(const TaskBatch& micro) = 0;
  virtual std::string loader_state() const = 0;
  virtual void restore_loader(const std::string& state) = 0;

  virtual bool has_eval() const = 0;
  // Evaluation over at most max_batches batches (0: the whole split), this rank running its
  // share of them; every rank gets the figures of the whole. Restores train mode.
  virtual EvalResult evaluate(int64_t max_batches, const EvalShard& shard) = 0;
  // Text continuation (language models only).
  virtual std::optional<std::string> sample(const SampleRequest&) { return std::nullopt; }

  // What a checkpoint must match to resume (tokenizer or dataset identity).
  virtual std::string data_identity() const = 0;
  // A file copied into every checkpoint (the tokenizer), or "".
  virtual std::string tokenizer_path() const { return ""; }

 protected:
  Config cfg_;
};

// Builds the task named by cfg.task.type (auto: from model.stack) with its model on rt.
std::unique_ptr<Task> make_task(const Config& cfg, const Runtime& rt);
// The task type `auto` resolves to for a stack: gpt -> lm, bert -> mlm, vit -> image.
std::string resolved_task_type(const Config& cfg);

using TaskFactory = std::function<std::unique_ptr<Task>(const Config&, const Runtime&)>;
// Task registration (one line per task in task.cpp).
struct TaskEntry {
  const char* name;
  const char* stack;  // the stack it trains
  TaskFactory make;
};

std::unique_ptr<Task> make_lm_task(const Config& cfg, const Runtime& rt);
std::unique_ptr<Task> make_mlm_task(const Config& cfg, const Runtime& rt);
std::unique_ptr<Task> make_classify_task(const Config& cfg, const Runtime& rt);
std::unique_ptr<Task> make_image_task(const Config& cfg, const Runtime& rt);
// The lm task on data.synthetic (synthetic_task.cpp); make_lm_task picks it.
std::unique_ptr<Task> make_synthetic_lm_task(const Config& cfg, const Runtime& rt);

}  // namespace herd
