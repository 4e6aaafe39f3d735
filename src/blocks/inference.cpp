#include "blocks/inference.h"

#include "blocks/distill.h"
#include "blocks/mixer.h"
#include "core/error.h"
#include "ops/long_conv.h"

namespace herd {

torch::Tensor SequenceMixerImpl::forward_padded(const torch::Tensor& x, const torch::Tensor& pad) {
  return forward(x.masked_fill(pad.unsqueeze(-1), 0));
}

std::shared_ptr<MixerCache> SequenceMixerImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                              const torch::TensorOptions& opt) {
  auto c = std::make_shared<HistoryCache>();
  c->max_len = max_len;
  c->x = torch::zeros({batch, max_len, 0}, opt);  // width known at the first step
  return c;
}

torch::Tensor SequenceMixerImpl::step(const torch::Tensor& x, MixerCache& cache) {
  auto& c = dynamic_cast<HistoryCache&>(cache);
  const int64_t T = x.size(1), n = c.length + T;
  HERD_CHECK(n <= c.max_len, "generate: ", n, " positions exceed the cache's ", c.max_len);
  if (c.x.size(2) != x.size(2)) c.x = torch::zeros({x.size(0), c.max_len, x.size(2)}, x.options());
  c.x.narrow(1, c.length, T).copy_(x);
  c.length = n;
  return forward(c.x.narrow(1, 0, n)).narrow(1, n - T, T);
}

namespace {
thread_local int64_t distill_order = 0;
thread_local double distill_worst_error = 0;
}  // namespace

DistillScope::DistillScope(int64_t order)
    : previous_order_(distill_order), previous_error_(distill_worst_error) {
  HERD_CHECK(order >= 0, "distill: order must be >= 0, got ", order);
  distill_order = order;
  distill_worst_error = 0;
}
DistillScope::~DistillScope() {
  distill_order = previous_order_;
  distill_worst_error = previous_error_;
}
int64_t DistillScope::order() {
  return distill_order;
}
double DistillScope::worst_error() {
  return distill_worst_error;
}

FilterStream::FilterStream(torch::Tensor k, torch::Tensor D, int64_t batch, int64_t max_len) {
  if (distill_order == 0) {
    exact_.emplace(std::move(k), std::move(D), batch, max_len);
    return;
  }
  const auto modal = distill_filter(k, distill_order);
  relative_error = modal.relative_error;
  distill_worst_error = std::max(distill_worst_error, relative_error);
  // The recurrence runs in the filter's own dtype family (complex double for float64).
  const auto complex =
      k.scalar_type() == torch::kFloat64 ? torch::kComplexDouble : torch::kComplexFloat;
  modal_.emplace(modal.Ct.to(k.device(), complex), modal.dA.to(k.device(), complex), std::move(D),
                 batch);
}

torch::Tensor FilterStream::push(const torch::Tensor& u) {
  return exact_ ? exact_->push(u) : modal_->push(u);
}

ConvStream::ConvStream(torch::Tensor k, torch::Tensor D, int64_t batch, int64_t max_len)
    : k_(std::move(k)), D_(std::move(D)) {
  k_flipped_ = k_.flip(1).contiguous();
  stream_ = torch::zeros({batch, k_.size(0), max_len}, k_.options());
}

torch::Tensor ConvStream::push(const torch::Tensor& u) {
  const int64_t T = u.size(2), n = length_ + T, Lk = k_.size(1);
  HERD_CHECK(n <= stream_.size(2), "generate: ", n, " positions exceed the cache's ",
             stream_.size(2));
  stream_.narrow(2, length_, T).copy_(u);
  torch::Tensor y;
  if (T == 1) {
    // y[t] = sum_{j < m} k[j] u[t - j]: the last m inputs against the first m taps, reversed.
    const int64_t m = std::min(n, Lk);
    auto window = stream_.narrow(2, n - m, m);                  // [B, C, m]
    auto taps = k_flipped_.narrow(1, Lk - m, m);                // [C, m]
    y = at::matmul(window.transpose(0, 1), taps.unsqueeze(-1))  // [C, B, 1]
            .transpose(0, 1);
  } else {
    y = ops::long_conv({stream_.narrow(2, 0, n), k_.narrow(1, 0, std::min(n, Lk))})
            .narrow(2, length_, T);
  }
  if (D_.defined()) y = y + D_.view({1, -1, 1}) * u;
  length_ = n;
  return y;
}

ShortConvStream::ShortConvStream(torch::Tensor weight, torch::Tensor bias, int64_t batch)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  tail_ = torch::zeros({batch, weight_.size(0), weight_.size(2) - 1}, weight_.options());
}

torch::Tensor ShortConvStream::push(const torch::Tensor& z) {
  const int64_t K = weight_.size(2);
  auto x = torch::cat({tail_, z}, 2);  // [B, C, K-1+T]
  const int64_t one = 1, zero = 0;
  auto y = torch::conv1d(x, weight_, bias_, /*stride=*/at::IntArrayRef(one),
                         /*padding=*/at::IntArrayRef(zero), /*dilation=*/at::IntArrayRef(one),
                         /*groups=*/weight_.size(0));
  tail_ = x.narrow(2, x.size(2) - (K - 1), K - 1).clone();
  return y;
}

DiagSSMStream::DiagSSMStream(torch::Tensor Ct, torch::Tensor dA, torch::Tensor D, int64_t batch)
    : Ct_(std::move(Ct)), dA_(std::move(dA)), D_(std::move(D)) {
  state_ = torch::zeros({batch, Ct_.size(0), Ct_.size(1)}, Ct_.options());
}

torch::Tensor DiagSSMStream::push(const torch::Tensor& u) {
  std::vector<torch::Tensor> out;
  out.reserve(u.size(2));
  for (int64_t t = 0; t < u.size(2); ++t) {
    auto ut = u.select(2, t);                  // [B, C]
    state_ = dA_ * state_ + ut.unsqueeze(-1);  // complex [B, C, N2]
    out.push_back(2 * torch::real((state_ * Ct_).sum(-1)));
  }
  auto y = torch::stack(out, 2);
  if (D_.defined()) y = y + D_.view({1, -1, 1}) * u;
  return y;
}

}  // namespace herd
