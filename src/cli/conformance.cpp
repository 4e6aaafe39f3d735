// herd conformance DIR: replays golden files through herd's modules (see conformance.h).
#include <iostream>

#include "cli/commands.h"
#include "conformance/conformance.h"
#include "core/error.h"

namespace herd::cli {

void add_conformance(CLI::App& app) {
  struct Args {
    std::string dir, dtype = "both", filter;
    bool verbose = false, strict_f32 = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "conformance", "Check herd's blocks against golden reference files (forward + backward)");
  cmd->add_option("dir", args->dir, "Folder of <block>__<variant>.safetensors golden files")
      ->required();
  cmd->add_option("--dtype", args->dtype, "Precision(s) to run herd in")
      ->check(CLI::IsMember({"float64", "float32", "both"}));
  cmd->add_option("--filter", args->filter, "Only files whose name contains this substring");
  cmd->add_flag("--verbose,-v", args->verbose, "Per-tensor errors for passing files too");
  cmd->add_flag("--strict-f32", args->strict_f32,
                "float32 bound per tensor: 10 x the reference's own f32_max_abs_err");
  cmd->footer(
      "Exit status is non-zero when any file fails or cannot be read.\n"
      "Example:\n  herd conformance shared/golden --dtype float64 --filter attention -v");
  cmd->callback([args] {
    conformance::Options opt;
    opt.filter = args->filter;
    opt.verbose = args->verbose;
    opt.strict_f32 = args->strict_f32;
    if (args->dtype == "float64") opt.dtypes = {torch::kFloat64};
    if (args->dtype == "float32") opt.dtypes = {torch::kFloat32};
    auto results = conformance::check_dir(args->dir, opt, &std::cout);
    size_t failed = 0;
    for (const auto& r : results) failed += !r.pass;
    std::cout << (failed ? "FAILED" : "OK") << ": " << results.size() - failed << " of "
              << results.size() << " checks passed\n";
    std::cout.flush();
    if (failed) throw Error(str("conformance: ", failed, " of ", results.size(), " checks failed"));
  });
}

}  // namespace herd::cli
