// herd dist-selftest context (hidden): context parallelism across real processes. Every rank
// of a world of C ranks (one context group) runs each block, and whole GPT and BERT hybrids,
// twice in float64: unsplit on the whole sequence, and on its shard of the positions under
// the group's split (blocks/sequence_split.h). DIR/rank<R>.txt lists, per case, the largest
// difference of the output (the shard's positions), of the input gradient and of every
// parameter gradient (summed over the ranks, as the gradient reduction does), and the
// size of the figures compared.
#include <yaml-cpp/yaml.h>

#include <fstream>

#include "core/error.h"
#include "dist/context_parallel.h"
#include "dist/env.h"
#include "models/bert.h"
#include "models/gpt.h"

namespace herd::cli {
namespace {

constexpr int64_t kBatch = 2, kLength = 12, kWidth = 12;

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

struct Grads {
  std::vector<torch::Tensor> params;
};

Grads take_grads(torch::nn::Module& m) {
  Grads g;
  for (auto& p : m.parameters()) {
    g.params.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    p.mutable_grad() = torch::Tensor();
  }
  return g;
}

// The split run's parameter gradients summed over the ranks against the unsplit ones.
double grad_diff(dist::World& world, const Grads& split, const Grads& whole) {
  double d = 0;
  for (size_t i = 0; i < split.params.size(); ++i) {
    auto sum = split.params[i].clone();
    world.finish(world.allreduce_async(sum), "gradient sum");
    d = std::max(d, max_diff(sum, whole.params[i]));
  }
  return d;
}

double grad_scale(const Grads& g) {
  double s = 0;
  for (const auto& t : g.params) s = std::max(s, t.abs().max().item<double>());
  return s;
}

struct Result {
  std::string name;
  double output = 0, input_grad = 0, param_grad = 0, scale = 0;
};

// One mixer, [B, L, D] -> [B, L, D], with a fixed cotangent w: (y * w).sum() backward.
Result check_block(dist::World& world, const dist::ContextGroup& group, const std::string& name,
                   const std::string& yaml, bool causal) {
  const auto node = YAML::Load(yaml);
  MixerSpec spec;
  spec.type = node["type"].as<std::string>();
  YAML::Node options = YAML::Clone(node);
  options.remove("type");
  spec.options = options;
  spec.origin = "selftest.yaml:1 " + name;
  torch::manual_seed(3);
  MixerContext ctx{kWidth, 4, kLength, causal, 0, 1};
  auto mixer = build_mixer(spec, ctx);
  mixer->to(torch::kFloat64);
  world.broadcast_parameters(*mixer);
  auto u = torch::randn({kBatch, kLength, kWidth}, torch::kFloat64).requires_grad_();
  auto w = torch::randn({kBatch, kLength, kWidth}, torch::kFloat64);

  auto y = mixer->forward(u);
  (y * w).sum().backward();
  const Grads whole = take_grads(*mixer);

  const int64_t Ls = kLength / group.parts(), first = group.index() * Ls;
  auto us = u.detach().narrow(1, first, Ls).clone().requires_grad_();
  torch::Tensor ys;
  {
    SequenceSplitScope split(&group);
    ys = mixer->forward(us);
    (ys * w.narrow(1, first, Ls)).sum().backward();
  }
  Result r{name};
  r.output = max_diff(ys, y.detach().narrow(1, first, Ls));
  r.input_grad = max_diff(us.grad(), u.grad().narrow(1, first, Ls));
  r.param_grad = grad_diff(world, take_grads(*mixer), whole);
  r.scale = std::max(y.abs().max().item<double>(), grad_scale(whole));
  return r;
}

Config model_config(const std::string& yaml) {
  return parse_config(YAML::Load(yaml), "selftest.yaml");
}

// A whole model's loss (the ranks' mean against the unsplit one) and parameter gradients
// (averaged over the ranks, as training does).
Result check_model(dist::World& world, const dist::ContextGroup& group, const std::string& name,
                   const std::string& yaml) {
  const Config cfg = model_config(yaml);
  const bool bert = cfg.model.stack == "bert";
  torch::manual_seed(5);
  std::shared_ptr<torch::nn::Module> module;
  Gpt gpt{nullptr};
  Bert bert_model{nullptr};
  if (bert) {
    bert_model = Bert(cfg.model);
    module = bert_model.ptr();
  } else {
    gpt = Gpt(cfg.model);
    module = gpt.ptr();
  }
  module->to(torch::kFloat64);
  world.broadcast_parameters(*module);
  const int64_t V = cfg.model.vocab_size;
  auto tokens = torch::randint(V, {kBatch, kLength}, torch::kInt64);
  auto targets = torch::randint(V, {kBatch, kLength}, torch::kInt64);
  // Uneven counts of scored tokens over the shards: the loss is the mean over all of them.
  targets.masked_fill_(torch::rand({kBatch, kLength}) < 0.4, kIgnoreLabel);
  auto loss = [&](const torch::Tensor& x, const torch::Tensor& t) {
    return bert ? bert_model->mlm(x, t).loss : gpt->loss(x, t);
  };
  auto whole_loss = loss(tokens, targets);
  whole_loss.backward();
  const Grads whole = take_grads(*module);

  const int64_t Ls = kLength / group.parts(), first = group.index() * Ls;
  torch::Tensor shard_loss;
  {
    SequenceSplitScope split(&group);
    shard_loss = loss(tokens.narrow(1, first, Ls), targets.narrow(1, first, Ls));
    shard_loss.backward();
  }
  Grads split = take_grads(*module);
  for (auto& g : split.params) g.div_(static_cast<double>(group.parts()));  // world average
  Result r{name};
  r.output = std::abs(world.mean(shard_loss.item<double>()) - whole_loss.item<double>());
  r.param_grad = grad_diff(world, split, whole);
  r.scale = std::max(whole_loss.item<double>(), grad_scale(whole));
  return r;
}

const char* kGptHybrid = R"(
model:
  stack: gpt
  vocab_size: 11
  d_model: 12
  n_layer: 6
  n_head: 4
  max_seq_len: 12
  mixer: {type: hyena, order: 3, filter_order: 8}
  layers:
    - at: [1]
      mixer: {type: attention}
    - at: [2]
      mixer: {type: m2}
    - at: [3]
      mixer: {type: h3, d_state: 4, head_dim: 2}
    - at: [4]
      mixer: {type: primer, n_head: 3}
    - at: [5]
      mixer: {type: s4d, d_state: 4}
)";

const char* kBertHybrid = R"(
model:
  stack: bert
  vocab_size: 11
  d_model: 12
  n_layer: 3
  n_head: 3
  max_seq_len: 12
  mixer: {type: m2, residual_long_conv: true, filter_order: 8}
  layers:
    - at: [1]
      mixer: {type: attention, n_head: 4}
    - at: [2]
      mixer: {type: primer, dconv_width: 4}
)";

}  // namespace

