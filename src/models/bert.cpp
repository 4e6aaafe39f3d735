#include "models/bert.h"

#include <vector>

#include "ops/cross_entropy.h"

namespace herd {

MlmHeadImpl::MlmHeadImpl(const ModelConfig& cfg) {
  dense = register_module("dense", torch::nn::Linear(cfg.d_model, cfg.d_model));
  ln = register_module("ln", layer_norm(cfg));
  if (!cfg.tie_embeddings)
    decoder = register_module(
        "decoder",
        torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.vocab_size).bias(false)));
  bias = register_parameter("bias", torch::zeros({cfg.vocab_size}));
}

torch::Tensor MlmHeadImpl::transform(const torch::Tensor& hidden) {
  return ln(torch::gelu(dense(hidden)));  // BERT's hidden_act: exact (erf) GELU
}

const torch::Tensor& MlmHeadImpl::decoder_weight(const torch::Tensor& word_embedding) const {
  return decoder ? decoder->weight : word_embedding;
}

torch::Tensor MlmHeadImpl::forward(const torch::Tensor& hidden,
                                   const torch::Tensor& word_embedding) {
  return torch::nn::functional::linear(transform(hidden), decoder_weight(word_embedding), bias);
}

BertImpl::BertImpl(const ModelConfig& c) : cfg(c) {
  HERD_CHECK(cfg.stack == "bert", "model.stack: ", cfg.stack, " is not a BERT");
  HERD_CHECK(cfg.vocab_size > 0,
             "model.vocab_size: must be positive (set it or take it from the dataset)");
  HERD_CHECK(cfg.num_classes >= 0, "model.num_classes: must be >= 0, got ", cfg.num_classes);
  HERD_CHECK(cfg.padding_idx < cfg.vocab_size, "model.padding_idx: ", cfg.padding_idx,
             " must be below model.vocab_size ", cfg.vocab_size, " (or -1: none)");
  auto wte_options = torch::nn::EmbeddingOptions(cfg.vocab_size, cfg.d_model);
  if (cfg.padding_idx >= 0) wte_options.padding_idx(cfg.padding_idx);
  wte = register_module("wte", torch::nn::Embedding(wte_options));
  if (cfg.positional == "learned")
    wpe = register_module("wpe", torch::nn::Embedding(cfg.max_seq_len, cfg.d_model));
  if (cfg.type_vocab_size > 0)
    token_type_emb =
        register_module("token_type_emb", torch::nn::Embedding(cfg.type_vocab_size, cfg.d_model));
  if (cfg.norm == "post") ln_emb = register_module("ln_emb", layer_norm(cfg));
  h = register_module("h", make_blocks(cfg, /*causal=*/false));
  if (cfg.norm == "pre") ln_f = register_module("ln_f", layer_norm(cfg));
  if (cfg.num_classes == 0) {
    mlm_head = register_module("mlm_head", MlmHead(cfg));
  } else {
    pooler = register_module("pooler", torch::nn::Linear(cfg.d_model, cfg.d_model));
    classifier = register_module("classifier", torch::nn::Linear(cfg.d_model, cfg.num_classes));
  }

  // HF BertPreTrainedModel._init_weights, which M2-BERT's post_init applies to every
  // submodule: each torch Linear (the mixers' included) N(0, init_std) with zero bias, the
  // embeddings N(0, init_std) with the padding_idx row zero. Block-diagonal linears, convolutions,
  // attention's packed in_proj and the filters' positions/frequencies keep their own init.
  // model.init: torch keeps the constructors' (torch's Embedding zeroes padding_idx itself).
  if (cfg.init != "gpt2") return;
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::LinearImpl>()) {
      torch::nn::init::normal_(linear->weight, 0.0, cfg.init_std);
      if (linear->bias.defined()) torch::nn::init::zeros_(linear->bias);
    } else if (auto* emb = module->as<torch::nn::EmbeddingImpl>()) {
      torch::nn::init::normal_(emb->weight, 0.0, cfg.init_std);
      if (auto pad = emb->options.padding_idx()) emb->weight[*pad].zero_();  // as HF's init
    }
  }
}

