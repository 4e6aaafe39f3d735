#include "layers/mlp.h"

#include "core/error.h"
#include "ops/squared_relu.h"

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
      return ops::squared_relu(x);  // Primer: relu(h)^2
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
  auto drop = [&](const torch::Tensor& a) {
    return dropout > 0 && is_training() ? torch::dropout(a, dropout, true) : a;
  };
  if (act != Activation::squared_relu) return fc2(drop(activate(fc1(x), act)));
  // fc1's bias goes into the fused activation (one pass each way, dbias included); under
  // autocast it takes the matmul's dtype, as the linear would.
  auto h = torch::nn::functional::linear(x, fc1->weight);
  const auto& b = fc1->bias;
  return fc2(drop(ops::squared_relu(h, b.defined() ? b.to(h.scalar_type()) : b)));
}

}  // namespace herd
