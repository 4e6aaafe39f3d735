// Whole models with the fused ops on and off (ops::set_fused_kernels_enabled): a tiny GPT
// (tied and untied heads, gelu and squared-ReLU MLPs), BERT (post-norm, pre-norm, M2-BERT's
// layer) and ViT give the same loss, MLM accuracy and gradients to rounding; and the fused
// ops are really the ones taken.
#include <gtest/gtest.h>

#include <map>

#include "config/config.h"
#include "models/bert.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "ops/add_layer_norm.h"
#include "ops/cross_entropy.h"

namespace herd {
namespace {

Config parse(const std::string& model_yaml) {
  return parse_config(YAML::Load("model:\n" + model_yaml), "fused.yaml");
}

// Restores the fused-kernel switch however a test ends.
struct FusedSwitch {
  bool before;
  explicit FusedSwitch(bool on) : before(ops::set_fused_kernels_enabled(on)) {}
  ~FusedSwitch() { ops::set_fused_kernels_enabled(before); }
};

struct Result {
  double loss = 0;
  int64_t correct = -1;
  std::map<std::string, torch::Tensor> grads;
};

template <typename Model, typename Loss>
Result run(Model& model, bool fused, Loss loss_of) {
  FusedSwitch sw(fused);
  model->zero_grad();
  Result r;
  auto loss = loss_of(r);
  loss.backward();
  r.loss = loss.template item<double>();
  for (const auto& kv : model->named_parameters())
    r.grads[kv.key()] = kv.value().grad().defined() ? kv.value().grad().clone() : torch::Tensor();
  return r;
}

void expect_same(const Result& fused, const Result& ref, double tol, const std::string& what) {
  EXPECT_NEAR(fused.loss, ref.loss, tol * (1 + std::fabs(ref.loss))) << what;
  EXPECT_EQ(fused.correct, ref.correct) << what;
  for (const auto& [name, g] : ref.grads) {
    const auto& f = fused.grads.at(name);
    ASSERT_EQ(f.defined(), g.defined()) << what << " " << name;
    if (!g.defined()) continue;
    const double scale = 1 + g.abs().max().template item<double>();
    EXPECT_LE((f - g).abs().max().template item<double>(), tol * scale) << what << " " << name;
  }
}

const char* kGptModels[] = {
    "  vocab_size: 97\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n",
    "  vocab_size: 97\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n"
    "  tie_embeddings: false\n  mlp: squared_relu\n",
    "  vocab_size: 61\n  d_model: 16\n  n_layer: 3\n  n_head: 2\n  max_seq_len: 16\n"
    "  mixer: {type: hyena}\n  mlp: gelu_tanh\n",
    // A hybrid: every long-convolution mixer (H3's shift and diagonal SSMs, Hyena, causal M2,
    // S4D's zero-order-hold SSM) beside Primer and attention, so each fused op of those blocks
    // is on the loss's path.
    "  vocab_size: 61\n  d_model: 16\n  n_layer: 6\n  n_head: 2\n  max_seq_len: 16\n"
    "  mlp: squared_relu\n  mixer: {type: h3, d_state: 8}\n  layers:\n"
    "    - at: [1]\n      mixer: {type: hyena}\n"
    "    - at: [2]\n      mixer: {type: m2, bidirectional: false, residual_long_conv: true}\n"
    "    - at: [3]\n      mixer: {type: primer}\n"
    "    - at: [4]\n      mixer: {type: attention}\n"
    "    - at: [5]\n      mixer: {type: s4d, d_state: 8}\n",
};

TEST(FusedModels, GptLossAndGradientsMatchWithFusedOpsOff) {
  for (const char* yaml : kGptModels) {
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::manual_seed(1);
      Gpt model(parse(yaml).model);
      model->to(dtype);
      const int64_t V = model->cfg.vocab_size;
      auto tokens = torch::randint(0, V, {3, 13}, torch::kLong);
      auto targets = torch::randint(0, V, {3, 13}, torch::kLong);
      auto loss = [&](Result&) { return model->loss(tokens, targets); };
      auto fused = run(model, true, loss), ref = run(model, false, loss);
      expect_same(fused, ref, dtype == torch::kFloat64 ? 1e-11 : 2e-5,
                  std::string(yaml) + c10::toString(dtype));
      // The logits path (generation) still gives the same loss.
      torch::NoGradGuard no_grad;
      auto logits = model->forward(tokens);
      auto direct = torch::nn::functional::cross_entropy(logits.reshape({-1, V}).to(torch::kDouble),
                                                         targets.reshape({-1}));
      EXPECT_NEAR(direct.item<double>(), fused.loss, 1e-5);
    }
  }
}

TEST(FusedModels, GptTakesTheFusedPaths) {
  torch::manual_seed(2);
  Gpt model(parse(kGptModels[0]).model);
  auto tokens = torch::randint(0, 97, {2, 5}, torch::kLong);
  auto x = model->hidden(tokens).reshape({-1, 32});
  EXPECT_EQ(ops::linear_cross_entropy_path(x, model->head_weight(), {}, tokens.reshape({-1})),
            ops::KernelPath::cpu);
  const auto& ln = model->ln_f;
  EXPECT_EQ(ops::add_layer_norm_path(x, x, ln->weight, ln->bias), ops::KernelPath::cpu);
}

const char* kBertModels[] = {
    "  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
    "  max_seq_len: 12\n  mixer: {type: attention}\n",
    "  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
    "  max_seq_len: 12\n  norm: pre\n  mlp: squared_relu\n  mixer: {type: attention}\n",
    "  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
    "  max_seq_len: 12\n  mixer: {type: m2, filter_order: 8, emb_dim: 5, residual_long_conv: "
    "true}\n  mixer_residual: false\n  mlp: m2_glu\n  mlp_ratio: 2\n  norm_eps: 1.0e-12\n",
};

TEST(FusedModels, BertMlmLossAccuracyAndGradientsMatchWithFusedOpsOff) {
  for (const char* yaml : kBertModels) {
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      torch::manual_seed(3);
      Bert model(parse(yaml).model);
      model->to(dtype);
      auto tokens = torch::randint(0, 40, {4, 12}, torch::kLong);
      auto labels =
          torch::where(torch::rand({4, 12}) < 0.4, tokens, torch::full_like(tokens, kIgnoreLabel));
      auto loss = [&](Result& r) {
        auto out = model->mlm(tokens, labels);
        r.correct = out.correct;
        return out.loss;
      };
      auto fused = run(model, true, loss), ref = run(model, false, loss);
      expect_same(fused, ref, dtype == torch::kFloat64 ? 1e-11 : 2e-5,
                  std::string(yaml) + c10::toString(dtype));
    }
  }
}

TEST(FusedModels, VitLogitsAndGradientsMatchWithFusedOpsOff) {
  torch::manual_seed(4);
  Vit model(parse("  stack: vit\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n  image_size: 8\n"
                  "  patch_size: 4\n  channels: 1\n  num_classes: 3\n  mixer: {type: attention}\n")
                .model);
  model->to(torch::kFloat64);
  auto images = torch::randn({2, 1, 8, 8}, torch::kFloat64);
  auto loss = [&](Result&) { return model->forward(images).square().sum(); };
  expect_same(run(model, true, loss), run(model, false, loss), 1e-11, "vit");
}

}  // namespace
}  // namespace herd
