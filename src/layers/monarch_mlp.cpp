#include "layers/monarch_mlp.h"

#include "core/error.h"

namespace herd {

MonarchGluMlpImpl::MonarchGluMlpImpl(int64_t d, int64_t inter, int64_t nblocks, double eps,
                                     bool residual_norm)
    : d_model(d), d_intermediate(inter) {
  HERD_CHECK(d > 0 && inter > 0, "MonarchGluMlp: d_model ", d, " and d_intermediate ", inter,
             " must be positive");
  gated_layers = register_module("gated_layers", BlockdiagLinear(d, 2 * inter, nblocks, false));
  wo = register_module("wo", BlockdiagLinear(inter, d, nblocks, true));
  if (residual_norm)
    layernorm = register_module("layernorm",
                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(eps)));
}

torch::Tensor MonarchGluMlpImpl::forward(const torch::Tensor& x) {
  auto h = gated_layers(x);
  // The first I features are gated (exact erf GELU); they come from blocks 0..nb/2-1.
  auto a =
      torch::gelu(h.narrow(-1, 0, d_intermediate)) * h.narrow(-1, d_intermediate, d_intermediate);
  if (dropout > 0 && is_training()) a = torch::dropout(a, dropout, true);
  return layernorm ? layernorm(wo(a) + x) : wo(a);
}

}  // namespace herd
