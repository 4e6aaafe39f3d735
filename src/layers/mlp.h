// The position-wise MLP of a block: fc1 (D -> F), activation, fc2 (F -> D). With squared_relu,
// fc1's bias is added by the fused activation (ops/squared_relu.h); parameter names are unchanged.
#pragma once

#include <torch/torch.h>

#include <string>

namespace herd {

enum class Activation { gelu, gelu_tanh, squared_relu };
Activation parse_activation(const std::string& name);  // gelu | gelu_tanh | squared_relu

torch::Tensor activate(const torch::Tensor& x, Activation act);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t d_model, int64_t d_hidden, Activation act, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);

  Activation act;
  double dropout = 0.0;  // on the hidden activation before fc2, in training (model.mlp_dropout)
  torch::nn::Linear fc1{nullptr};  // (F, D)
  torch::nn::Linear fc2{nullptr};  // (D, F)
};
TORCH_MODULE(Mlp);

}  // namespace herd
