// Versioned, atomic checkpoints (layout: data/formats/checkpoint.md).
//
// RUN/checkpoints/step_00000100/ holds model.pt, optimizer.pt, rng.pt, state.yaml,
// config.yaml, tokenizer.model and, written last, manifest.yaml (size and checksum of each,
// ckpt/manifest.h). It is written under a temporary name with every write checked, fsynced,
// then renamed into place; RUN/checkpoints/latest names the newest one. Loading verifies the
// manifest, so a torn, truncated or bit-flipped checkpoint is refused with the reason.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace herd::ckpt {

constexpr const char* kFormat = "herd-checkpoint";
constexpr int64_t kVersion = 1;

// Scalars that travel with the weights.
struct TrainState {
  int64_t step = 0;          // optimizer steps completed
  int64_t tokens_seen = 0;   // global
  std::string loader_state;  // data::LoaderState::to_string()
  std::string tokenizer_identity;
  std::string tokenizer_file;  // file name inside the checkpoint ("" when none)
};

struct SaveRequest {
  std::string checkpoints_dir;  // RUN/checkpoints
  TrainState state;
  torch::nn::Module* model = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;  // may be null (weights-only export)
  YAML::Node config;                             // resolved config
  std::string tokenizer_path;                    // copied in when non-empty
  int64_t keep_last = 3;
};

// Writes the checkpoint atomically, updates `latest`, prunes to keep_last (never the new one;
// oldest first, each renamed aside before it is removed) and removes temporaries left by a
// crashed save. Returns its path. A failed write (full disk) removes the partial copy and
// throws, naming the file and the reason; earlier checkpoints are untouched.
std::string save(const SaveRequest& request);

// A loaded checkpoint directory (tensors are read on demand).
struct Checkpoint {
  std::string path;
  TrainState state;
  YAML::Node config;  // the resolved config it was trained with

  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Verifies the manifest (sizes and checksums), then reads state.yaml and config.yaml of a
// checkpoint directory; errors name the checkpoint and the reason.
Checkpoint open(const std::string& path);

// The newest checkpoint that verifies, and the newer ones passed over with their reasons
// ("step_00000600: model.pt: checksum ... (corrupt)").
struct ResumePick {
  std::optional<std::string> path;
  std::vector<std::string> skipped;
};
ResumePick pick_latest(const std::string& checkpoints_dir);
// pick_latest(), logging a warning for each skipped checkpoint; nullopt when none verifies.
std::optional<std::string> find_latest(const std::string& checkpoints_dir);
// Every checkpoint with a manifest whose file sizes match, oldest first (cheap; no checksums).
std::vector<std::string> list_complete(const std::string& checkpoints_dir);
// Every step_* directory, complete or not, oldest first.
std::vector<std::string> list_step_dirs(const std::string& checkpoints_dir);

// Copies weights into `model` by name; every tensor must be present with its shape.
void load_model(const Checkpoint& ck, torch::nn::Module& model);
void load_optimizer(const Checkpoint& ck, torch::optim::Optimizer& optimizer);
// RNG states (CPU, and CUDA when present in both the file and this process).
void save_rng(const std::string& path);
void load_rng(const Checkpoint& ck);

// Throws a one-line error naming the first model key whose value differs between two
// resolved configs (resume must train the same shape).
void check_same_model(const YAML::Node& saved, const YAML::Node& current, const std::string& where);

}  // namespace herd::ckpt
