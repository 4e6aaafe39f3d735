#include "fixtures.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/text/prepare.h"
#include "data/text/tokenizer.h"

namespace herd::test {
namespace fs = std::filesystem;

const std::string& fortunes_dataset() {
  static const std::string dir = [] {
    // Bump the suffix when the recipe below changes. An flock serialises concurrent test
    // processes: the first builds, the others wait and reuse.
    const fs::path final_dir = fs::temp_directory_path() / "herd-test-fortunes-v2";
    const std::string lock_path = final_dir.string() + ".lock";
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + lock_path);
    if (!fs::exists(final_dir / "manifest.yaml")) {
      const std::vector<std::string> inputs = {
          "/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
          "/usr/share/games/fortunes/science", "/usr/share/games/fortunes/wisdom"};
      for (const auto& f : inputs)
        if (!fs::exists(f))
          throw std::runtime_error(f + " missing: run scripts/setup.sh (package fortunes)");
      fs::remove_all(final_dir);
      fs::create_directories(final_dir);
      data::TokenizerTrainOptions topt;
      topt.source.doc_delimiter = "%";
      data::train_tokenizer(inputs, 512, "bpe", (final_dir / "tokenizer").string(), topt);
      data::PrepareOptions p;
      p.inputs = inputs;
      p.tokenizer = (final_dir / "tokenizer.model").string();
      p.out_dir = final_dir.string();
      p.doc_delimiter = "%";
      p.val_fraction = 0.1;
      data::prepare_text(p);  // writes manifest.yaml last: its presence marks completion
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
    return final_dir.string();
  }();
  return dir;
}

std::string temp_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = tag;
  if (info) name += std::string("-") + info->test_suite_name() + "-" + info->name();
  const fs::path dir =
      fs::temp_directory_path() / ("herd-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

int run_herd(const std::string& args, std::string* output) {
  const std::string cmd = std::string(HERD_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::map<std::string, torch::Tensor> weights_of(const std::string& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint + "/model.pt");
  std::map<std::string, torch::Tensor> out;
  for (const auto& key : archive.keys()) {
    torch::Tensor t;
    archive.read(key, t);
    out[key] = t;
  }
  return out;
}

}  // namespace herd::test
