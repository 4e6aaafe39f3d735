#include "train/generate.h"

#include <limits>

#include "core/error.h"

namespace herd {

int64_t pick_token(torch::Tensor logits, const SampleOptions& o, at::Generator& gen) {
  if (o.temperature <= 0) return logits.argmax().item<int64_t>();
  const float neg_inf = -std::numeric_limits<float>::infinity();
  logits = logits / o.temperature;
  if (o.top_k > 0 && o.top_k < logits.size(0)) {
    auto kth = std::get<0>(logits.topk(o.top_k)).index({-1});
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    // Keep the likeliest tokens up to mass top_p (always the first one).
    auto [sorted, order] = torch::softmax(logits, 0).sort(0, /*descending=*/true);
    auto before = sorted.cumsum(0) - sorted;  // mass of the tokens ranked above each one
    auto drop = before >= o.top_p;
    logits = logits.index_fill(0, order.index({drop}), neg_inf);
  }
  return torch::multinomial(torch::softmax(logits, 0), 1, /*replacement=*/false, gen)
      .item<int64_t>();
}

std::vector<int64_t> sample_tokens(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    std::vector<int64_t> tokens, const SampleOptions& o, const TokenCallback& on_token) {
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
    const int64_t next = pick_token(logits, o, gen);
    tokens.push_back(next);
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (next == o.stop_token) break;
  }
  return out;
}

std::vector<int64_t> sample_tokens_cached(GptImpl& model, std::vector<int64_t> tokens,
                                          const SampleOptions& o, const TokenCallback& on_token) {
  HERD_CHECK(!tokens.empty(), "generate: the prompt must contain at least one token");
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  const int64_t window =
      o.context > 0 ? std::min(o.context, model.cfg.max_seq_len) : model.cfg.max_seq_len;
  const auto device = model.wte->weight.device();
  auto ids = [&](size_t from) {
    return torch::tensor(std::vector<int64_t>(tokens.begin() + from, tokens.end()))
        .unsqueeze(0)
        .to(device);
  };
  // (Re)starts the caches on the newest tokens that fit, leaving room to grow.
  InferenceState state;
  auto prefill = [&](int64_t keep) {
    state = model.start_inference(1, window);
    return model.step(ids(tokens.size() - keep), state);
  };
  const int64_t n = static_cast<int64_t>(tokens.size());
  auto logits = prefill(std::min(n, window));
  std::vector<int64_t> out;
  for (int64_t i = 0; i < o.max_tokens; ++i) {
    const int64_t next =
        pick_token(logits.select(1, -1).squeeze(0).to(torch::kFloat32).cpu(), o, gen);
    tokens.push_back(next);
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (next == o.stop_token || i + 1 == o.max_tokens) break;
    if (state.length == window)
      logits = prefill(std::max<int64_t>(1, window / 2));
    else
      logits = model.step(ids(tokens.size() - 1), state);
  }
  return out;
}

}  // namespace herd
