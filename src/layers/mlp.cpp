#include "layers/mlp.h"

#include "core/error.h"

namespace herd {

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  if (name == "squared_relu") return Activation::squared_relu;
  throw Error(str("activation: expected gelu|gelu_tanh|squared_relu, got \"", name, "\""));
}

torch::Tensor activate(const torch::Tensor& x, Activation act) {
  switch (act) {
    case Activation::gelu:
      return torch::gelu(x);
    case Activation::gelu_tanh:
      return torch::gelu(x, "tanh");
    case Activation::squared_relu:
      return torch::relu(x).square();  // Primer: relu(h)^2
  }
  return x;
}

MlpImpl::MlpImpl(int64_t d_model, int64_t d_hidden, Activation act_, bool bias) : act(act_) {
  fc1 = register_module("fc1",
                        torch::nn::Linear(torch::nn::LinearOptions(d_model, d_hidden).bias(bias)));
  fc2 = register_module("fc2",
                        torch::nn::Linear(torch::nn::LinearOptions(d_hidden, d_model).bias(bias)));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2(activate(fc1(x), act));
}

}  // namespace herd
