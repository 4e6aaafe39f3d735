// The training run: one loop for every task (src/train/task.h): optimizer, schedule,
// gradient accumulation, evaluation, sampling, metrics and checkpoints.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/text/loader.h"
#include "data/text/manifest.h"
#include "data/text/tokenizer.h"
#include "models/gpt.h"
#include "train/runtime.h"
#include "train/task.h"

namespace herd {

struct RunOptions {
  std::string run_dir;     // default: runs/<config file stem>
  std::string resume;      // "" (fresh), "auto" (newest checkpoint if any), or a checkpoint path
  int64_t stop_after = 0;  // > 0: checkpoint and stop once this step is done (time-boxed jobs)
  bool quiet = false;      // no progress lines (tests)
  bool bench = false;      // herd bench train: no checkpoint, evaluation or sample at the end
  bool overwrite = false;  // start over in a run dir that holds checkpoints (deletes them)
};

struct TrainResult {
  int64_t start_step = 0;      // > 0 when resumed
  int64_t steps = 0;           // optimizer steps completed in total
  std::vector<double> losses;  // train loss of each step run in this process
  std::map<std::string, std::vector<double>> step_metrics;  // e.g. "mlm_acc" of each step
  double val_loss = 0;  // at the end (NaN without a validation split)
  EvalResult val;       // every final evaluation metric
  std::string last_checkpoint;
  std::string sample;                // the final sample's text (language models)
  double tokens_per_second = 0;      // units (tokens, images) per second over this process's steps
  std::vector<double> step_seconds;  // wall time of each step run in this process
  int64_t units_per_step = 0;        // tokens (images) per optimizer step, all ranks
  double flops_per_unit = 0;         // training FLOPs per token (config check's formula)
  int stop_signal = 0;               // > 0: stopped on this signal after a checkpoint
  int64_t bad_steps = 0;             // steps skipped for a non-finite loss or gradient norm
  // herd bench train: each rank's peak tensor memory and peak RSS (bytes), by rank.
  std::vector<int64_t> rank_peak_tensor_bytes, rank_peak_rss_bytes;
};

// Throws unless `run_dir` may be trained into with these options: a run dir holding
// checkpoints needs --resume or --overwrite (never an implicit restart over earlier work).
void check_run_dir(const std::string& run_dir, const RunOptions& options);

// Installs the stop handlers (train/stop_signal.h); on SIGTERM, SIGINT or SIGUSR1 the run
// finishes its step, checkpoints and returns with stop_signal set.
TrainResult train(const Config& cfg, const RunOptions& options);

// Builds the task a checkpoint was trained with (its own config, `cfg`'s data and train
// sections) and loads its weights; for `herd eval`.
std::unique_ptr<Task> task_from_checkpoint(const std::string& checkpoint, const Config& cfg);

// --- language-model helpers (GPT stack) ---

// Resolves model.vocab_size from the dataset and returns the config to build with.
Config with_dataset(Config cfg, const data::DatasetManifest& manifest);
// The tokenizer a dataset was made with (or cfg.data.tokenizer), checked against it.
data::Tokenizer load_tokenizer(const Config& cfg, const data::DatasetManifest& manifest);
// Mean next-token loss over the validation split (at most max_batches batches; 0: all), this
// rank running its share of the batches.
double lm_validation_loss(Gpt& model, const Config& cfg, const Runtime& rt, data::ValLoader& val,
                          int64_t max_batches, const EvalShard& shard);
// Text sampled from the model (prompt "" starts at a document boundary).
std::string sample_text(Gpt& model, const data::Tokenizer& tok, const Runtime& rt,
                        const SampleRequest& request);

}  // namespace herd
