// Activation checkpointing (train.activation_checkpointing: layer): a few training steps of
// tiny GPT, BERT, ViT and hybrid stacks give bit-identical losses and weights with and
// without it; the forward keeps no block activations; RNG and autocast states are replayed.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <set>

#include "config/config.h"
#include "fixtures.h"
#include "models/activation_checkpoint.h"
#include "models/bert.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "train/runtime.h"
#include "train/trainer.h"

namespace herd {
namespace {

Config parse(const std::string& yaml) {
  return parse_config(YAML::Load(yaml), "ckpt.yaml");
}

// A model, its loss on a batch drawn from a seed, and a step count.
struct Case {
  std::string name;
  int64_t layers;
  std::function<std::shared_ptr<torch::nn::Module>()> make;
  std::function<torch::Tensor(torch::nn::Module&, int64_t step)> loss;
};

struct Run {
  std::vector<double> losses;
  std::vector<torch::Tensor> params;
};

// `steps` AdamW steps (with gradient clipping, and two micro-batches per step).
Run train_steps(const Case& c, bool checkpoint, int64_t steps, const Runtime& rt = {}) {
  torch::manual_seed(11);
  auto model = c.make();
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2));
  Run run;
  for (int64_t s = 0; s < steps; ++s) {
    opt.zero_grad();
    double loss = 0;
    for (int64_t m = 0; m < 2; ++m) {
      torch::Tensor l;
      {
        AutocastScope autocast(rt);
        ActivationCheckpointing on(checkpoint);
        l = c.loss(*model, 2 * s + m);
      }
      (l / 2.0).backward();
      loss += l.item<double>() / 2.0;
    }
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    run.losses.push_back(loss);
  }
  for (const auto& p : model->parameters()) run.params.push_back(p.detach().clone());
  return run;
}

// Nodes of the autograd graph behind `t` whose name contains `part`.
int64_t count_nodes(const torch::Tensor& t, const std::string& part) {
  std::vector<torch::autograd::Node*> todo{t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int64_t n = 0;
  while (!todo.empty()) {
    auto* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find(part) != std::string::npos) ++n;
    for (const auto& e : node->next_edges()) todo.push_back(e.function.get());
  }
  return n;
}

void expect_identical(const Case& c, const Runtime& rt = {}) {
  {  // Each block of the stack is one checkpoint node (and none without the switch).
    torch::manual_seed(11);
    auto model = c.make();
    ActivationCheckpointing on(true);
    EXPECT_EQ(count_nodes(c.loss(*model, 0), "BlockCheckpoint"), c.layers) << c.name;
    ActivationCheckpointing off(false);
    EXPECT_EQ(count_nodes(c.loss(*model, 0), "BlockCheckpoint"), 0) << c.name;
  }
  const Run plain = train_steps(c, false, 3, rt), ckpt = train_steps(c, true, 3, rt);
  ASSERT_EQ(plain.losses.size(), ckpt.losses.size());
  for (size_t i = 0; i < plain.losses.size(); ++i)
    EXPECT_EQ(plain.losses[i], ckpt.losses[i]) << c.name << " step " << i + 1;
  ASSERT_EQ(plain.params.size(), ckpt.params.size());
  for (size_t i = 0; i < plain.params.size(); ++i)
    EXPECT_TRUE(torch::equal(plain.params[i], ckpt.params[i])) << c.name << " parameter " << i;
  EXPECT_NE(plain.losses.front(), plain.losses.back()) << c.name << ": training did nothing";
}

torch::Tensor tokens(int64_t seed, int64_t vocab, int64_t rows, int64_t T) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  return torch::randint(0, vocab, {rows, T}, gen, torch::kLong);
}

Case gpt_case(const std::string& name, const std::string& model_yaml) {
  const Config cfg = parse(
      "model:\n  vocab_size: 50\n  d_model: 16\n  n_layer: 3\n  n_head: 2\n"
      "  max_seq_len: 16\n" +
      model_yaml);
  return {name, 3, [cfg] { return Gpt(cfg.model).ptr(); },
          [](torch::nn::Module& m, int64_t seed) {
            auto t = tokens(seed, 50, 2, 13);
            return dynamic_cast<GptImpl&>(m).loss(t.narrow(1, 0, 12), t.narrow(1, 1, 12));
          }};
}

