// `herd import --check IO.safetensors`: runs an imported model on the reference's inputs and
// compares its logits and loss with the reference outputs, under the tolerances the file's
// metadata states (shared/reference-models/README.md: max|herd - ref| <= rtol * max|ref|,
// float64 against logits_f64 at rtol 1e-9, float32 against logits_f64 at the float32 bounds).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "ckpt/import.h"
#include "config/config.h"

namespace herd::ckpt {

struct ReferenceOutputs {
  torch::Tensor logits, loss;  // [B, L, V], []
};

// The model's logits on io's input_ids and the reference loss convention for `source`
// (safari: mean CE over every position; m2: mean CE over labels > 0, attention_mask ignored as
// the reference does).
ReferenceOutputs run_on_reference_inputs(RefSource source, torch::nn::Module& model,
                                         const std::map<std::string, torch::Tensor>& io);

struct CheckLine {
  std::string what;  // "float64 logits", ...
  double error = 0, bound = 0;
  bool ok() const { return error <= bound; }
};

// Loads the checkpoint in float64 and float32 and compares; one line per quantity.
std::vector<CheckLine> check_against_reference(RefSource source, const std::string& checkpoint,
                                               const std::string& io_path);

}  // namespace herd::ckpt
