// The ViT stack: shapes with attention and m2 for class-token and mean pooling, the patch
// embedding's layout, bidirectionality, a float64 gradient check, parameter count, config keys.
#include <gtest/gtest.h>

#include "config/config.h"
#include "fixtures.h"
#include "models/gpt.h"
#include "models/stack.h"
#include "models/vit.h"

namespace herd {
namespace {

Config parse(const std::string& model_yaml) {
  return parse_config(YAML::Load("model:\n" + model_yaml), "vit.yaml");
}

std::string error_of(const std::string& model_yaml) {
  try {
    build_model(parse(model_yaml).model);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// 12 x 12 images with `channels` channels, 3 classes.
ModelConfig tiny(const std::string& mixer, const std::string& pool, int64_t patch = 4,
                 int64_t channels = 2) {
  return parse(str("  stack: vit\n  image_size: 12\n  patch_size: ", patch,
                   "\n  channels: ", channels, "\n  num_classes: 3\n  pool: ", pool,
                   "\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n  mixer: ", mixer, "\n"))
      .model;
}

const char* kMixers[] = {"{type: attention}", "{type: m2, filter_order: 8}",
                         "{type: m2, filter_order: 8, residual_long_conv: true}"};

TEST(Vit, ShapesForAttentionAndM2WithClassTokenAndMeanPooling) {
  for (const char* mixer : kMixers) {
    for (const char* pool : {"cls", "mean"}) {
      for (int64_t patch : {3, 4}) {  // 16 or 9 patches: 17/16 or 10/9 tokens (odd and even)
        torch::manual_seed(0);
        const auto cfg = tiny(mixer, pool, patch);
        const int64_t patches = (12 / patch) * (12 / patch);
        EXPECT_EQ(cfg.max_seq_len, patches + (std::string(pool) == "cls" ? 1 : 0));
        Vit model(cfg);
        EXPECT_EQ(model->num_patches, patches);
        EXPECT_EQ(bool(model->cls_token.defined()), std::string(pool) == "cls");
        auto logits = model->forward(torch::randn({5, 2, 12, 12}));
        EXPECT_EQ(logits.sizes(), torch::IntArrayRef({5, 3})) << mixer << " " << pool;
        EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
        logits.sum().backward();
        for (const auto& kv : model->named_parameters())
          ASSERT_TRUE(kv.value().grad().defined()) << mixer << " " << pool << " " << kv.key();
      }
    }
  }
  Vit model(tiny("{type: attention}", "cls"));
  EXPECT_THROW(model->forward(torch::randn({1, 1, 12, 12})), Error);  // wrong channels
  EXPECT_THROW(model->forward(torch::randn({1, 2, 8, 8})), Error);    // wrong size
}

TEST(Vit, PatchEmbeddingIsRowMajorPatchesTimesOneMatrix) {
  torch::manual_seed(1);
  Vit model(tiny("{type: attention}", "mean"));
  model->to(torch::kFloat64);
  auto images = torch::randn({2, 2, 12, 12}, torch::kFloat64);
  auto tokens = model->patch_embed(images).flatten(2).transpose(1, 2);  // [B, 9, D]
  // Patch (r, c) = rows 4r..4r+3, columns 4c..4c+3, flattened channel-major.
  const auto& w = model->patch_embed->weight;  // (D, C, 4, 4)
  for (int64_t r : {0, 2}) {
    for (int64_t c : {1, 2}) {
      auto patch = images.slice(2, 4 * r, 4 * r + 4).slice(3, 4 * c, 4 * c + 4).flatten(1);
      auto expected = torch::matmul(patch, w.flatten(1).t()) + model->patch_embed->bias;
      EXPECT_TRUE(torch::allclose(tokens.select(1, 3 * r + c), expected, 1e-12, 1e-12));
    }
  }
}

TEST(Vit, TheLastPatchReachesTheClassToken) {
  for (const char* mixer : kMixers) {
    torch::manual_seed(2);
    Vit model(tiny(mixer, "cls"));
    model->to(torch::kFloat64);
    auto images = torch::randn({2, 2, 12, 12}, torch::kFloat64);
    auto base = model->forward(images);
    auto changed = images.clone();
    changed.slice(2, 8, 12).slice(3, 8, 12).add_(1.0);  // the last patch only
    EXPECT_FALSE(torch::allclose(model->forward(changed), base, 0, 1e-9)) << mixer;
  }
}

TEST(Vit, FiniteDifferenceGradientFloat64) {
  const std::pair<const char*, const char*> cases[] = {{kMixers[0], "cls"}, {kMixers[2], "mean"}};
  for (const auto& [mixer, pool] : cases) {
    {
      torch::manual_seed(3);
      Vit model(tiny(mixer, pool, 4, 1));
      model->to(torch::kFloat64);
      auto images = torch::randn({2, 1, 12, 12}, torch::kFloat64);
      auto labels = torch::tensor({0, 2}, torch::kLong);
      auto loss = [&] {
        return torch::nn::functional::cross_entropy(model->forward(images), labels);
      };
      model->zero_grad();
      loss().backward();
      torch::NoGradGuard no_grad;
      for (auto& kv : model->named_parameters()) {
        auto p = kv.value().view(-1);
        auto g = kv.value().grad().view(-1);
        for (int64_t i : {int64_t{0}, p.numel() - 1}) {
          const double eps = 1e-6, orig = p[i].item<double>();
          p[i] = orig + eps;
          const double up = loss().item<double>();
          p[i] = orig - eps;
          const double down = loss().item<double>();
          p[i] = orig;
          const double numeric = (up - down) / (2 * eps);
          EXPECT_NEAR(g[i].item<double>(), numeric, 1e-7 + 1e-5 * std::abs(numeric))
              << mixer << " " << pool << " " << kv.key() << "[" << i << "]";
        }
      }
    }
  }
}

TEST(Vit, ParameterCountWrittenOut) {
  // D = 16, C = 2, p = 4, 9 patches + class token, 2 attention layers, MLP 4D, 3 classes.
  const int64_t D = 16, F = 64;
  const int64_t embed = D * 2 * 4 * 4 + D + D + 10 * D;  // patch conv, cls_token, wpe
  const int64_t layer = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (D * F + F) + (F * D + D);
  const int64_t expected = embed + 2 * layer + 2 * D + (3 * D + 3);  // ln_f, head
  Vit model(tiny("{type: attention}", "cls"));
  EXPECT_EQ(parameter_count(*model), expected);
}

TEST(Vit, ConfigKeysAndErrors) {
  const Config cfg = parse("  stack: vit\n  image_size: 28\n  patch_size: 7\n  num_classes: 10\n");
  EXPECT_EQ(cfg.model.max_seq_len, 17);
  EXPECT_EQ(cfg.model.norm, "pre");
  EXPECT_EQ(cfg.resolved["model"]["image_size"].as<int64_t>(), 28);
  YAML::Node root;
  root["model"] = YAML::Clone(cfg.resolved["model"]);
  EXPECT_EQ(parse_config(root, "resolved.yaml").model.max_seq_len, 17);  // checkpoints reload

  const std::string divisible =
      error_of("  stack: vit\n  image_size: 28\n  patch_size: 5\n  num_classes: 10\n");
  EXPECT_NE(divisible.find("vit.yaml:4 model.patch_size: must divide image_size 28, got 5"),
            std::string::npos)
      << divisible;
  const std::string classes = error_of("  stack: vit\n");
  EXPECT_NE(classes.find("model.num_classes: required for stack: vit"), std::string::npos)
      << classes;
  const std::string length =
      error_of("  stack: vit\n  num_classes: 10\n  pool: mean\n  max_seq_len: 50\n");
  EXPECT_NE(length.find("model.max_seq_len: is derived for vit: (image_size / patch_size)^2 = 49"),
            std::string::npos)
      << length;
  const std::string vocab = error_of("  stack: vit\n  num_classes: 10\n  vocab_size: 100\n");
  EXPECT_NE(vocab.find("model.vocab_size: a vit stack has no vocabulary"), std::string::npos)
      << vocab;
  const std::string hyena = error_of("  stack: vit\n  num_classes: 10\n  mixer: hyena\n");
  EXPECT_NE(hyena.find("hyena is causal only"), std::string::npos) << hyena;
  const std::string patch = error_of("  patch_size: 4\n");
  EXPECT_NE(patch.find("model.patch_size: only applies to stack: vit"), std::string::npos) << patch;
}

TEST(Vit, ConfigCheckPrintsTheStackPlanAndCount) {
  for (const char* name : {"vit-fashion-mnist", "m2-vit-fashion-mnist"}) {
    const std::string path = str(HERD_SOURCE_DIR, "/configs/", name, ".yaml");
    std::string out;
    ASSERT_EQ(test::run_herd("config check " + path, &out), 0) << out;
    EXPECT_NE(out.find("# vit layer plan (pre-norm, bidirectional):"), std::string::npos) << out;
    auto model = build_model(load_config(path).model);
    EXPECT_NE(out.find(str("# parameters: ", parameter_count(*model), " (")), std::string::npos)
        << out;
  }
}

}  // namespace
}  // namespace herd
