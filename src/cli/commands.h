// Each subcommand lives in its own file under src/cli/ and registers itself on the app here.
#pragma once

#include <CLI/CLI.hpp>

namespace herd::cli {

void add_info(CLI::App& app);
void add_config(CLI::App& app);
void add_runs(CLI::App& app);  // herd runs list
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_generate(CLI::App& app);
void add_tokenizer(CLI::App& app);
void add_prepare(CLI::App& app);
void add_prepare_images(CLI::App& prepare);  // under `herd prepare`
void add_conformance(CLI::App& app);
void add_bench(CLI::App& app);
void add_generate_bench(CLI::App* bench);  // `herd bench generate`, bench_generate.cpp
void add_import(CLI::App& app);            // src/cli/import.cpp
void add_export(CLI::App& app);            // src/cli/import.cpp
void add_dist_selftest(CLI::App& app);     // hidden: used by the tests

}  // namespace herd::cli
