// Cached generation (blocks/inference.h): for every mixer, and hybrids, feeding a prompt and
// then one token at a time through GptImpl::step gives the logits of a full forward over the
// whole prefix, in float64 to 1e-10, at every position of a 200-token continuation.
#include <gtest/gtest.h>

#include "config/config.h"
#include "models/gpt.h"

namespace herd {
namespace {

Gpt tiny_gpt(const std::string& mixer_yaml, const std::string& extra = "") {
  const std::string text =
      "model:\n  vocab_size: 37\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
      "  max_seq_len: 256\n  mixer: " +
      mixer_yaml + "\n" + extra;
  Config cfg = parse_config(YAML::Load(text), "test");
  torch::manual_seed(3);
  Gpt model(cfg.model);
  model->to(torch::kFloat64);
  model->eval();
  return model;
}

// Max |cached - full| over every position, relative to the logits' scale (at least 1).
double cached_vs_full(Gpt& model, int64_t batch, int64_t prompt, int64_t steps) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(11);
  auto tokens = torch::randint(0, model->cfg.vocab_size, {batch, prompt + steps}, gen);
  const auto full = model->forward(tokens);
  auto state = model->start_inference(batch, prompt + steps);
  std::vector<torch::Tensor> parts = {model->step(tokens.narrow(1, 0, prompt), state)};
  for (int64_t t = prompt; t < prompt + steps; ++t)
    parts.push_back(model->step(tokens.narrow(1, t, 1), state));
  const auto cached = torch::cat(parts, 1);
  EXPECT_EQ(cached.sizes(), full.sizes());
  const double scale = std::max(1.0, full.abs().max().item<double>());
  return (cached - full).abs().max().item<double>() / scale;
}

struct Case {
  const char* name;
  const char* mixer;
  const char* extra;
};

const Case kCases[] = {
    {"attention", "{type: attention}", ""},
    {"primer", "{type: primer, dconv_width: 3}", ""},
    {"hyena", "{type: hyena, filter_order: 8, emb_dim: 5}", ""},
    {"hyena_order3", "{type: hyena, order: 3, filter_order: 8, short_filter_order: 4}", ""},
    {"h3", "{type: h3, d_state: 8}", ""},
    {"h3_head_dim2 (history fallback)", "{type: h3, d_state: 8, head_dim: 2}", ""},
    {"m2_causal", "{type: m2, filter_order: 8, emb_dim: 5, residual_long_conv: true}", ""},
    {"s4d", "{type: s4d, d_state: 8, n_ssm: 2}", ""},
    {"hybrid h3+attention", "{type: h3, d_state: 8}",
     "  layers:\n    - {at: [1], mixer: {type: attention}}\n"},
    {"hybrid hyena+primer", "{type: hyena, filter_order: 8}",
     "  layers:\n    - {at: [0], mixer: {type: primer}}\n"},
    {"hybrid s4d+attention", "{type: s4d, d_state: 8}",
     "  layers:\n    - {at: [0], mixer: {type: attention}}\n"},
};

TEST(CachedGeneration, EveryMixerMatchesFullRecomputationFloat64) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto model = tiny_gpt(c.mixer, c.extra);
    EXPECT_LE(cached_vs_full(model, 1, 7, 200), 1e-10);
  }
}

TEST(CachedGeneration, PromptShorterThanTheShortConvAndBatches) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto model = tiny_gpt(c.mixer, c.extra);
    EXPECT_LE(cached_vs_full(model, 2, 1, 20), 1e-10);
    EXPECT_LE(cached_vs_full(model, 2, 2, 20), 1e-10);
  }
}

TEST(CachedGeneration, NoPositionalEmbeddingAndCacheLimits) {
  auto model = tiny_gpt("{type: hyena, filter_order: 8}", "  positional: none\n");
  EXPECT_LE(cached_vs_full(model, 1, 5, 30), 1e-10);
  torch::NoGradGuard no_grad;
  auto state = model->start_inference(1, 4);
  model->step(torch::zeros({1, 4}, torch::kLong), state);
  EXPECT_THROW(model->step(torch::zeros({1, 1}, torch::kLong), state), Error);
  EXPECT_THROW(model->start_inference(1, 257), Error);
}

}  // namespace
}  // namespace herd
