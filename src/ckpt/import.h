// Weights trained with the reference code (safari, m2) or exported by herd, turned into a
// herd checkpoint (data/formats/export.md describes the names; `herd import` is the CLI).
//
//   safari: Lightning .ckpt (state_dict with "model." keys + hyper_parameters), a plain
//           state-dict .pt, or .safetensors; ConvLMHeadModel names (backbone.*, lm_head).
//   m2:     HF pytorch_model.bin or .safetensors next to config.json, or a composer
//           checkpoint (state.model with "model." keys); BertForMaskedLM names (bert.*, cls.*).
//   herd:   a directory written by `herd export` (model.safetensors + config.json).
//
// The model config comes from the checkpoint's own hyper-parameters (Lightning
// hyper_parameters.model, HF config.json), from `reference_config` (the same forms in a file),
// or from a herd YAML config. Names map stack by stack (embeddings, norms, heads); each
// layer's mixer uses the per-block map of its conformance adapter (src/conformance/reference.h).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace herd::ckpt {

enum class RefSource { Safari, M2, Herd };
RefSource parse_ref_source(const std::string& name);  // safari | m2 | herd

struct ReferenceCheckpoint {
  std::map<std::string, torch::Tensor> tensors;  // the reference's keys, "model." stripped
  YAML::Node model_config;  // the reference's model hyper-parameters, null when the file has none
};

// Reads any of the file kinds above; errors are one line naming the file.
ReferenceCheckpoint read_reference_checkpoint(RefSource source, const std::string& path);

// The herd YAML config (a `model` section) of a reference model config: safari's `model`
// hyper-parameters (ConvLMHeadModel arguments) or m2's HF BertConfig.
YAML::Node herd_config_from_reference(RefSource source, const YAML::Node& reference,
                                      const std::string& where);

// herd parameter/buffer name -> reference key, for every tensor of `model` (built from cfg).
// Aliased reference keys (tied heads, shared Sin modules) are checked equal, not mapped.
std::map<std::string, std::string> reference_names(RefSource source, const ModelConfig& cfg,
                                                   torch::nn::Module& model);

// Copies the reference tensors into `model` (float32 weights cast to the model's dtype).
// Unknown, missing, unequal-alias and wrong-shape tensors are one-line errors naming the tensor.
void load_reference_weights(RefSource source, const ReferenceCheckpoint& ref,
                            const ModelConfig& cfg, torch::nn::Module& model,
                            const std::string& where);

struct ImportRequest {
  RefSource source = RefSource::Safari;
  std::string checkpoint;        // the reference file (or export directory for herd)
  std::string herd_config;       // optional herd YAML config (its model section is used)
  std::string reference_config;  // optional reference model config (YAML/JSON)
  std::string out;               // the checkpoint directory to write
  std::string tokenizer;         // optional tokenizer.model copied into the checkpoint
};

// One value of the imported run's training recipe (ckpt/import_recipe.h).
struct RecipeValue {
  std::string key;    // "model.mixer.filter_lr", "optimizer.lr"
  std::string value;  // as written into the config
  std::string from;   // "model.ckpt hyper_parameters model.layer.lr", "paper config ..."
};

struct ImportResult {
  std::string checkpoint;  // == out
  Config config;
  std::vector<RecipeValue> recipe;  // empty when a herd config was given (--config)
};

// Reads, builds, loads and writes a weights-only herd checkpoint at request.out (with its
// config.yaml), which `herd eval`, `herd generate` and `herd train --init-from` accept.
ImportResult import_checkpoint(const ImportRequest& request);

}  // namespace herd::ckpt
