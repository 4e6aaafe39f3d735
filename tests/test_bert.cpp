// The BERT stack: shapes for every bidirectional mixer, bidirectionality, M2-BERT's layer,
// MLM loss and gradients, the classification head, a float64 gradient check, loading a
// pretrained encoder into a classifier, and the stack's config keys.
#include <gtest/gtest.h>

#include "ckpt/checkpoint.h"
#include "config/config.h"
#include "data/text/mlm_mask.h"
#include "fixtures.h"
#include "models/bert.h"
#include "models/stack.h"

namespace herd {
namespace {

constexpr int64_t kVocab = 40;

Config parse(const std::string& model_yaml) {
  return parse_config(YAML::Load("model:\n" + model_yaml), "bert.yaml");
}

std::string error_of(const std::string& model_yaml) {
  try {
    build_model(parse(model_yaml).model);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A tiny BERT; `mixer` is the model.mixer mapping.
ModelConfig tiny(const std::string& mixer, const std::string& extra = "") {
  return parse(
             "  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
             "  max_seq_len: 12\n  mixer: " +
             mixer + "\n" + extra)
      .model;
}

// The mixers a BERT stack can run, with the layer layouts they are used with.
struct Variant {
  const char* name;
  const char* mixer;
  const char* extra;
};
const Variant kVariants[] = {
    {"attention", "{type: attention}", ""},
    {"m2", "{type: m2, filter_order: 8, emb_dim: 3}", ""},
    {"m2_bert_layer", "{type: m2, filter_order: 8, emb_dim: 5, residual_long_conv: true}",
     "  mixer_residual: false\n  mlp: m2_glu\n  mlp_ratio: 2\n  norm_eps: 1.0e-12\n"},
    {"primer", "{type: primer, causal: false}", "  norm: pre\n"},
};

TEST(Bert, ShapesForEveryMixerAndOddLengths) {
  for (const auto& v : kVariants) {
    torch::manual_seed(0);
    Bert model(tiny(v.mixer, v.extra));
    for (int64_t T : {1, 7, 12}) {
      auto tokens = torch::randint(0, kVocab, {3, T}, torch::kLong);
      auto types = torch::randint(0, 2, {3, T}, torch::kLong);
      auto hidden = model->encode(tokens, types);
      EXPECT_EQ(hidden.sizes(), torch::IntArrayRef({3, T, 16})) << v.name << " T=" << T;
      EXPECT_EQ(model->mlm_logits(hidden).sizes(), torch::IntArrayRef({3, T, kVocab})) << v.name;
      EXPECT_TRUE(torch::isfinite(hidden).all().item<bool>()) << v.name;
    }
    EXPECT_THROW(model->encode(torch::zeros({1, 13}, torch::kLong)), Error) << v.name;
  }
}

TEST(Bert, LaterTokensChangeEarlierOutputs) {
  for (const auto& v : kVariants) {
    torch::manual_seed(1);
    Bert model(tiny(v.mixer, v.extra));
    model->to(torch::kFloat64);
    auto tokens = torch::randint(0, kVocab, {2, 9}, torch::kLong);
    auto base = model->encode(tokens);
    auto changed = tokens.clone();
    changed.select(1, 8).copy_(tokens.select(1, 8).add(1).remainder(kVocab));  // another token
    auto out = model->encode(changed);
    // Position 0 sees position 8: the stack is bidirectional.
    EXPECT_FALSE(torch::allclose(out.select(1, 0), base.select(1, 0), 0, 1e-9)) << v.name;
    // Token types reach every position too.
    auto typed = model->encode(tokens, torch::ones_like(tokens));
    EXPECT_FALSE(torch::allclose(typed.select(1, 0), base.select(1, 0), 0, 1e-9)) << v.name;
  }
}

TEST(Bert, M2BertLayerIsPostNormGluOverTheMixerWithoutMixerResidual) {
  torch::manual_seed(2);
  Bert model(tiny(kVariants[2].mixer, kVariants[2].extra));
  model->to(torch::kFloat64);
  auto* block = model->h[0]->as<BlockImpl>();
  EXPECT_FALSE(block->ln_1) << "M2-BERT has no norm around its mixer";
  ASSERT_TRUE(block->glu_mlp);
  auto x = torch::randn({2, 6, 16}, torch::kFloat64);
  auto m = block->mixer->forward(x);
  auto expected = block->ln_2(m + block->glu_mlp(m));
  EXPECT_TRUE(torch::allclose(block->forward(x), expected, 1e-12, 1e-12));
  // Post-norm stack: embeddings are normalised, no final norm.
  EXPECT_TRUE(model->ln_emb);
  EXPECT_FALSE(model->ln_f);
  // The MLM decoder is the word embedding (tied), plus its own bias.
  auto params = model->named_parameters();
  EXPECT_FALSE(params.contains("mlm_head.decoder.weight"));
  EXPECT_EQ(params["mlm_head.bias"].sizes(), torch::IntArrayRef({kVocab}));
}

TEST(Bert, MlmLossIsFiniteAndEveryParameterGetsAGradient) {
  for (const auto& v : kVariants) {
    torch::manual_seed(3);
    Bert model(tiny(v.mixer, v.extra));
    auto tokens = torch::randint(7, kVocab, {4, 12}, torch::kLong);
    data::MaskSpecial special{6, kVocab, {0, 1, 2, 3, 4, 5}};
    auto batch = data::mask_tokens(tokens, 0.3, special, 11);
    auto r = model->mlm(batch.input, batch.labels);
    EXPECT_EQ(r.count, (batch.labels != kIgnoreLabel).sum().item<int64_t>()) << v.name;
    EXPECT_GT(r.count, 0);
    EXPECT_GE(r.correct, 0);
    EXPECT_LE(r.correct, r.count);
    ASSERT_TRUE(std::isfinite(r.loss.item<double>())) << v.name;
    // Near log(V) at init: the head starts close to uniform.
    EXPECT_NEAR(r.loss.item<double>(), std::log(double(kVocab)), 1.0) << v.name;
    r.loss.backward();
    for (const auto& kv : model->named_parameters()) {
      ASSERT_TRUE(kv.value().grad().defined()) << v.name << " " << kv.key();
      EXPECT_TRUE(torch::isfinite(kv.value().grad()).all().item<bool>()) << kv.key();
    }
    EXPECT_GT(model->wte->weight.grad().abs().sum().item<double>(), 0) << v.name;
    double mixer_grad = 0;
    for (const auto& p : model->h[0]->as<BlockImpl>()->mixer->parameters())
      mixer_grad += p.grad().abs().sum().item<double>();
    EXPECT_GT(mixer_grad, 0) << v.name;
  }
}

TEST(Bert, MlmWithNothingMaskedIsZeroAndStillBackpropagates) {
  Bert model(tiny("{type: attention}"));
  auto tokens = torch::randint(7, kVocab, {2, 5}, torch::kLong);
  auto r = model->mlm(tokens, torch::full_like(tokens, kIgnoreLabel));
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  r.loss.backward();  // must not throw
}

TEST(Bert, LearnsToFillMasksOnAFixedBatch) {
  torch::manual_seed(4);
  Bert model(tiny("{type: attention}"));
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2));
  // Rows count up from a random start (mod the 33 ordinary ids): a masked token follows from
  // its neighbours, which only a model that reads both sides of it can use fully.
  auto start = torch::randint(0, kVocab - 7, {8, 1}, torch::kLong);
  auto tokens = (start + torch::arange(12, torch::kLong)).remainder(kVocab - 7) + 7;
  data::MaskSpecial special{6, kVocab, {0, 1, 2, 3, 4, 5}};
  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    auto batch = data::mask_tokens(tokens, 0.15, special, step);
    auto r = model->mlm(batch.input, batch.labels);
    opt.zero_grad();
    r.loss.backward();
    opt.step();
    if (step == 0) first = r.loss.item<double>();
    if (step >= 90) last += r.loss.item<double>() / 10;
  }
  EXPECT_LT(last, first - 1.0) << "first " << first << ", mean of the last 10 " << last;
}

TEST(Bert, ClassificationHeadShapesAndPooling) {
  for (const char* pool : {"cls", "mean"}) {
    torch::manual_seed(5);
    Bert model(tiny("{type: m2, filter_order: 8}", str("  num_classes: 3\n  pool: ", pool, "\n")));
    EXPECT_FALSE(model->mlm_head);
    auto tokens = torch::randint(0, kVocab, {5, 7}, torch::kLong);
    auto logits = model->classify(tokens);
    EXPECT_EQ(logits.sizes(), torch::IntArrayRef({5, 3})) << pool;
    EXPECT_THROW(model->mlm(tokens, tokens), Error);
    logits.sum().backward();
    EXPECT_GT(model->pooler->weight.grad().abs().sum().item<double>(), 0);
  }
  Bert mlm_only(tiny("{type: attention}"));
  EXPECT_THROW(mlm_only->classify(torch::zeros({1, 3}, torch::kLong)), Error);
}

TEST(Bert, FiniteDifferenceGradientFloat64) {
  for (const auto& v : {kVariants[0], kVariants[2]}) {  // attention; M2-BERT's layer
    torch::manual_seed(6);
    auto cfg = tiny(v.mixer, v.extra);
    cfg.num_classes = 0;
    Bert model(cfg);
    model->to(torch::kFloat64);
    auto tokens = torch::randint(7, kVocab, {2, 7}, torch::kLong);
    auto labels =
        torch::where(torch::rand({2, 7}) < 0.5, tokens, torch::full_like(tokens, kIgnoreLabel));
    labels[0][0] = tokens[0][0];  // at least one masked position
    auto loss = [&] { return model->mlm(tokens, labels).loss; };
    model->zero_grad();
    loss().backward();
    torch::NoGradGuard no_grad;
    int checked = 0;
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
            << v.name << " " << kv.key() << "[" << i << "]";
        ++checked;
      }
    }
    EXPECT_GT(checked, 20) << v.name;
  }
}

