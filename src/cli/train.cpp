// herd train / herd eval / herd config check: the run-level subcommands (generate: generate.cpp).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "ckpt/checkpoint.h"
#include "cli/commands.h"
#include "config/node.h"
#include "config/schema.h"
#include "core/log.h"
#include "dist/launcher.h"
#include "models/stack.h"
#include "train/optimizer.h"
#include "train/stop_signal.h"
#include "train/trainer.h"

namespace herd::cli {
namespace fs = std::filesystem;

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a YAML config");
  struct Args {
    std::string config, run_dir, resume, init_from;
    std::vector<std::string> overrides;
    int64_t stop_after = 0;
    int nproc = 0;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->config, "YAML config")->required()->check(CLI::ExistingFile);
  cmd->add_option("--nproc-per-node", args->nproc,
                  "Start this many data-parallel ranks here and supervise them (torchrun and "
                  "srun start one herd per rank instead; see README)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--stop-after", args->stop_after,
                  "Checkpoint and stop after this step (resume later)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--set", args->overrides, "Override a config value: key.path=value (repeatable)");
  cmd->add_option("--run-dir", args->run_dir, "Run directory (default: runs/<config name>)");
  cmd->add_option("--resume", args->resume,
                  "auto (newest valid checkpoint in the run dir, if any) or a checkpoint path");
  cmd->add_option(
      "--init-from", args->init_from,
      "Start from these weights (a herd checkpoint, e.g. from herd import), with a fresh "
      "optimizer and step 0 (sets task.init_from)");
  cmd->add_flag("--overwrite", args->overwrite,
                "Start over in a run dir that holds checkpoints, deleting them (without it such a "
                "run dir is refused unless --resume is given)");
  cmd->footer(
      "Example:\n  herd train configs/quickstart.yaml --set train.steps=200 --run-dir runs/qs "
      "--resume auto\n  herd train configs/quickstart.yaml --nproc-per-node 2\n"
      "SIGTERM, SIGINT or SIGUSR1 finish the current step, write a checkpoint and exit with "
      "status 75\n(resume with --resume auto); a second signal aborts at once.");
  cmd->callback([args] {
    auto overrides = args->overrides;
    if (!args->init_from.empty()) {
      HERD_CHECK(fs::is_directory(args->init_from), "--init-from ", args->init_from,
                 ": expected a checkpoint directory (holding model.pt and state.yaml)");
      overrides.push_back("task.init_from=" + args->init_from);
    }
    Config cfg = load_config(args->config, overrides);
    if (!args->resume.empty() && args->resume != "auto" && !fs::is_directory(args->resume))
      throw Error(str("--resume ", args->resume, ": expected auto or a checkpoint directory"));
    RunOptions o{args->run_dir, args->resume, args->stop_after, false};
    o.overwrite = args->overwrite;
    HERD_CHECK(!(args->overwrite && args->resume == "auto"),
               "--overwrite with --resume auto: pick one (continue the run, or start over)");
    check_run_dir(
        o.run_dir.empty() ? (fs::path("runs") / fs::path(cfg.source).stem()).string() : o.run_dir,
        o);
    if (args->nproc > 0) {
      const int64_t C = cfg.train.context_parallel;  // ranks sharing each sequence
      if (args->nproc % C != 0)
        throw Error(str(cfg.source, " train.context_parallel: ", C,
                        " does not divide --nproc-per-node ", args->nproc,
                        " (ranks = data parallel x context parallel)"));
      if (cfg.train.batch_size % (args->nproc / C) != 0)
        throw Error(str(cfg.source, " train.batch_size: ", cfg.train.batch_size,
                        " does not divide among --nproc-per-node ", args->nproc, " ranks",
                        C > 1 ? str(" / train.context_parallel ", C) : std::string(),
                        " (it is the global batch, split evenly)"));
      dist::LaunchOptions lo;
      lo.nproc = args->nproc;
      lo.args = dist::own_args_without("--nproc-per-node");
      const int status = dist::launch(lo);
      if (status != 0) throw ExitStatus(status, "ranks stopped on a signal");
      return;
    }
    const TrainResult r = train(cfg, o);
    if (r.stop_signal > 0) throw ExitStatus(kExitStopped, "stopped on a signal");
  });
}

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "Validation metrics of a checkpoint (loss and perplexity, or accuracy)");
  struct Args {
    std::string config, checkpoint;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->config, "YAML config (its data section names the validation set)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint directory")->required();
  cmd->add_option("--set", args->overrides, "Override a config value: key.path=value");
  cmd->footer(
      "Example:\n  herd eval configs/quickstart.yaml --checkpoint "
      "runs/quickstart/checkpoints/step_00000300");
  cmd->callback([args] {
    Config cfg = load_config(args->config, args->overrides);
    auto task = task_from_checkpoint(args->checkpoint, cfg);
    const auto ck = ckpt::open(args->checkpoint);
    HERD_CHECK(task->has_eval(), args->checkpoint, ": the config's data has no validation split");
    std::cout << "checkpoint " << ck.path << " step " << ck.state.step << "\n";
    for (const auto& [name, v] : task->evaluate(task->config().train.eval_batches, EvalShard{}))
      std::cout << "val_" << name << " " << v << "\n";
  });
}

