// Dropout where the references put it: model.embd_dropout, resid_dropout, mlp_dropout, the
// attention/primer `dropout` on the probabilities and hyena's on the gated products. Off in
// eval (bit-identical to a model without dropout), on in training, and replayed exactly when
// activation checkpointing recomputes a block.
#include <gtest/gtest.h>

#include "config/config.h"
#include "models/activation_checkpoint.h"
#include "models/gpt.h"
#include "models/stack.h"

namespace herd {
namespace {

Config parse(const std::string& yaml) {
  return parse_config(YAML::Load(yaml), "dropout.yaml");
}

// A hybrid GPT: attention, hyena and primer layers.
std::string model_yaml(double p) {
  const auto v = std::to_string(p);
  return "model:\n  vocab_size: 40\n  d_model: 16\n  n_layer: 3\n  n_head: 2\n  max_seq_len: 16\n"
         "  embd_dropout: " +
         v + "\n  resid_dropout: " + v + "\n  mlp_dropout: " + v +
         "\n  mixer: {type: attention, dropout: " + v +
         "}\n"
         "  layers:\n    - {at: [1], mixer: {type: hyena, filter_order: 8, dropout: " +
         v +
         "}}\n"
         "    - {at: [2], mixer: {type: primer, dropout: " +
         v + "}}\n";
}

std::shared_ptr<torch::nn::Module> build(double p) {
  torch::manual_seed(11);
  auto m = build_model(parse(model_yaml(p)).model);
  m->to(torch::kFloat64);
  return m;
}

torch::Tensor tokens() {
  return torch::randint(0, 40, {2, 12}, torch::kLong);
}

torch::Tensor logits(torch::nn::Module& m, const torch::Tensor& t) {
  return dynamic_cast<GptImpl&>(m).forward(t);
}

TEST(Dropout, EvalIsTheModelWithoutDropout) {
  auto with = build(0.3), without = build(0.0);
  const auto t = tokens();
  with->eval();
  without->eval();
  EXPECT_TRUE(torch::equal(logits(*with, t), logits(*without, t)));
  // p = 0 in training is the identity as well (nothing drawn, nothing scaled).
  without->train();
  without->eval();
  auto zero = build(0.0);
  zero->train();
  EXPECT_TRUE(torch::equal(logits(*zero, t), logits(*without, t)));
}

TEST(Dropout, TrainingDropsEveryWhereItIsSet) {
  const auto t = tokens();
  auto base = build(0.0);
  base->eval();
  const auto ref = logits(*base, t);
  // Each kind alone changes the training forward.
  for (const std::string key : {"embd_dropout", "resid_dropout", "mlp_dropout"}) {
    torch::manual_seed(11);
    YAML::Node root = YAML::Load(model_yaml(0.0));
    root["model"][key] = 0.5;
    auto m = build_model(parse_config(root, "dropout.yaml").model);
    m->to(torch::kFloat64);
    m->train();
    EXPECT_FALSE(torch::allclose(logits(*m, t), ref)) << key;
    m->eval();
    EXPECT_TRUE(torch::equal(logits(*m, t), ref)) << key;
  }
  for (int layer = 0; layer < 3; ++layer) {
    YAML::Node root = YAML::Load(model_yaml(0.0));
    if (layer == 0)
      root["model"]["mixer"]["dropout"] = 0.5;
    else
      root["model"]["layers"][layer - 1]["mixer"]["dropout"] = 0.5;
    torch::manual_seed(11);
    auto m = build_model(parse_config(root, "dropout.yaml").model);
    m->to(torch::kFloat64);
    m->train();
    EXPECT_FALSE(torch::allclose(logits(*m, t), ref)) << "mixer dropout of layer " << layer;
  }
}

TEST(Dropout, CheckpointedBlocksReplayTheirMasks) {
  const auto t = tokens();
  auto run = [&](bool checkpointing) {
    auto m = build(0.2);
    m->train();
    ActivationCheckpointing on(checkpointing);
    torch::manual_seed(5);
    auto loss = logits(*m, t).pow(2).mean();
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : m->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(loss.detach(), grads);
  };
  auto [loss_a, grads_a] = run(false);
  auto [loss_b, grads_b] = run(true);
  EXPECT_TRUE(torch::equal(loss_a, loss_b));
  ASSERT_EQ(grads_a.size(), grads_b.size());
  for (size_t i = 0; i < grads_a.size(); ++i) EXPECT_TRUE(torch::equal(grads_a[i], grads_b[i]));
}

TEST(Dropout, ProbabilitiesAreChecked) {
  auto error_of = [](const std::string& yaml) -> std::string {
    try {
      build_model(parse(yaml).model);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string m =
      "model:\n  vocab_size: 40\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n  max_seq_len: 16\n";
  EXPECT_NE(error_of(m + "  resid_dropout: 1.0\n").find("model.resid_dropout"), std::string::npos);
  EXPECT_NE(error_of(m + "  embd_dropout: -0.1\n").find("model.embd_dropout"), std::string::npos);
  EXPECT_NE(error_of(m + "  mixer: {type: attention, dropout: 1.5}\n").find("dropout"),
            std::string::npos);
  EXPECT_NE(error_of(m + "  mixer: {type: hyena, dropout: 1.0}\n").find("[0, 1)"),
            std::string::npos);
}

}  // namespace
}  // namespace herd
