#include "ckpt/reference_check.h"

#include <cmath>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/bert.h"
#include "models/gpt.h"
#include "models/stack.h"

namespace herd::ckpt {

ReferenceOutputs run_on_reference_inputs(RefSource source, torch::nn::Module& model,
                                         const std::map<std::string, torch::Tensor>& io) {
  auto it = io.find("input_ids");
  HERD_CHECK(it != io.end(), "check: the io file has no input_ids");
  const auto ids = it->second.to(torch::kInt64);
  torch::Tensor logits;
  if (auto* gpt = dynamic_cast<GptImpl*>(&model)) {
    logits = gpt->forward(ids);
  } else if (auto* bert = dynamic_cast<BertImpl*>(&model)) {
    logits = bert->mlm_logits(bert->encode(ids));
  } else {
    throw Error("check: only gpt and bert (MLM) models can be checked");
  }
  ReferenceOutputs out{logits, {}};
  auto lab = io.find("labels");
  if (lab == io.end()) return out;
  const auto labels = lab->second.to(torch::kInt64).reshape({-1});
  const auto flat = logits.reshape({-1, logits.size(-1)});
  if (source == RefSource::M2) {
    const auto keep = labels > 0;  // BertForMaskedLM: labels > 0, not != -100
    out.loss = torch::nn::functional::cross_entropy(flat.index({keep}), labels.index({keep}));
  } else {
    out.loss = torch::nn::functional::cross_entropy(flat, labels);
  }
  return out;
}

namespace {

double max_abs(const torch::Tensor& t) {
  return t.abs().max().item<double>();
}

YAML::Node tolerances_of(const io::SafeTensors& f) {
  auto it = f.metadata.find("tolerances");
  HERD_CHECK(it != f.metadata.end(), f.file, ": no \"tolerances\" metadata");
  return YAML::Load(it->second);
}

}  // namespace

std::vector<CheckLine> check_against_reference(RefSource source, const std::string& checkpoint,
                                               const std::string& io_path) {
  const auto io = io::read_safetensors(io_path);
  const YAML::Node tol = tolerances_of(io);
  const auto ck = open(checkpoint);
  const Config cfg = parse_config(ck.config, ck.file("config.yaml"));
  const auto ref_logits = io.at("logits_f64");
  const bool has_loss = io.has("loss_f64") && io.has("labels");
  std::vector<CheckLine> lines;
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    auto model = build_model(cfg.model);
    load_model(ck, *model);
    model->to(dtype);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto out = run_on_reference_inputs(source, *model, io.tensors);
    HERD_CHECK(out.logits.sizes() == ref_logits.sizes(), io_path, ": herd logits ",
               out.logits.sizes(), " vs reference ", ref_logits.sizes());
    const bool f64 = dtype == torch::kFloat64;
    const std::string name = f64 ? "float64" : "float32";
    const double scale = max_abs(ref_logits);
    const double rtol =
        f64 ? tol["float64"]["rtol"].as<double>() : tol["float32"]["logits_rtol"].as<double>();
    lines.push_back({name + " logits (max abs error)",
                     max_abs(out.logits.to(torch::kFloat64) - ref_logits), rtol * scale});
    if (has_loss && out.loss.defined()) {
      const double ref = io.at("loss_f64").item<double>();
      const double bound = f64 ? tol["float64"]["rtol"].as<double>() * std::abs(ref)
                               : tol["float32"]["loss_atol"].as<double>();
      lines.push_back({name + " loss (abs error)", std::abs(out.loss.item<double>() - ref), bound});
    }
  }
  return lines;
}

}  // namespace herd::ckpt
