// GPT stack options for the block zoo: the m2_glu MLP (M2's block-diagonal GLU without its
// own residual and post-LN) and its config keys.
#include <gtest/gtest.h>

#include "config/config.h"
#include "models/gpt.h"

namespace herd {
namespace {

Config parse(const std::string& model_yaml) {
  return parse_config(YAML::Load("model:\n" + model_yaml), "stack.yaml");
}

std::string error_of(const std::string& model_yaml) {
  try {
    parse(model_yaml);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StackOptions, M2GluBlockIsPreNormGluWithoutInnerResidual) {
  const Config cfg = parse(
      "  vocab_size: 40\n  d_model: 16\n  n_layer: 1\n  max_seq_len: 8\n  mlp: m2_glu\n"
      "  mlp_ratio: 2\n  mlp_nblocks: 4\n  mixer: {type: attention}\n");
  torch::manual_seed(3);
  Gpt model(cfg.model);
  auto* block = model->h[0]->as<GptBlockImpl>();
  ASSERT_TRUE(block->glu_mlp);
  ASSERT_FALSE(block->mlp);
  EXPECT_FALSE(block->glu_mlp->layernorm) << "the stack's ln_2 and residual replace M2's";
  // Parameters: gated_layers (4, 2*32/4, 16/4) and wo (4, 16/4, 32/4) + bias (16).
  auto params = block->named_parameters();
  EXPECT_EQ(params["mlp.gated_layers.weight"].sizes(), torch::IntArrayRef({4, 16, 4}));
  EXPECT_EQ(params["mlp.wo.weight"].sizes(), torch::IntArrayRef({4, 4, 8}));
  EXPECT_EQ(params["mlp.wo.bias"].sizes(), torch::IntArrayRef({16}));
  EXPECT_FALSE(params.contains("mlp.layernorm.weight"));

  block->to(torch::kFloat64);
  params = block->named_parameters();
  auto x = torch::randn({2, 5, 16}, torch::kFloat64);
  auto y = x + block->mixer->forward(block->ln_1(x));
  // Written out from the definition: h = BD(x), a = gelu(h[:F]) * h[F:], out = BD(a) + b.
  auto bd = [](const torch::Tensor& in, const torch::Tensor& w) {
    const int64_t nb = w.size(0), p = w.size(2);
    auto blocks = in.reshape({in.size(0), in.size(1), nb, p});
    return torch::einsum("blnp,nqp->blnq", {blocks, w}).flatten(2);
  };
  auto h = bd(block->ln_2(y), params["mlp.gated_layers.weight"]);
  auto a = torch::gelu(h.narrow(-1, 0, 32)) * h.narrow(-1, 32, 32);
  auto expected = y + bd(a, params["mlp.wo.weight"]) + params["mlp.wo.bias"];
  EXPECT_TRUE(torch::allclose(block->forward(x), expected, 1e-12, 1e-12));
}

TEST(StackOptions, MlpNblocksIsResolvedOnlyForM2Glu) {
  const Config glu = parse("  mlp: m2_glu\n  mlp_nblocks: 8\n");
  EXPECT_EQ(glu.model.mlp_nblocks, 8);
  EXPECT_EQ(glu.resolved["model"]["mlp_nblocks"].as<int64_t>(), 8);
  // Other MLPs keep the resolved keys older checkpoints were saved with.
  EXPECT_FALSE(parse("  mlp: gelu\n").resolved["model"]["mlp_nblocks"]);
}

TEST(StackOptions, MlpNblocksErrorsNameTheKey) {
  const std::string other = error_of("  mlp: gelu\n  mlp_nblocks: 4\n");
  EXPECT_NE(other.find("stack.yaml"), std::string::npos) << other;
  EXPECT_NE(other.find("model.mlp_nblocks"), std::string::npos) << other;
  EXPECT_NE(other.find("only applies to mlp: m2_glu"), std::string::npos) << other;
  const std::string big = error_of("  d_model: 8\n  mlp: m2_glu\n  mlp_nblocks: 16\n");
  EXPECT_NE(big.find("model.mlp_nblocks"), std::string::npos) << big;
  EXPECT_NE(big.find("at most d_model 8"), std::string::npos) << big;
  const std::string choice = error_of("  mlp: swiglu\n");
  EXPECT_NE(choice.find("m2_glu"), std::string::npos) << choice;
}

TEST(StackOptions, InitTorchKeepsTheConstructorsDefaults) {
  const std::string base =
      "  vocab_size: 50\n  d_model: 32\n  n_layer: 1\n  max_seq_len: 8\n  tie_embeddings: "
      "false\n  mixer: {type: attention}\n";
  torch::manual_seed(5);
  Gpt gpt2(parse(base).model);
  torch::manual_seed(5);
  Gpt plain(parse(base + "  init: torch\n").model);
  // GPT-2's: N(0, 0.02) embeddings and head, zero MLP biases.
  EXPECT_NEAR(gpt2->wte->weight.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(gpt2->lm_head->weight.std().item<double>(), 0.02, 0.002);
  auto* mlp = gpt2->h[0]->as<GptBlockImpl>()->mlp.get();
  EXPECT_EQ(mlp->fc1->bias.abs().max().item<double>(), 0.0);
  // torch's: N(0, 1) embeddings, kaiming-uniform linears (bound 1/sqrt(fan_in)) with biases.
  EXPECT_NEAR(plain->wte->weight.std().item<double>(), 1.0, 0.05);
  const double bound = 1.0 / std::sqrt(32.0);
  EXPECT_LE(plain->lm_head->weight.abs().max().item<double>(), bound);
  EXPECT_NEAR(plain->lm_head->weight.std().item<double>(), bound / std::sqrt(3.0), 0.01);
  auto* plain_mlp = plain->h[0]->as<GptBlockImpl>()->mlp.get();
  EXPECT_GT(plain_mlp->fc1->bias.abs().max().item<double>(), 0.0);
  // init_std belongs to gpt2's init only.
  const std::string wrong = error_of(base + "  init: torch\n  init_std: 0.1\n");
  EXPECT_NE(wrong.find("model.init_std"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("only applies to init: gpt2"), std::string::npos) << wrong;
  const std::string bad = error_of(base + "  init: xavier\n");
  EXPECT_NE(bad.find("model.init"), std::string::npos) << bad;
  EXPECT_NE(bad.find("torch"), std::string::npos) << bad;
}

}  // namespace
}  // namespace herd
