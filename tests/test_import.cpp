// herd import of the reference-model fixtures (shared/reference-models): every checkpoint file
// of a folder gives the same tensors, and the imported model reproduces the reference's logits,
// loss and parameter gradients within the folder's tolerances, in float64 and float32.
// Also: export -> import round trip, and one-line errors for mismatched tensors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ckpt/checkpoint.h"
#include "ckpt/export.h"
#include "ckpt/import.h"
#include "ckpt/reference_check.h"
#include "ckpt/torch_pickle.h"
#include "config/node.h"
#include "fixtures.h"
#include "io/safetensors.h"
#include "models/stack.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using ckpt::RefSource;

std::string fixture_dir(const std::string& name) {
  return (fs::path(HERD_GOLDEN_DIR) / ".." / "reference-models" / name).lexically_normal().string();
}

struct Fixture {
  std::string name;
  RefSource source;
  std::vector<std::string> files;  // every checkpoint file of the folder
};

const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> all = {
      {"safari_hyena_lm", RefSource::Safari, {"model.ckpt", "state_dict.pt", "model.safetensors"}},
      {"safari_h3_hybrid_lm",
       RefSource::Safari,
       {"model.ckpt", "state_dict.pt", "model.safetensors"}},
      {"m2_bert_mlm",
       RefSource::M2,
       {"pytorch_model.bin", "composer_checkpoint.pt", "model.safetensors"}},
  };
  return all;
}

// The fixture's reference model config: meta.json's `config` (the constructor arguments).
YAML::Node reference_config(const Fixture& f) {
  return cfg::load_yaml_file(fixture_dir(f.name) + "/meta.json")["config"];
}

double max_abs(const torch::Tensor& t) {
  return t.abs().max().item<double>();
}

struct Built {
  Config cfg;
  std::shared_ptr<torch::nn::Module> model;
};

Built build_from(const Fixture& f, const ckpt::ReferenceCheckpoint& ref) {
  const YAML::Node rc =
      ref.model_config && !ref.model_config.IsNull() ? ref.model_config : reference_config(f);
  Built b{parse_config(ckpt::herd_config_from_reference(f.source, rc, f.name), f.name), nullptr};
  b.model = build_model(b.cfg.model);
  ckpt::load_reference_weights(f.source, ref, b.cfg.model, *b.model, f.name);
  return b;
}

TEST(ReferenceImport, EveryCheckpointFileGivesTheSameTensors) {
  for (const auto& f : fixtures()) {
    const auto dir = fixture_dir(f.name);
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    std::map<std::string, torch::Tensor> first;
    for (const auto& file : f.files) {
      SCOPED_TRACE(f.name + "/" + file);
      const auto ref = ckpt::read_reference_checkpoint(f.source, dir + "/" + file);
      if (first.empty()) {
        first = ref.tensors;
        continue;
      }
      ASSERT_EQ(ref.tensors.size(), first.size());
      for (const auto& [k, t] : first) {
        ASSERT_TRUE(ref.tensors.count(k)) << k;
        EXPECT_TRUE(ref.tensors.at(k).equal(t)) << k;
      }
      // The strided view (H3's A_imag: stride (16, 2), offset 1) read through its storage.
      if (f.name == "safari_h3_hybrid_lm") {
        EXPECT_TRUE(ref.tensors.at("backbone.layers.0.mixer.kernel.kernel.A_imag")
                        .equal(first.at("backbone.layers.0.mixer.kernel.kernel.A_imag")));
      }
    }
    // The models built from each file hold identical weights.
    std::vector<Built> models;
    for (const auto& file : f.files)
      models.push_back(build_from(f, ckpt::read_reference_checkpoint(f.source, dir + "/" + file)));
    auto p0 = models[0].model->named_parameters();
    for (size_t m = 1; m < models.size(); ++m)
      for (const auto& kv : models[m].model->named_parameters())
        EXPECT_TRUE(kv.value().equal(p0[kv.key()])) << f.name << " " << kv.key();
  }
}

