// herd import: weights trained with the reference code (or exported by herd) -> a checkpoint.
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "ckpt/export.h"
#include "ckpt/import.h"
#include "ckpt/reference_check.h"
#include "cli/commands.h"
#include "core/error.h"

namespace herd::cli {
namespace fs = std::filesystem;

void add_import(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "import", "Convert a safari / m2 checkpoint (or a herd export) into a herd checkpoint");
  struct Args {
    std::string from, checkpoint, config, reference_config, out, check, tokenizer;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--from", args->from, "safari | m2 | herd (a `herd export` directory)")
      ->required();
  cmd->add_option("checkpoint", args->checkpoint,
                  "safari: Lightning .ckpt, state-dict .pt or .safetensors; m2: pytorch_model.bin "
                  "or .safetensors (config.json beside it) or a composer checkpoint; herd: the "
                  "export directory")
      ->required();
  cmd->add_option("--config", args->config,
                  "herd YAML config whose model section describes the weights (default: derived "
                  "from the checkpoint's hyper-parameters)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--reference-config", args->reference_config,
                  "the reference's model config (safari model section or Lightning "
                  "hyper_parameters as YAML/JSON; m2 config.json) for files that carry none")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "Checkpoint directory to write")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.model to store with the weights")
      ->check(CLI::ExistingFile);
  cmd->add_option("--check", args->check,
                  "io.safetensors with input_ids and reference logits/loss: compare, exit "
                  "non-zero beyond tolerance")
      ->check(CLI::ExistingFile);
  cmd->footer(
      "Example:\n  herd import --from safari ../shared/reference-models/safari_hyena_lm/model.ckpt "
      "--out runs/hyena-import --check ../shared/reference-models/safari_hyena_lm/io.safetensors");
  cmd->callback([args] {
    ckpt::ImportRequest r;
    r.source = ckpt::parse_ref_source(args->from);
    r.checkpoint = args->checkpoint;
    r.herd_config = args->config;
    r.reference_config = args->reference_config;
    r.out = args->out;
    r.tokenizer = args->tokenizer;
    if (r.tokenizer.empty() && r.source == ckpt::RefSource::Herd &&
        fs::is_regular_file(fs::path(r.checkpoint) / "tokenizer.model"))
      r.tokenizer = (fs::path(r.checkpoint) / "tokenizer.model").string();
    const auto result = ckpt::import_checkpoint(r);
    std::cout << "wrote " << result.checkpoint << " (" << result.config.model.stack << ", "
              << result.config.model.n_layer << " layers, d_model " << result.config.model.d_model
              << ", vocab " << result.config.model.vocab_size << ")\n";
    // The training recipe it carries (optimizer.sources in its config.yaml keeps the origins).
    for (const auto& v : result.recipe)
      std::cout << "recipe: " << v.key << " = " << v.value << "  (" << v.from << ")\n";
    if (args->check.empty()) return;
    bool ok = true;
    for (const auto& line :
         ckpt::check_against_reference(r.source, result.checkpoint, args->check)) {
      std::cout << std::left << std::setw(34) << line.what << std::scientific
                << std::setprecision(3) << line.error << "  (bound " << line.bound << ")  "
                << (line.ok() ? "ok" : "FAIL") << "\n";
      ok = ok && line.ok();
    }
    HERD_CHECK(ok, args->check, ": the imported model does not reproduce the reference outputs");
    std::cout << "check passed\n";
  });
}

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Write a checkpoint as model.safetensors + config.json + tokenizer");
  struct Args {
    std::string checkpoint, out;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("checkpoint", args->checkpoint, "Checkpoint directory")->required();
  cmd->add_option("--out", args->out, "Output directory")->required();
  cmd->footer(
      "Example:\n  herd export runs/qs/checkpoints/step_00000600 --out exports/qs\n"
      "  (names: data/formats/export.md)");
  cmd->callback([args] {
    const int64_t n = ckpt::export_checkpoint(args->checkpoint, args->out);
    std::cout << "wrote " << args->out << "/model.safetensors (" << n << " tensors), config.json\n";
  });
}

}  // namespace herd::cli