torch::Tensor BertImpl::encode(const torch::Tensor& tokens, const torch::Tensor& token_types,
                               const torch::Tensor& pad) {
  HERD_CHECK(tokens.dim() == 2, "bert: tokens must be [B, T], got ", tokens.sizes());
  // Under context parallelism tokens are one shard (blocks/sequence_split.h).
  const int64_t T = tokens.size(1), first = position_offset(T);
  HERD_CHECK(T >= 1 && global_length(T) <= cfg.max_seq_len, "bert: sequence length ",
             global_length(T), " outside [1, model.max_seq_len ", cfg.max_seq_len, "]");
  auto x = wte(tokens);
  if (wpe) x = x + wpe(torch::arange(first, first + T, tokens.options()));
  if (token_type_emb) {
    HERD_CHECK(!token_types.defined() || token_types.sizes() == tokens.sizes(),
               "bert: token_types ", token_types.sizes(), " must match tokens ", tokens.sizes());
    x = x + token_type_emb(token_types.defined() ? token_types : torch::zeros_like(tokens));
  } else {
    HERD_CHECK(!token_types.defined(), "bert: token_types given, but model.type_vocab_size is 0");
  }
  if (ln_emb) x = ln_emb(x);
  x = embedding_dropout(x, cfg, is_training());
  HERD_CHECK(!pad.defined() || pad.sizes() == tokens.sizes(), "bert: pad mask ", pad.sizes(),
             " must match tokens ", tokens.sizes());
  const Residual out = run_blocks(h, {x, {}}, pad);
  return ln_f ? final_norm(out, ln_f) : out.value();
}

torch::Tensor BertImpl::mlm_logits(const torch::Tensor& hidden) {
  HERD_CHECK(mlm_head, "bert: no MLM head (model.num_classes is ", cfg.num_classes,
             "; set it to 0 for masked-language-model pretraining)");
  return mlm_head(hidden, wte->weight);
}

MlmResult BertImpl::mlm(const torch::Tensor& input, const torch::Tensor& labels) {
  HERD_CHECK(labels.sizes() == input.sizes(), "bert mlm: labels ", labels.sizes(),
             " must match input ", input.sizes());
  auto hidden = encode(input);
  const auto selected = labels != kIgnoreLabel;
  auto targets = labels.index({selected});
  MlmResult r;
  r.count = targets.numel();
  // Context parallel: every shard's mean weighted to the mean over the sequences' masked
  // tokens (a collective: every shard computes it, masked tokens or not).
  const double weight = split_mean_weight(static_cast<double>(r.count));
  // Zero, but connected to the graph, so a batch without masked tokens still backpropagates.
  if (r.count == 0) {
    r.loss = hidden.sum() * 0;
    return r;
  }
  HERD_CHECK(mlm_head, "bert: no MLM head (model.num_classes is ", cfg.num_classes,
             "; set it to 0 for masked-language-model pretraining)");
  // The decoder and the softmax by chunks of rows (ops/cross_entropy.h), argmax included.
  auto x = mlm_head->transform(hidden.index({selected}));
  torch::Tensor correct;
  r.loss = ops::linear_cross_entropy(x, mlm_head->decoder_weight(wte->weight), mlm_head->bias,
                                     targets, kIgnoreLabel, &correct);
  if (weight != 1.0) r.loss = r.loss * weight;
  r.correct = correct.item<int64_t>();
  return r;
}

torch::Tensor BertImpl::classify(const torch::Tensor& tokens, const torch::Tensor& token_types,
                                 const torch::Tensor& pad) {
  HERD_CHECK(classifier, "bert: no classification head (set model.num_classes > 0)");
  auto hidden = encode(tokens, token_types, pad);
  torch::Tensor pooled;
  if (cfg.pool != "mean") {
    pooled = hidden.select(1, 0);  // [CLS] first
  } else if (!pad.defined()) {
    pooled = hidden.mean(1);
  } else {  // over the real positions only
    auto keep = pad.logical_not().unsqueeze(-1).to(hidden.scalar_type());
    pooled = (hidden * keep).sum(1) / keep.sum(1).clamp_min(1);
  }
  return classifier(torch::tanh(pooler(pooled)));
}

void load_pretrained_encoder(Bert& model, const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error&) {
    throw Error(str(path, ": cannot read weights (corrupt or not a herd model.pt)"));
  }
  auto is_head = [](const std::string& name) {
    for (const char* prefix : {"mlm_head.", "pooler.", "classifier."})
      if (name.rfind(prefix, 0) == 0) return true;
    return false;
  };
  // Everything is checked before anything is copied: a failed load leaves the model as it was.
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (model tensor, file tensor)
  auto check = [&](const std::string& name, const torch::Tensor& dst, bool buffer) {
    if (is_head(name)) return;
    torch::Tensor src;
    if (!archive.try_read(name, src, buffer))
      missing.push_back(name);
    else if (src.sizes() != dst.sizes())
      mismatched.push_back(str(name, " ", src.sizes(), " vs ", dst.sizes()));
    else
      copies.emplace_back(dst, src);
  };
  for (const auto& kv : model->named_parameters()) check(kv.key(), kv.value(), false);
  for (const auto& kv : model->named_buffers()) check(kv.key(), kv.value(), true);
  auto join = [](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < 6; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 6) out += str(", ... (", names.size(), " in all)");
    return out;
  };
  HERD_CHECK(missing.empty(), path, ": not a pretrained encoder of this model, missing ",
             join(missing));
  HERD_CHECK(mismatched.empty(), path,
             ": encoder shapes differ (file vs model): ", join(mismatched));
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
}

}  // namespace herd
