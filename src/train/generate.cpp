#include "train/generate.h"

#include "core/error.h"

namespace herd {

std::vector<int64_t> sample_tokens(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    std::vector<int64_t> tokens, const SampleOptions& o) {
  HERD_CHECK(!tokens.empty(), "generate: the prompt must contain at least one token");
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const int64_t start = o.context > 0 && static_cast<int64_t>(tokens.size()) > o.context
                              ? static_cast<int64_t>(tokens.size()) - o.context
                              : 0;
    auto input =
        torch::tensor(std::vector<int64_t>(tokens.begin() + start, tokens.end())).unsqueeze(0);
    auto logits = logits_fn(input).select(1, -1).squeeze(0).to(torch::kFloat32).cpu();
    int64_t next = 0;
    if (o.temperature <= 0) {
      next = logits.argmax().item<int64_t>();
    } else {
      logits = logits / o.temperature;
      if (o.top_k > 0 && o.top_k < logits.size(0)) {
        auto kth = std::get<0>(logits.topk(o.top_k)).index({-1});
        logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
      }
      next = torch::multinomial(torch::softmax(logits, 0), 1, /*replacement=*/false, gen)
                 .item<int64_t>();
    }
    tokens.push_back(next);
    out.push_back(next);
    if (next == o.stop_token) break;
  }
  return out;
}

}  // namespace herd
