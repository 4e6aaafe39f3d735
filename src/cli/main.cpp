// herd: one binary, one subcommand per file in src/cli/.
#include <torch/torch.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"herd: a C++ trainer for attention, H3, Hyena, Monarch Mixer and Primer models"};
  app.set_version_flag("--version", HERD_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  herd::cli::add_info(app);
  herd::cli::add_config(app);
  herd::cli::add_runs(app);
  herd::cli::add_train(app);
  herd::cli::add_eval(app);
  herd::cli::add_generate(app);
  herd::cli::add_tokenizer(app);
  herd::cli::add_prepare(app);
  herd::cli::add_conformance(app);
  herd::cli::add_bench(app);
  herd::cli::add_dist_selftest(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const herd::Error& e) {
    std::fprintf(stderr, "herd: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "herd: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herd: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