TEST(ReferenceImport, LightningHyperParametersGiveTheMetaConfig) {
  for (const auto& f : fixtures()) {
    const auto ref =
        ckpt::read_reference_checkpoint(f.source, fixture_dir(f.name) + "/" + f.files[0]);
    ASSERT_TRUE(ref.model_config && !ref.model_config.IsNull())
        << f.name << ": no hyper-parameters read";
    const auto a = ckpt::herd_config_from_reference(f.source, ref.model_config, "file");
    const auto b = ckpt::herd_config_from_reference(f.source, reference_config(f), "meta");
    EXPECT_EQ(cfg::to_yaml(a), cfg::to_yaml(b)) << f.name;
  }
}

// Logits, loss and gradients of the model from `file` against io.safetensors / grads.safetensors.
void expect_reproduces(const Fixture& f, torch::Dtype dtype) {
  const auto dir = fixture_dir(f.name);
  const auto io = io::read_safetensors(dir + "/io.safetensors");
  const auto grads = io::read_safetensors(dir + "/grads.safetensors");
  const YAML::Node tol = YAML::Load(io.metadata.at("tolerances"));
  const bool f64 = dtype == torch::kFloat64;
  auto b = build_from(f, ckpt::read_reference_checkpoint(f.source, dir + "/" + f.files[0]));
  b.model->to(dtype);
  b.model->eval();
  const auto out = ckpt::run_on_reference_inputs(f.source, *b.model, io.tensors);
  const auto ref_logits = io.at("logits_f64");
  const double scale = max_abs(ref_logits);
  const double logits_err = max_abs(out.logits.to(torch::kFloat64) - ref_logits);
  const double rtol =
      f64 ? tol["float64"]["rtol"].as<double>() : tol["float32"]["logits_rtol"].as<double>();
  EXPECT_LE(logits_err, rtol * scale) << f.name << " logits";
  const double ref_loss = io.at("loss_f64").item<double>();
  const double loss_err = std::abs(out.loss.item<double>() - ref_loss);
  EXPECT_LE(loss_err, f64 ? 1e-9 * std::abs(ref_loss) : tol["float32"]["loss_atol"].as<double>())
      << f.name << " loss";
  // Gradients, reference key by reference key (aliases are summed into the canonical one).
  out.loss.backward();
  const auto names = ckpt::reference_names(f.source, b.cfg.model, *b.model);
  int64_t compared = 0;
  for (const auto& kv : b.model->named_parameters()) {
    const std::string key = "grad." + names.at(kv.key());
    ASSERT_TRUE(grads.has(key)) << key;
    const auto ref = grads.at(key);
    const auto g = kv.value().grad();
    ASSERT_TRUE(g.defined()) << kv.key();
    // float32: the README's bound, the largest over tensors (10x the reference's own error).
    const double bound = f64 ? 1e-9 : tol["float32"]["grad_rtol"].as<double>();
    // M2-BERT's word embedding has padding_idx 0: the lookup sends its [PAD] row no gradient
    // (only the tied decoder does); the import sets model.padding_idx.
    const double err = max_abs(g.to(torch::kFloat64) - ref);
    EXPECT_LE(err, bound * max_abs(ref)) << f.name << " " << key;
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int64_t>(grads.tensors.size())) << f.name;
}

TEST(ReferenceImport, ReproducesLogitsLossAndGradsFloat64) {
  for (const auto& f : fixtures()) expect_reproduces(f, torch::kFloat64);
}

TEST(ReferenceImport, ReproducesLogitsLossAndGradsFloat32) {
  for (const auto& f : fixtures()) expect_reproduces(f, torch::kFloat32);
}

