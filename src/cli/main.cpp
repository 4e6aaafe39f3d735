// herd: one binary, one subcommand per file in src/cli/.
#include <torch/torch.h>

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "train/stop_signal.h"

namespace {

// "info, config, train, ..." in the order they were added.
std::string subcommand_names(CLI::App& app) {
  std::string out;
  for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

// The first argument names no subcommand: the one-line error, else "".
std::string unknown_subcommand(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return "";
  for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == argv[1]) return "";
  return herd::str("unknown subcommand \"", argv[1], "\" (expected one of: ", subcommand_names(app),
                   "; herd --help describes them)");
}

}  // namespace

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
  herd::cli::add_import(app);
  herd::cli::add_export(app);
  herd::cli::add_dist_selftest(app);
  // A file-size limit (ulimit -f) then fails the write with EFBIG, reported like a full disk,
  // instead of killing the process.
  signal(SIGXFSZ, SIG_IGN);
  if (const std::string bad = unknown_subcommand(app, argc, argv); !bad.empty()) {
    std::fprintf(stderr, "herd: error: %s\n", bad.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RequiredError& e) {
    if (argc < 2) {
      std::fprintf(stderr, "herd: error: a subcommand is required (one of: %s; herd --help)\n",
                   subcommand_names(app).c_str());
      return 2;
    }
    std::fprintf(stderr, "herd: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const CLI::ParseError& e) {
    // One line (CLI11 adds a second, "Run with --help ..."); status 2 for every usage error.
    std::fprintf(stderr, "herd: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const herd::ExitStatus& e) {
    return e.code;
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
