#include "models/stack.h"

#include "models/bert.h"
#include "models/gpt.h"
#include "models/vit.h"

namespace herd {

std::shared_ptr<torch::nn::Module> build_model(const ModelConfig& cfg) {
  if (cfg.stack == "bert") return Bert(cfg).ptr();
  if (cfg.stack == "vit") return Vit(cfg).ptr();
  HERD_CHECK(cfg.stack == "gpt", "model.stack: expected gpt|bert|vit, got \"", cfg.stack, "\"");
  return Gpt(cfg).ptr();
}

}  // namespace herd