TEST(ActivationCheckpointing, GptLossesAreBitIdentical) {
  expect_identical(gpt_case("gpt attention", ""));
}

TEST(ActivationCheckpointing, HybridHyenaM2H3LossesAreBitIdentical) {
  expect_identical(gpt_case("gpt hybrid",
                            "  mixer: {type: hyena, filter_order: 8, emb_dim: 5}\n"
                            "  layers:\n"
                            "    - {at: [1], mixer: {type: m2, filter_order: 8, emb_dim: 5}}\n"
                            "    - {at: [2], mixer: {type: h3, d_state: 4}}\n"));
}

TEST(ActivationCheckpointing, BertMlmLossesAreBitIdentical) {
  const Config cfg = parse(
      "model:\n  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
      "  max_seq_len: 12\n");
  expect_identical({"bert mlm", 2, [cfg] { return Bert(cfg.model).ptr(); },
                    [](torch::nn::Module& m, int64_t seed) {
                      auto t = tokens(seed, 40, 3, 12);
                      auto labels = torch::where(tokens(seed + 100, 3, 3, 12) == 0, t,
                                                 torch::full_like(t, kIgnoreLabel));
                      return dynamic_cast<BertImpl&>(m).mlm(t, labels).loss;
                    }});
}

TEST(ActivationCheckpointing, M2BertLossesAreBitIdentical) {
  const Config cfg = parse(
      "model:\n  stack: bert\n  vocab_size: 40\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n"
      "  max_seq_len: 12\n  mixer_residual: false\n  mlp: m2_glu\n  mlp_nblocks: 4\n"
      "  mixer: {type: m2, filter_order: 8, emb_dim: 5}\n");
  expect_identical({"m2 bert", 2, [cfg] { return Bert(cfg.model).ptr(); },
                    [](torch::nn::Module& m, int64_t seed) {
                      auto t = tokens(seed, 40, 3, 12);
                      auto labels = torch::where(tokens(seed + 100, 3, 3, 12) == 0, t,
                                                 torch::full_like(t, kIgnoreLabel));
                      return dynamic_cast<BertImpl&>(m).mlm(t, labels).loss;
                    }});
}

TEST(ActivationCheckpointing, VitLossesAreBitIdentical) {
  const Config cfg = parse(
      "model:\n  stack: vit\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n  num_classes: 5\n"
      "  image_size: 8\n  patch_size: 4\n  channels: 1\n");
  expect_identical({"vit", 2, [cfg] { return Vit(cfg.model).ptr(); },
                    [](torch::nn::Module& m, int64_t seed) {
                      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
                      auto images = torch::randn({4, 1, 8, 8}, gen, torch::kFloat32);
                      auto labels = torch::randint(0, 5, {4}, gen, torch::kLong);
                      return torch::nn::functional::cross_entropy(
                          dynamic_cast<VitImpl&>(m).forward(images), labels);
                    }});
}

TEST(ActivationCheckpointing, Bf16AutocastLossesAreBitIdentical) {
  Runtime rt;
  rt.autocast_dtype = torch::kBFloat16;
  expect_identical(gpt_case("gpt bf16", ""), rt);
}