TEST(ReferenceImport, WrongShapeAndUnknownTensorsAreOneLineErrorsNamingTheTensor) {
  const auto& f = fixtures()[0];
  auto ref = ckpt::read_reference_checkpoint(f.source, fixture_dir(f.name) + "/model.safetensors");
  const std::string key = "backbone.layers.1.mlp.fc1.weight";
  auto bad = ref;
  bad.tensors[key] = torch::zeros({3, 3});
  try {
    build_from(f, bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  auto extra = ref;
  extra.tensors["backbone.layers.0.mixer.surprise"] = torch::zeros({2});
  EXPECT_THROW(
      {
        try {
          build_from(f, extra);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("backbone.layers.0.mixer.surprise"),
                    std::string::npos);
          throw;
        }
      },
      Error);
  auto untied = ref;
  untied.tensors["lm_head.weight"] = ref.tensors.at("lm_head.weight") + 1;
  EXPECT_THROW(build_from(f, untied), Error);
  auto missing = ref;
  missing.tensors.erase("backbone.ln_f.bias");
  EXPECT_THROW(build_from(f, missing), Error);
}

TEST(ReferenceImport, CliImportsChecksExportsAndReimportsIdentically) {
  const auto& f = fixtures()[1];  // the H3 + attention hybrid
  const auto dir = fixture_dir(f.name);
  const auto tmp = test::temp_dir("import_cli");
  std::string out;
  ASSERT_EQ(test::run_herd(str("import --from safari ", dir, "/model.ckpt --out ", tmp,
                               "/ck --check ", dir, "/io.safetensors"),
                           &out),
            0)
      << out;
  EXPECT_NE(out.find("check passed"), std::string::npos) << out;
  // Another fixture's outputs do not match: non-zero exit.
  EXPECT_NE(
      test::run_herd(str("import --from safari ", dir, "/model.ckpt --out ", tmp,
                         "/ck_bad --check ", fixture_dir("safari_hyena_lm"), "/io.safetensors"),
                     &out),
      0)
      << out;
  // state_dict.pt has no hyper-parameters: a clear error, then --reference-config works.
  EXPECT_NE(
      test::run_herd(str("import --from safari ", dir, "/state_dict.pt --out ", tmp, "/ck2"), &out),
      0);
  EXPECT_NE(out.find("--reference-config"), std::string::npos) << out;
  ASSERT_EQ(
      test::run_herd(str("import --from safari ", dir, "/state_dict.pt --reference-config ", dir,
                         "/meta.json --out ", tmp, "/ck2 --check ", dir, "/io.safetensors"),
                     &out),
      0)
      << out;

  ASSERT_EQ(test::run_herd(str("export ", tmp, "/ck --out ", tmp, "/exported"), &out), 0) << out;
  EXPECT_TRUE(fs::is_regular_file(tmp + "/exported/model.safetensors"));
  const auto exported = io::read_safetensors(tmp + "/exported/model.safetensors");
  EXPECT_EQ(exported.metadata.at("format"), "herd-export");
  EXPECT_TRUE(exported.has("wte.weight"));
  ASSERT_EQ(test::run_herd(str("import --from herd ", tmp, "/exported --out ", tmp, "/back"), &out),
            0)
      << out;

  auto logits_of = [&](const std::string& path) {
    const auto ck = ckpt::open(path);
    const Config cfg = parse_config(ck.config, ck.file("config.yaml"));
    auto model = build_model(cfg.model);
    ckpt::load_model(ck, *model);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto io = io::read_safetensors(dir + "/io.safetensors");
    return ckpt::run_on_reference_inputs(RefSource::Safari, *model, io.tensors).logits;
  };
  EXPECT_TRUE(logits_of(tmp + "/ck").equal(logits_of(tmp + "/back")));
}

TEST(TorchPickle, ForeignObjectsAndConfigJsonRead) {
  // A composer file nests the weights; the hyper-parameter dicts convert to YAML.
  const auto root = ckpt::read_torch_file(fixture_dir("m2_bert_mlm") + "/composer_checkpoint.pt");
  ASSERT_TRUE(root->get("state"));
  EXPECT_TRUE(root->get("state")->get("model"));
  const auto ck = ckpt::read_torch_file(fixture_dir("safari_hyena_lm") + "/model.ckpt");
  const auto hp = ckpt::to_yaml_node(ck->get("hyper_parameters"));
  EXPECT_EQ(hp["model"]["layer"]["_name_"].as<std::string>(), "hyena");
  EXPECT_EQ(hp["model"]["vocab_size"].as<int64_t>(), 61);
  EXPECT_THROW(ckpt::read_torch_file(fixture_dir("m2_bert_mlm") + "/config.json"), Error);
}

TEST(Export, JsonOfYamlKeepsTypes) {
  const auto n = YAML::Load("{a: 1, b: 2.5e-4, c: true, d: text, e: [1, x], f: null, g: '12'}");
  EXPECT_EQ(ckpt::to_json(n),
            "{\n  \"a\": 1,\n  \"b\": 2.5e-4,\n  \"c\": true,\n  \"d\": \"text\",\n  \"e\": [1, "
            "\"x\"],\n  \"f\": null,\n  \"g\": \"12\"\n}\n");
}

}  // namespace
}  // namespace herd
