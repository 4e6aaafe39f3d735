// The GPT stack: golden conformance (loss and every gradient), causality, finite differences.
#include <gtest/gtest.h>

#include "conformance/conformance.h"
#include "io/safetensors.h"
#include "models/gpt.h"

namespace herd {
namespace {

ModelConfig tiny_model(int64_t vocab = 17, int64_t d = 8, int64_t layers = 2, int64_t heads = 2,
                       int64_t ctx = 12) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.d_model = d;
  c.n_layer = layers;
  c.n_head = heads;
  c.max_seq_len = ctx;
  c.mixer.options = YAML::Node(YAML::NodeType::Map);
  c.layers.assign(layers, c.mixer);
  return c;
}

TEST(Gpt, GoldenTinyLossAndEveryGradient) {
  const std::string path = std::string(HERD_GOLDEN_DIR) + "/gpt__tiny.safetensors";
  auto golden = io::read_safetensors(path);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    auto r = conformance::check_golden(golden, dtype);
    EXPECT_TRUE(r.pass) << conformance::format_line(r) << "\n" << conformance::format_detail(r);
    // Every parameter of the file was compared (wte's gradient sums embedding and head).
    int64_t grads = 0;
    for (const auto& t : r.tensors) grads += t.name.rfind("grad.param.", 0) == 0;
    int64_t params = 0;
    for (const auto& name : golden.order) params += name.rfind("param.", 0) == 0;
    EXPECT_EQ(grads, params);
  }
}

TEST(Gpt, GoldenTinyDetectsAPerturbedGradient) {
  auto golden = io::read_safetensors(std::string(HERD_GOLDEN_DIR) + "/gpt__tiny.safetensors");
  auto& g = golden.tensors.at("grad.param.h.1.c_fc_proj.weight");
  g = g.clone();
  g.view(-1)[3] += 1e-6;
  EXPECT_FALSE(conformance::check_golden(golden, torch::kFloat64).pass);
}

TEST(Gpt, CausalFutureTokensDoNotChangeEarlierLogits) {
  torch::manual_seed(0);
  Gpt model(tiny_model());
  model->to(torch::kFloat64);
  auto tokens = torch::randint(0, 17, {2, 11}, torch::kLong);
  auto base = model->forward(tokens);
  for (int64_t t : {0, 4, 9}) {
    auto changed = tokens.clone();
    changed.narrow(1, t + 1, 11 - t - 1).random_(0, 17);
    auto out = model->forward(changed);
    EXPECT_TRUE(torch::allclose(out.narrow(1, 0, t + 1), base.narrow(1, 0, t + 1), 0, 1e-12))
        << "position " << t;
    if (t < 9) {
      EXPECT_FALSE(torch::allclose(out, base, 0, 1e-6));  // the change did reach later positions
    }
  }
}

TEST(Gpt, FiniteDifferenceGradientFloat64) {
  torch::manual_seed(1);
  for (const char* mlp : {"gelu", "squared_relu"}) {
    auto cfg = tiny_model(13, 8, 2, 2, 9);
    cfg.mlp = mlp;
    Gpt model(cfg);
    model->to(torch::kFloat64);
    auto tokens = torch::randint(0, 13, {2, 7}, torch::kLong);
    auto targets = torch::randint(0, 13, {2, 7}, torch::kLong);
    model->zero_grad();
    model->loss(tokens, targets).backward();
    torch::NoGradGuard no_grad;
    int checked = 0;
    for (auto& kv : model->named_parameters()) {
      auto p = kv.value().view(-1);
      auto g = kv.value().grad().view(-1);
      for (int64_t i : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
        const double eps = 1e-6, orig = p[i].item<double>();
        p[i] = orig + eps;
        const double up = model->loss(tokens, targets).item<double>();
        p[i] = orig - eps;
        const double down = model->loss(tokens, targets).item<double>();
        p[i] = orig;
        const double numeric = (up - down) / (2 * eps), analytic = g[i].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric))
            << mlp << " " << kv.key() << "[" << i << "]";
        ++checked;
      }
    }
    EXPECT_GT(checked, 30);
  }
}

TEST(Gpt, TiedHeadSharesTheEmbedding) {
  Gpt tied(tiny_model());
  auto untied_cfg = tiny_model();
  untied_cfg.tie_embeddings = false;
  Gpt untied(untied_cfg);
  EXPECT_EQ(parameter_count(*untied) - parameter_count(*tied), 17 * 8);
}

}  // namespace
}  // namespace herd
