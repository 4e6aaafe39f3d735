// Activation checkpointing (train.activation_checkpointing: layer): a block's forward keeps
// only its input; backward re-runs the block with grad enabled on that input and
// backpropagates through the recomputation (reentrantly, like torch.utils.checkpoint with
// use_reentrant=True). The recompute runs the same ops on the same input under the forward's
// autocast and RNG states, so gradients, and therefore losses, equal the plain forward's to
// the bit. Parameters' gradients reach their .grad through backward() (torch::autograd::grad
// over parameters does not see through a checkpointed block, as with torch's reentrant
// checkpoint); double backward (create_graph) is refused.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace herd {

// While alive, maybe_checkpointed() on this thread checkpoints (the switch is thread-local,
// like torch's grad mode). The trainer opens one around each training forward; evaluation and
// sampling run without it.
class ActivationCheckpointing {
 public:
  explicit ActivationCheckpointing(bool on);
  ~ActivationCheckpointing();
  ActivationCheckpointing(const ActivationCheckpointing&) = delete;
  ActivationCheckpointing& operator=(const ActivationCheckpointing&) = delete;
  static bool enabled();

 private:
  bool previous_;
};

using BlockFn = std::function<torch::Tensor(const torch::Tensor&)>;
// A block over several tensors (e.g. a residual stream carried as {sum, pending add}); any of
// its inputs and outputs may be undefined.
using BlockListFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

// fn(x) without keeping fn's activations: recomputed in backward. `fn` must be a pure function
// of x and of parameters (it is called again in backward); it is kept alive by the graph.
torch::Tensor checkpointed(BlockFn fn, const torch::Tensor& x);

// checkpointed(fn, x) when ActivationCheckpointing is on, grad mode is enabled and x requires
// grad (without an input that requires grad there is no backward to recompute in); else fn(x).
torch::Tensor maybe_checkpointed(BlockFn fn, const torch::Tensor& x);

// The same for a block over several tensors; the RNG state is that of the first defined
// input's device (and the CPU).
std::vector<torch::Tensor> checkpointed(BlockListFn fn, const std::vector<torch::Tensor>& xs);
std::vector<torch::Tensor> maybe_checkpointed(BlockListFn fn, const std::vector<torch::Tensor>& xs);

}  // namespace herd
