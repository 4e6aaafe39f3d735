// Helpers shared by the long-convolution blocks (hyena, h3, m2) and their reference adapters.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "blocks/reference.h"
#include "conformance/reference_util.h"
#include "core/error.h"

namespace herd {

// u must be [B, L, d_model] with 1 <= L <= l_max (kernels are generated for l_max positions).
void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max);

// Every parameter and buffer of `module` under its own name.
std::map<std::string, std::string> identity_map_with_buffers(const torch::nn::Module& module);

// A ReferenceModule whose names mirror the reference exactly, running fwd on "input".
ReferenceModule mirrored_reference(std::shared_ptr<torch::nn::Module> module,
                                   std::function<torch::Tensor(const torch::Tensor&)> fwd);

}  // namespace herd
