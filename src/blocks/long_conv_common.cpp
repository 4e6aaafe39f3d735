#include "blocks/long_conv_common.h"

namespace herd {

void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max) {
  HERD_CHECK(u.dim() == 3 && u.size(2) == d_model, block,
             ": input must be [B, L, d_model=", d_model, "], got ", u.sizes());
  HERD_CHECK(u.size(1) >= 1 && u.size(1) <= l_max, block, ": sequence length must be in [1, ",
             l_max, "] (max_seq_len), got ", u.size(1));
}

std::map<std::string, std::string> identity_map_with_buffers(const torch::nn::Module& module) {
  std::map<std::string, std::string> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.key();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.key();
  return out;
}

ReferenceModule mirrored_reference(std::shared_ptr<torch::nn::Module> module,
                                   std::function<torch::Tensor(const torch::Tensor&)> fwd) {
  ReferenceModule out;
  out.name_map = identity_map_with_buffers(*module);
  out.module = std::move(module);
  out.forward = [fwd](const std::map<std::string, torch::Tensor>& in) {
    return fwd(ref::input_of(in));
  };
  return out;
}

}  // namespace herd
