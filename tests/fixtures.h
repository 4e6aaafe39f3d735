// Shared test fixtures: a small real-text dataset (Debian `fortunes`) prepared once per
// machine and reused by every test process, and helpers to run the herd binary.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace herd::test {

// Directory of a prepared dataset (tokenizer vocab 512) built from a few fortune files.
// Built atomically under the system temp dir on first use; later calls reuse it.
const std::string& fortunes_dataset();

// A fresh, empty directory for this test.
std::string temp_dir(const std::string& tag);

// Runs `herd ARGS` (stdout+stderr captured); returns the exit status.
int run_herd(const std::string& args, std::string* output = nullptr);

// Writes text to a file.
void write_text(const std::string& path, const std::string& text);

// Every tensor of a checkpoint's model.pt, by name.
std::map<std::string, torch::Tensor> weights_of(const std::string& checkpoint);

}  // namespace herd::test