// `herd config docs`: the key reference generated from the schema table (docs/config.md).
static void add_config_docs(CLI::App& config) {
  auto* docs = config.add_subcommand("docs", "Print the config key reference (docs/config.md)");
  auto out = std::make_shared<std::string>();
  docs->add_option("--out", *out, "Write it to this file instead of stdout");
  docs->footer("Example:\n  herd config docs --out docs/config.md");
  docs->callback([out] {
    const std::string text = cfg::config_docs_markdown();
    if (out->empty()) {
      std::cout << text;
      return;
    }
    std::ofstream f(*out);
    HERD_CHECK(f << text, *out, ": cannot write the config reference");
    std::cout << "wrote " << *out << "\n";
  });
}

void add_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Inspect configs");
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand(
      "check", "Validate a config; print it resolved, its layer plan, size and FLOPs");
  struct Args {
    std::string config;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  check->add_option("config", args->config, "YAML config")->required()->check(CLI::ExistingFile);
  check->add_option("--set", args->overrides, "Override a config value: key.path=value");
  check->footer("Example:\n  herd config check configs/quickstart.yaml --set model.n_layer=8");
  check->callback([args] {
    Config cfg = load_config(args->config, args->overrides);
    // The vocabulary comes from the (first) dataset; data.mix sources share one tokenizer.
    const std::string text_dir = cfg.data.mix.empty() ? cfg.data.dir : cfg.data.mix.front().dir;
    if (cfg.model.stack != "vit" && cfg.model.vocab_size == 0 && !text_dir.empty() &&
        fs::exists(fs::path(text_dir) / "manifest.yaml"))
      cfg = with_dataset(cfg, data::load_manifest(text_dir));
    HERD_CHECK(cfg.model.stack == "vit" || cfg.model.vocab_size > 0, cfg.source,
               " model.vocab_size: 0 means \"from the dataset\", but data.dir has no manifest yet; "
               "set it or prepare the data");
    auto model = build_model(cfg.model);
    std::cout << cfg::to_yaml(cfg.resolved) << "# " << cfg.model.stack << " layer plan ("
              << (cfg.model.norm == "post" ? "post-norm" : "pre-norm") << ", "
              << (cfg.model.stack == "gpt" ? "causal" : "bidirectional") << "):\n";
    const auto plan = layer_plan(cfg.model);
    for (size_t i = 0; i < plan.size(); ++i)
      std::cout << "#   layer " << i << ": " << plan[i] << "\n";
    const int64_t n = parameter_count(*model);
    std::cout << "# parameters: " << n << " (" << std::fixed << std::setprecision(2) << n / 1e6
              << "M)\n"
              << "# training FLOPs per token: " << std::scientific << std::setprecision(3)
              << flops_per_token(cfg.model, *model, cfg.seq_len())
              << " (6 x matmul params + 12 x attn layers x T x D)\n"
              << std::defaultfloat
              << describe_param_groups(plan_param_groups(*model, cfg.optimizer, cfg.source),
                                       cfg.optimizer);
  });
  add_config_docs(*cmd);
}

}  // namespace herd::cli
