#include "blocks/long_conv_common.h"

namespace herd {

void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max) {
  HERD_CHECK(u.dim() == 3 && u.size(2) == d_model, block,
             ": input must be [B, L, d_model=", d_model, "], got ", u.sizes());
  HERD_CHECK(u.size(1) >= 1 && u.size(1) <= l_max, block, ": sequence length must be in [1, ",
             l_max, "] (max_seq_len), got ", u.size(1));
}

}  // namespace herd
