#include "ops/blockdiag_linear.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace herd::ops {

torch::Tensor blockdiag_linear(const torch::Tensor& x, const torch::Tensor& weight,
                               int64_t out_features, const torch::Tensor& bias) {
  HERD_CHECK(weight.dim() == 3, "blockdiag_linear: weight must be (nblocks, q, p), got ",
             weight.sizes());
  const int64_t nb = weight.size(0), q = weight.size(1), p = weight.size(2);
  const int64_t in = x.size(-1);
  HERD_CHECK(in <= nb * p, "blockdiag_linear: input has ", in, " features, weight ", weight.sizes(),
             " takes at most ", nb * p);
  HERD_CHECK(out_features <= nb * q, "blockdiag_linear: out_features ", out_features,
             " exceeds nblocks*q = ", nb * q);
  auto lead = x.sizes().vec();
  lead.pop_back();
  auto xp = in < nb * p ? torch::constant_pad_nd(x, {0, nb * p - in}) : x;
  // [N, nb, p] -> [nb, N, p] @ [nb, p, q] -> [nb, N, q] -> [N, nb*q]
  const int64_t n = x.numel() / std::max<int64_t>(in, 1);
  auto xb = xp.reshape({n, nb, p}).transpose(0, 1);
  auto y = torch::bmm(xb, weight.transpose(1, 2)).transpose(0, 1).reshape({n, nb * q});
  if (out_features < nb * q) y = y.narrow(-1, 0, out_features);
  if (bias.defined()) y = y + bias;
  lead.push_back(out_features);
  return y.reshape(lead);
}

}  // namespace herd::ops

namespace herd {

BlockdiagLinearImpl::BlockdiagLinearImpl(int64_t in, int64_t out, int64_t nb, bool use_bias)
    : in_features(in), out_features(out), nblocks(nb) {
  HERD_CHECK(in > 0 && out > 0 && nb > 0, "BlockdiagLinear: in_features ", in, ", out_features ",
             out, " and nblocks ", nb, " must be positive");
  const int64_t p = (in + nb - 1) / nb, q = (out + nb - 1) / nb;
  // Each block is a small nn.Linear(p, q): same uniform(+-1/sqrt(fan_in)) init, fan_in = p.
  const double bound = 1.0 / std::sqrt(static_cast<double>(p));
  weight = register_parameter("weight", torch::empty({nb, q, p}).uniform_(-bound, bound));
  if (use_bias) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    bias = register_parameter("bias", torch::empty({out}).uniform_(-b, b));
  }
}

torch::Tensor BlockdiagLinearImpl::forward(const torch::Tensor& x) {
  HERD_CHECK(x.size(-1) == in_features, "BlockdiagLinear: expected ", in_features,
             " input features, got ", x.size(-1));
  return ops::blockdiag_linear(x, weight, out_features, bias);
}

}  // namespace herd
