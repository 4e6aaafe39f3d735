// Device halves of the fused AdamW step (ops/adamw.h), called with supported parameters of
// one device.
#pragma once

#include <vector>

#include "ops/adamw.h"

namespace herd::ops::detail {

void adamw_step_cpu(const std::vector<AdamWParam>& params);
#ifdef HERD_HAVE_CUDA_KERNELS
void adamw_step_cuda(const std::vector<AdamWParam>& params);
#endif

}  // namespace herd::ops::detail