TEST(Bert, LoadPretrainedEncoderIntoAClassifier) {
  const std::string mixer = "{type: m2, filter_order: 8, residual_long_conv: true}";
  torch::manual_seed(7);
  Bert pretrained(tiny(mixer));
  ckpt::SaveRequest req;
  req.checkpoints_dir = test::temp_dir("bert-ckpt");
  req.model = pretrained.ptr().get();
  req.config = YAML::Node(YAML::NodeType::Map);
  const std::string dir = ckpt::save(req);

  torch::manual_seed(8);
  Bert classifier(tiny(mixer, "  num_classes: 4\n"));
  auto pooler_before = classifier->pooler->weight.clone();
  load_pretrained_encoder(classifier, dir + "/model.pt");
  auto source = pretrained->named_parameters();
  int64_t copied = 0;
  for (const auto& kv : classifier->named_parameters()) {
    if (kv.key().rfind("pooler.", 0) == 0 || kv.key().rfind("classifier.", 0) == 0) continue;
    ASSERT_TRUE(source.contains(kv.key())) << kv.key();
    EXPECT_TRUE(torch::equal(kv.value(), source[kv.key()])) << kv.key();
    ++copied;
  }
  EXPECT_GT(copied, 20);
  EXPECT_TRUE(torch::equal(classifier->pooler->weight, pooler_before)) << "head stays fresh";
  auto tokens = torch::randint(0, kVocab, {2, 6}, torch::kLong);
  EXPECT_TRUE(torch::allclose(classifier->encode(tokens), pretrained->encode(tokens)));

  // A deeper model misses layers; a wider one mismatches shapes. Either leaves it untouched.
  auto deeper_cfg = tiny(mixer, "  num_classes: 4\n");
  deeper_cfg.n_layer = 3;
  deeper_cfg.layers.push_back(deeper_cfg.layers[0]);
  Bert deeper(deeper_cfg);
  auto before = deeper->wte->weight.clone();
  try {
    load_pretrained_encoder(deeper, dir + "/model.pt");
    ADD_FAILURE() << "loaded a 2-layer encoder into a 3-layer model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing h.2."), std::string::npos) << e.what();
  }
  EXPECT_TRUE(torch::equal(deeper->wte->weight, before));
  auto wide = tiny(mixer, "  num_classes: 4\n");
  wide.d_model = 24;
  Bert wider(wide);
  try {
    load_pretrained_encoder(wider, dir + "/model.pt");
    ADD_FAILURE() << "loaded a d_model 16 encoder into d_model 24";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wte.weight [40, 16] vs [40, 24]"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_pretrained_encoder(wider, dir + "/missing.pt"), Error);
}