// The forward keeps only the block's input: its gradient edge leads to x alone, not to the
// block's parameters and intermediates; without the switch (or without grad) it is plain.
TEST(ActivationCheckpointing, ForwardKeepsOnlyTheInput) {
  torch::manual_seed(1);
  torch::nn::Linear lin(8, 8);
  auto fn = [l = lin.ptr()](const torch::Tensor& t) { return torch::gelu(l->forward(t)) + t; };
  auto x = torch::randn({3, 8}, torch::requires_grad());
  auto h = x * 2;  // an interior node, so that the edge is a real grad_fn
  torch::Tensor y;
  {
    ActivationCheckpointing on(true);
    EXPECT_TRUE(ActivationCheckpointing::enabled());
    y = maybe_checkpointed(fn, h);
  }
  EXPECT_FALSE(ActivationCheckpointing::enabled());
  ASSERT_TRUE(y.grad_fn());
  EXPECT_NE(y.grad_fn()->name().find("BlockCheckpoint"), std::string::npos) << y.grad_fn()->name();
  ASSERT_EQ(y.grad_fn()->next_edges().size(), 1u);
  EXPECT_EQ(y.grad_fn()->next_edges()[0].function, h.grad_fn());
  auto plain = maybe_checkpointed(fn, h);
  EXPECT_EQ(plain.grad_fn()->name().find("BlockCheckpoint"), std::string::npos);
  {
    ActivationCheckpointing on(true);
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(maybe_checkpointed(fn, h).requires_grad());  // evaluation: plain forward
  }
  // Same values and gradients (into .grad: parameters are reached by backward(), not by
  // autograd::grad, as with torch's reentrant checkpoint).
  EXPECT_TRUE(torch::equal(y, plain));
  auto g = torch::randn({3, 8});
  auto grads_of = [&](const torch::Tensor& out) {
    x.mutable_grad() = torch::Tensor();
    lin->weight.mutable_grad() = torch::Tensor();
    out.backward(g, /*retain_graph=*/true);
    return std::make_pair(x.grad().clone(), lin->weight.grad().clone());
  };
  const auto [gx_ckpt, gw_ckpt] = grads_of(y);
  const auto [gx_plain, gw_plain] = grads_of(plain);
  EXPECT_TRUE(torch::equal(gx_ckpt, gx_plain));
  EXPECT_TRUE(torch::equal(gw_ckpt, gw_plain));
}

// A block over several tensors, some undefined (a residual stream as {sum, pending add}):
// undefined entries stay in place, an unused output gets no gradient, the rest is exact.
TEST(ActivationCheckpointing, SeveralTensorsWithUndefinedOnes) {
  torch::manual_seed(6);
  torch::nn::Linear lin(8, 8);
  auto fn = [l = lin.ptr()](const std::vector<torch::Tensor>& in) -> std::vector<torch::Tensor> {
    auto stream = in[1].defined() ? in[0] + in[1] : in[0];
    auto h = l->forward(stream);
    return {stream, torch::Tensor(), torch::tanh(h), h.sum(-1)};  // the last is left unused
  };
  auto run = [&](bool checkpoint, bool pending) {
    for (auto& p : lin->parameters()) p.mutable_grad() = torch::Tensor();
    auto a = torch::randn({3, 8}, torch::requires_grad());
    auto b = torch::randn({3, 8}, torch::requires_grad());
    std::vector<torch::Tensor> in{a * 1.0, pending ? b * 1.0 : torch::Tensor()};
    std::vector<torch::Tensor> out;
    {
      ActivationCheckpointing on(checkpoint);
      out = maybe_checkpointed(fn, in);
    }
    EXPECT_EQ(out.size(), 4u);
    EXPECT_FALSE(out[1].defined());
    (out[0].pow(2).sum() + out[2].sum()).backward();
    std::vector<torch::Tensor> grads{a.grad(), lin->weight.grad(), lin->bias.grad()};
    if (pending) grads.push_back(b.grad());
    return std::make_pair(out, grads);
  };
  for (bool pending : {false, true}) {
    torch::manual_seed(7);
    const auto [out_plain, g_plain] = run(false, pending);
    torch::manual_seed(7);
    const auto [out_ckpt, g_ckpt] = run(true, pending);
    for (size_t i : {0u, 2u, 3u}) EXPECT_TRUE(torch::equal(out_plain[i], out_ckpt[i])) << i;
    ASSERT_EQ(g_plain.size(), g_ckpt.size());
    for (size_t i = 0; i < g_plain.size(); ++i)
      EXPECT_TRUE(torch::equal(g_plain[i], g_ckpt[i])) << "pending " << pending << " grad " << i;
  }
}

