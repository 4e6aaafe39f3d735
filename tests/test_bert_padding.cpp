// BERT padding: a right-padded batch gives every real token the output of the unpadded
// sequence (attention masks the pads as keys, primer zeroes them before its centred dconv, m2
// before its long convolutions), mean pooling averages real tokens only, and classification
// batches are padded to their longest row, not to seq_len.
#include <gtest/gtest.h>

#include <cmath>

#include "config/config.h"
#include "fixtures.h"
#include "models/activation_checkpoint.h"
#include "models/bert.h"
#include "train/runtime.h"
#include "train/task.h"

namespace herd {
namespace {

const char* kStacks[][2] = {
    {"attention", "  mixer: {type: attention}\n"},
    {"primer", "  mlp: squared_relu\n  mixer: {type: primer}\n"},
    {"m2_bert",
     "  mixer_residual: false\n  mlp: m2_glu\n  mlp_nblocks: 4\n"
     "  mixer: {type: m2, filter_order: 8, residual_long_conv: true}\n"},
    {"hybrid",
     "  mixer: {type: m2, filter_order: 8}\n  layers: [{at: [1], mixer: {type: attention}}]\n"},
};

Bert build(const std::string& lines, const std::string& pool = "cls") {
  torch::manual_seed(21);
  auto cfg = parse_config(
      YAML::Load("model:\n  stack: bert\n  vocab_size: 50\n  d_model: 16\n  n_layer: 2\n"
                 "  n_head: 2\n  max_seq_len: 16\n  num_classes: 3\n  pool: " +
                 pool + "\n" + lines),
      "pad.yaml");
  Bert m(cfg.model);
  m->to(torch::kFloat64);
  m->eval();
  return m;
}

// Row 0 has 7 real tokens, row 1 has 4; both padded to 12 with arbitrary pad ids.
struct Padded {
  torch::Tensor tokens, pad;
  std::vector<torch::Tensor> rows;  // each row unpadded, [1, n]
};

Padded make_batch() {
  torch::manual_seed(4);
  Padded p;
  p.tokens = torch::randint(1, 50, {2, 12}, torch::kLong);
  const int64_t lengths[] = {7, 4};
  p.pad = torch::zeros({2, 12}, torch::kBool);
  for (int64_t r = 0; r < 2; ++r) {
    p.rows.push_back(p.tokens.narrow(0, r, 1).narrow(1, 0, lengths[r]).clone());
    p.pad[r].narrow(0, lengths[r], 12 - lengths[r]).fill_(true);
  }
  return p;
}

TEST(BertPadding, PadsChangeNoRealTokensOutput) {
  const auto b = make_batch();
  for (const auto& [name, lines] : kStacks) {
    auto m = build(lines);
    const auto padded = m->encode(b.tokens, {}, b.pad);
    const auto unmasked = m->encode(b.tokens);
    for (int64_t r = 0; r < 2; ++r) {
      const int64_t n = b.rows[r].size(1);
      const auto alone = m->encode(b.rows[r]);
      const auto got = padded.narrow(0, r, 1).narrow(1, 0, n);
      EXPECT_TRUE(torch::allclose(got, alone, 1e-10, 1e-10))
          << name << " row " << r << ": max err " << (got - alone).abs().max().item<double>();
      // Without the mask the pads do leak: the test can tell.
      EXPECT_FALSE(torch::allclose(unmasked.narrow(0, r, 1).narrow(1, 0, n), alone, 1e-6, 1e-6))
          << name << " row " << r;
    }
  }
}

TEST(BertPadding, ClassifierAndMeanPoolingIgnoreThePads) {
  const auto b = make_batch();
  for (const std::string pool : {"cls", "mean"})
    for (const auto& [name, lines] : kStacks) {
      auto m = build(lines, pool);
      const auto logits = m->classify(b.tokens, {}, b.pad);
      for (int64_t r = 0; r < 2; ++r)
        EXPECT_TRUE(torch::allclose(logits.narrow(0, r, 1), m->classify(b.rows[r]), 1e-10, 1e-10))
            << name << " pool " << pool << " row " << r;
    }
}

TEST(BertPadding, GradientsUnderActivationCheckpointingAgree) {
  const auto b = make_batch();
  auto run = [&](bool checkpointing) {
    auto m = build(kStacks[2][1], "mean");
    m->train();
    ActivationCheckpointing on(checkpointing);
    auto loss = m->classify(b.tokens, {}, b.pad).pow(2).sum();
    loss.backward();
    return m->h[0]->as<BlockImpl>()->mixer->named_parameters()["in_linear.weight"].grad().clone();
  };
  EXPECT_TRUE(torch::allclose(run(false), run(true), 1e-12, 1e-12));
}

TEST(BertPadding, ClassifyBatchesArePaddedToTheirLongestRow) {
  const std::string dir = test::temp_dir("bert_pad");
  std::string rows;
  const char* texts[] = {"a", "a short line", "one two three four five six seven eight nine", "b"};
  for (int i = 0; i < 8; ++i)
    rows += str("{\"text\": \"", texts[i % 4], "\", \"label\": \"", i % 2 ? "x" : "y", "\"}\n");
  test::write_text(dir + "/train.jsonl", rows);
  auto cfg = parse_config(
      YAML::Load(str("model:\n  stack: bert\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n"
                     "  max_seq_len: 64\n  pool: mean\ndata:\n  tokenizer: ",
                     test::fortunes_dataset(),
                     "/tokenizer.model\ntask:\n  type: classify\n"
                     "  train_file: ",
                     dir, "/train.jsonl\ntrain:\n  batch_size: 2\n")),
      "pad.yaml");
  Runtime rt = Runtime::from(cfg.train);
  auto task = make_task(cfg, rt);
  int64_t widest = 0;
  for (int i = 0; i < 6; ++i) {
    auto batch = task->next_batch(2, 0, 1);
    ASSERT_EQ(batch.parts.size(), 4u);
    const auto& lengths = batch.parts[3];
    EXPECT_EQ(batch.parts[0].size(1), lengths.max().item<int64_t>()) << "batch " << i;
    widest = std::max(widest, batch.parts[0].size(1));
    auto out = task->loss(batch);
    EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  }
  EXPECT_LT(widest, 64) << "padded per batch, not to seq_len";
}

}  // namespace
}  // namespace herd