void context_parallel_check(const std::string& out_dir) {
  torch::set_num_threads(1);  // tiny tensors: ranks share the cores without spinning
  dist::WorldOptions o;
  o.backend = "gloo";
  o.timeout_s = 60;
  dist::World world(dist::detect_env(), o);
  const dist::ContextGroup group(world, world.size());
  std::vector<Result> results;
  const std::vector<std::tuple<std::string, std::string, bool>> blocks{
      {"attention_causal_h4", "{type: attention, n_head: 4}", true},
      {"attention_causal_h3", "{type: attention, n_head: 3}", true},
      {"attention_bidir_h4", "{type: attention, n_head: 4}", false},
      {"attention_bidir_h3", "{type: attention, n_head: 3}", false},
      {"primer_causal", "{type: primer, n_head: 4, dconv_width: 3}", true},
      {"primer_bidir", "{type: primer, n_head: 3, dconv_width: 4}", false},
      {"hyena_order2", "{type: hyena, filter_order: 8}", true},
      {"hyena_order3", "{type: hyena, order: 3, filter_order: 8, short_filter_order: 4}", true},
      {"m2_causal", "{type: m2, filter_order: 8}", true},
      {"m2_bidir", "{type: m2, filter_order: 8, residual_long_conv: true}", false},
      {"h3_head_dim1", "{type: h3, d_state: 4}", true},
      {"h3_head_dim2", "{type: h3, d_state: 4, head_dim: 2}", true},
      {"s4d", "{type: s4d, d_state: 4}", true},
  };
  for (const auto& [name, yaml, causal] : blocks)
    results.push_back(check_block(world, group, name, yaml, causal));
  results.push_back(check_model(world, group, "gpt_hybrid", kGptHybrid));
  results.push_back(check_model(world, group, "bert_hybrid", kBertHybrid));

  std::ofstream f(out_dir + "/rank" + std::to_string(world.rank()) + ".txt");
  f << "world " << world.size() << "\n";
  for (const auto& r : results)
    f << r.name << ".output " << r.output << "\n"
      << r.name << ".input_grad " << r.input_grad << "\n"
      << r.name << ".param_grad " << r.param_grad << "\n"
      << r.name << ".scale " << r.scale << "\n";
  HERD_CHECK(f.good(), out_dir, ": could not write the self-test result");
}

}  // namespace herd::cli