// A block that draws random numbers (dropout) recomputes with the forward's draws, and the
// recompute leaves the caller's generator where it was.
TEST(ActivationCheckpointing, RngStateIsReplayedAndRestored) {
  torch::nn::Linear lin(16, 16);
  auto fn = [l = lin.ptr()](const torch::Tensor& t) {
    return torch::dropout(l->forward(t), 0.5, true);
  };
  auto run = [&](bool checkpoint) {
    torch::manual_seed(5);
    for (auto& p : lin->parameters()) p.mutable_grad() = torch::Tensor();
    auto x = torch::randn({4, 16}, torch::requires_grad());
    torch::Tensor y;
    {
      ActivationCheckpointing on(checkpoint);
      y = maybe_checkpointed(fn, x * 1.0);
    }
    y.pow(2).sum().backward();
    return std::make_tuple(y.detach(), x.grad().clone(), lin->weight.grad().clone(),
                           torch::rand({4}));  // the caller's next draw
  };
  auto [y0, gx0, gw0, next0] = run(false);
  auto [y1, gx1, gw1, next1] = run(true);
  EXPECT_TRUE(torch::equal(y0, y1));
  EXPECT_TRUE(torch::equal(gx0, gx1));
  EXPECT_TRUE(torch::equal(gw0, gw1));
  EXPECT_TRUE(torch::equal(next0, next1)) << "the recompute moved the caller's RNG";
}

// The recompute runs under the forward's autocast state even though backward runs outside it.
TEST(ActivationCheckpointing, RecomputeUsesTheForwardsAutocast) {
  torch::manual_seed(2);
  torch::nn::Linear lin(8, 8);
  std::vector<at::ScalarType> seen;
  auto fn = [&](const torch::Tensor& t) {
    auto out = lin->forward(t);
    seen.push_back(out.scalar_type());
    return out.to(torch::kFloat32);
  };
  auto x = torch::randn({2, 8}, torch::requires_grad());
  torch::Tensor y;
  {
    Runtime rt;
    rt.autocast_dtype = torch::kBFloat16;
    AutocastScope autocast(rt);
    ActivationCheckpointing on(true);
    y = maybe_checkpointed(fn, x * 1.0);
  }
  y.sum().backward();
  ASSERT_EQ(seen.size(), 2u);  // forward, recompute
  EXPECT_EQ(seen[0], torch::kBFloat16);
  EXPECT_EQ(seen[1], torch::kBFloat16);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast left on after backward";
}

TEST(ActivationCheckpointing, DoubleBackwardIsRefused) {
  torch::nn::Linear lin(4, 4);
  auto x = torch::randn({2, 4}, torch::requires_grad());
  ActivationCheckpointing on(true);
  auto y = maybe_checkpointed(
      [l = lin.ptr()](const torch::Tensor& t) { return l->forward(t).pow(2); }, x * 1.0);
  const torch::autograd::variable_list outputs{y.sum()}, inputs{x}, grad_out{torch::ones({})};
  EXPECT_THROW(torch::autograd::grad(outputs, inputs, grad_out, true, true), std::exception);
}

// The config key: validated with file:line, in the resolved dump, and a real training run
// gives the same losses either way.
TEST(ActivationCheckpointing, ConfigKeyAndTrainerRunMatch) {
  const Config def = parse("model:\n  d_model: 16\n");
  EXPECT_EQ(def.train.activation_checkpointing, "none");
  EXPECT_EQ(def.resolved["train"]["activation_checkpointing"].as<std::string>(), "none");
  try {
    parse("model:\n  d_model: 16\ntrain:\n  activation_checkpointing: block\n");
    FAIL() << "accepted activation_checkpointing: block";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.yaml:4 train.activation_checkpointing: expected "
                                         "one of none|layer, got \"block\""),
              std::string::npos)
        << e.what();
  }
  const std::string dir = test::temp_dir("act_ckpt_train");
  const std::string path = dir + "/c.yaml";
  test::write_text(path, str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 16\n"
                             "data:\n  dir: ",
                             test::fortunes_dataset(),
                             "\ntrain:\n  steps: 4\n  batch_size: 4\n  micro_batch_size: 2\n"
                             "  device: cpu\n  eval_batches: 2\n  sample_tokens: 0\n"));
  auto none = train(load_config(path), {dir + "/none", "", 0, true});
  auto layer = train(load_config(path, {"train.activation_checkpointing=layer"}),
                     {dir + "/layer", "", 0, true});
  ASSERT_EQ(none.losses.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(none.losses[i], layer.losses[i]) << "step " << i + 1;
  EXPECT_EQ(none.val_loss, layer.val_loss);
}

}  // namespace
}  // namespace herd
