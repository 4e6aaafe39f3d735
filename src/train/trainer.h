// The training run: model, optimizer, data, schedule, evaluation, sampling, checkpoints.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "models/gpt.h"

namespace herd {

struct RunOptions {
  std::string run_dir;     // default: runs/<config file stem>
  std::string resume;      // "" (fresh), "auto" (newest checkpoint if any), or a checkpoint path
  int64_t stop_after = 0;  // > 0: checkpoint and stop once this step is done (time-boxed jobs)
  bool quiet = false;      // no progress lines (tests)
};

struct TrainResult {
  int64_t start_step = 0;      // > 0 when resumed
  int64_t steps = 0;           // optimizer steps completed in total
  std::vector<double> losses;  // train loss of each step run in this process
  double val_loss = 0;         // at the end
  std::string last_checkpoint;
  std::string sample;            // the final sample's text
  double tokens_per_second = 0;  // over this process's steps
};

// Where and how tensors live for a run.
struct Runtime {
  torch::Device device = torch::kCPU;
  torch::Dtype param_dtype = torch::kFloat32;  // fp64 runs keep parameters in fp64
  std::optional<torch::Dtype> autocast_dtype;  // bf16 autocast
  static Runtime from(const TrainConfig& train);
  std::string describe() const;
};

// Resolves model.vocab_size from the dataset and returns the config to build with.
Config with_dataset(Config cfg, const data::DatasetManifest& manifest);

// Mean loss over the validation split (up to cfg.train.eval_batches batches).
double evaluate(Gpt& model, const Config& cfg, const Runtime& rt, data::ValLoader& val);

// Text sampled from the model (prompt "" starts at a document boundary).
std::string sample_text(Gpt& model, const data::Tokenizer& tok, const Runtime& rt,
                        const std::string& prompt, int64_t max_tokens, double temperature,
                        int64_t top_k, uint64_t seed);

TrainResult train(const Config& cfg, const RunOptions& options);

}  // namespace herd