TEST(Bert, ConfigDefaultsAndResolvedKeys) {
  const Config cfg = parse("  stack: bert\n  vocab_size: 40\n  max_seq_len: 16\n");
  EXPECT_EQ(cfg.model.norm, "post");
  EXPECT_EQ(cfg.model.type_vocab_size, 2);
  const auto& r = cfg.resolved["model"];
  EXPECT_EQ(r["norm"].as<std::string>(), "post");
  EXPECT_TRUE(r["mixer_residual"].as<bool>());
  EXPECT_EQ(r["num_classes"].as<int64_t>(), 0);
  EXPECT_EQ(r["type_vocab_size"].as<int64_t>(), 2);
  // The resolved config (what checkpoints store) parses back to the same config.
  YAML::Node root;
  root["model"] = YAML::Clone(r);
  EXPECT_EQ(YAML::Dump(parse_config(root, "resolved.yaml").resolved["model"]), YAML::Dump(r));
  // GPT configs resolve exactly the keys they did before the stacks existed.
  const Config gpt = parse("  vocab_size: 40\n");
  for (const char* key :
       {"norm", "mixer_residual", "num_classes", "pool", "type_vocab_size", "image_size"})
    EXPECT_FALSE(gpt.resolved["model"][key]) << key;
}

TEST(Bert, ConfigErrorsNameTheKey) {
  const std::string hyena = error_of("  stack: bert\n  vocab_size: 40\n  mixer: {type: hyena}\n");
  EXPECT_NE(hyena.find("hyena is causal only"), std::string::npos) << hyena;
  const std::string h3 = error_of("  stack: bert\n  vocab_size: 40\n  mixer: {type: h3}\n");
  EXPECT_NE(h3.find("h3 is causal only"), std::string::npos) << h3;
  const std::string image = error_of("  stack: bert\n  vocab_size: 40\n  image_size: 28\n");
  EXPECT_NE(image.find("bert.yaml:4 model.image_size: only applies to stack: vit"),
            std::string::npos)
      << image;
  const std::string types = error_of("  vocab_size: 40\n  type_vocab_size: 2\n");
  EXPECT_NE(types.find("model.type_vocab_size: only applies to stack: bert"), std::string::npos)
      << types;
  const std::string gpt_norm = error_of("  vocab_size: 40\n  norm: post\n");
  EXPECT_NE(gpt_norm.find("model.norm: only applies to stack: bert|vit"), std::string::npos)
      << gpt_norm;
  const std::string residual = error_of("  stack: bert\n  norm: pre\n  mixer_residual: false\n");
  EXPECT_NE(residual.find("model.mixer_residual: only applies to norm: post"), std::string::npos)
      << residual;
  const std::string stack = error_of("  stack: t5\n");
  EXPECT_NE(stack.find("gpt|bert|vit"), std::string::npos) << stack;
}

TEST(Bert, ConfigCheckPrintsTheStackPlanAndCount) {
  std::string out;
  ASSERT_EQ(
      test::run_herd(str("config check ", HERD_SOURCE_DIR, "/configs/m2-bert-base-80m.yaml"), &out),
      0)
      << out;
  EXPECT_NE(out.find("# bert layer plan (post-norm, bidirectional):"), std::string::npos) << out;
  EXPECT_NE(out.find("#   layer 11: m2"), std::string::npos) << out;
  EXPECT_NE(out.find("# parameters: 80267328 (80.27M)"), std::string::npos) << out;
  EXPECT_NE(out.find("mixer_residual: false"), std::string::npos) << out;
}

TEST(Bert, TokenTypesAreOptional) {
  Bert model(tiny("{type: attention}", "  type_vocab_size: 0\n"));
  EXPECT_FALSE(model->token_type_emb);
  auto tokens = torch::randint(0, kVocab, {1, 4}, torch::kLong);
  EXPECT_EQ(model->encode(tokens).sizes(), torch::IntArrayRef({1, 4, 16}));
  EXPECT_THROW(model->encode(tokens, torch::zeros_like(tokens)), Error);
}

}  // namespace
}  // namespace herd
