// Helpers shared by the long-convolution blocks (hyena, h3, m2).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "core/error.h"

namespace herd {

// u must be [B, L, d_model] with 1 <= L <= l_max (kernels are generated for l_max positions).
void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max);

}  // namespace herd
