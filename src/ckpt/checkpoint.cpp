#include "ckpt/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "config/node.h"
#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"

namespace herd::ckpt {
namespace fs = std::filesystem;
namespace {

const char* kLatest = "latest";
const std::vector<std::string> kRequired = {"state.yaml", "config.yaml", "model.pt", "rng.pt"};

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  HERD_CHECK(fd >= 0, path, ": cannot open for fsync");
  int rc = ::fsync(fd);
  ::close(fd);
  HERD_CHECK(rc == 0, path, ": fsync failed");
}

bool is_complete(const fs::path& dir) {
  for (const auto& f : kRequired)
    if (!fs::is_regular_file(dir / f)) return false;
  return true;
}

void save_module(torch::nn::Module& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& kv : model.named_parameters())
    archive.write(kv.key(), kv.value().detach().cpu());
  for (const auto& kv : model.named_buffers())
    archive.write(kv.key(), kv.value().cpu(), /*is_buffer=*/true);
  archive.save_to(path);
}

}  // namespace

void save_rng(const std::string& path) {
  torch::serialize::OutputArchive archive;
  archive.write("cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d)
      archive.write(str("cuda", d),
                    at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d)).get_state());
  }
  archive.save_to(path);
}

std::string save(const SaveRequest& req) {
  HERD_CHECK(req.model != nullptr, "checkpoint save: no model");
  fs::create_directories(req.checkpoints_dir);
  const std::string name = step_name(req.state.step);
  const fs::path final_dir = fs::path(req.checkpoints_dir) / name;
  const fs::path tmp = fs::path(req.checkpoints_dir) / str(".tmp-", name, "-", ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  save_module(*req.model, (tmp / "model.pt").string());
  if (req.optimizer) {
    torch::serialize::OutputArchive archive;
    req.optimizer->save(archive);
    archive.save_to((tmp / "optimizer.pt").string());
  }
  save_rng((tmp / "rng.pt").string());
  TrainState state = req.state;
  if (!req.tokenizer_path.empty()) {
    fs::copy_file(req.tokenizer_path, tmp / "tokenizer.model",
                  fs::copy_options::overwrite_existing);
    state.tokenizer_file = "tokenizer.model";
  }
  YAML::Node s;
  s["format"] = kFormat;
  s["version"] = kVersion;
  s["herd_version"] = HERD_VERSION;
  s["step"] = state.step;
  s["tokens_seen"] = state.tokens_seen;
  s["loader_state"] = state.loader_state;
  s["tokenizer_identity"] = state.tokenizer_identity;
  s["tokenizer_file"] = state.tokenizer_file;
  s["has_optimizer"] = req.optimizer != nullptr;
  std::ofstream(tmp / "state.yaml") << cfg::to_yaml(s);
  std::ofstream(tmp / "config.yaml") << cfg::to_yaml(req.config);
  for (const auto& entry : fs::directory_iterator(tmp)) fsync_path(entry.path().string(), false);
  fsync_path(tmp.string(), true);

  // Replacing an existing checkpoint of the same step: move the old one aside first.
  if (fs::exists(final_dir))
    fs::rename(final_dir, fs::path(req.checkpoints_dir) / str(".old-", name, "-", ::getpid()));
  fs::rename(tmp, final_dir);
  fsync_path(req.checkpoints_dir, true);
  data::write_file_atomic((fs::path(req.checkpoints_dir) / kLatest).string(), name + "\n");

  // Prune: keep the newest keep_last complete checkpoints; drop stale temporaries.
  auto complete = list_complete(req.checkpoints_dir);
  for (size_t i = 0; i + static_cast<size_t>(req.keep_last) < complete.size(); ++i)
    fs::remove_all(complete[i]);
  for (const auto& entry : fs::directory_iterator(req.checkpoints_dir)) {
    const auto fname = entry.path().filename().string();
    if (fname.rfind(".old-", 0) == 0) fs::remove_all(entry.path());
  }
  return final_dir.string();
}

std::vector<std::string> list_complete(const std::string& checkpoints_dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(checkpoints_dir)) return out;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const auto fname = entry.path().filename().string();
    if (entry.is_directory() && fname.rfind("step_", 0) == 0 && is_complete(entry.path()))
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort by step
  return out;
}

std::optional<std::string> find_latest(const std::string& checkpoints_dir) {
  const fs::path pointer = fs::path(checkpoints_dir) / kLatest;
  if (fs::is_regular_file(pointer)) {
    std::string name;
    std::ifstream(pointer) >> name;
    if (!name.empty() && is_complete(fs::path(checkpoints_dir) / name))
      return (fs::path(checkpoints_dir) / name).string();
  }
  auto all = list_complete(checkpoints_dir);  // pointer missing or stale: newest complete one
  if (all.empty()) return std::nullopt;
  return all.back();
}

Checkpoint open(const std::string& path) {
  HERD_CHECK(fs::is_directory(path), path, ": not a checkpoint directory");
  for (const auto& f : kRequired)
    HERD_CHECK(fs::is_regular_file(fs::path(path) / f), path, ": incomplete checkpoint (missing ",
               f, ")");
  Checkpoint ck;
  ck.path = path;
  const std::string state_file = (fs::path(path) / "state.yaml").string();
  cfg::ConfigMap s(cfg::load_yaml_file(state_file), state_file, "");
  if (s.get_string("format", "") != kFormat) s.fail("format", str("expected ", kFormat));
  if (s.get_int("version", 0) != kVersion)
    s.fail("version", str("expected ", kVersion, " (written by a different herd)"));
  s.get_string("herd_version", "");
  ck.state.step = s.get_int("step", 0, 0);
  ck.state.tokens_seen = s.get_int("tokens_seen", 0, 0);
  ck.state.loader_state = s.get_string("loader_state", "");
  ck.state.tokenizer_identity = s.get_string("tokenizer_identity", "");
  ck.state.tokenizer_file = s.get_string("tokenizer_file", "");
  s.get_bool("has_optimizer", false);
  s.finish();
  ck.config = cfg::load_yaml_file((fs::path(path) / "config.yaml").string());
  return ck;
}

void load_model(const Checkpoint& ck, torch::nn::Module& model) {
  torch::serialize::InputArchive archive;
  const std::string file = ck.file("model.pt");
  try {
    archive.load_from(file);
  } catch (const c10::Error& e) {
    throw Error(str(file, ": cannot read weights (corrupt or not a herd checkpoint)"));
  }
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& dst, bool buffer) {
    torch::Tensor src;
    if (!archive.try_read(name, src, buffer))
      throw Error(str(file, ": missing tensor \"", name, "\""));
    HERD_CHECK(src.sizes() == dst.sizes(), file, ": tensor \"", name, "\" has shape ", src.sizes(),
               ", the model expects ", dst.sizes());
    dst.copy_(src);
  };
  for (auto& kv : model.named_parameters()) copy(kv.key(), kv.value(), false);
  for (auto& kv : model.named_buffers()) copy(kv.key(), kv.value(), true);
}

void load_optimizer(const Checkpoint& ck, torch::optim::Optimizer& optimizer) {
  const std::string file = ck.file("optimizer.pt");
  HERD_CHECK(fs::is_regular_file(file), file,
             ": missing (checkpoint was saved without optimizer state)");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(
        str(file, ": cannot read optimizer state (corrupt, or a different parameter layout)"));
  }
}

void load_rng(const Checkpoint& ck) {
  torch::serialize::InputArchive archive;
  archive.load_from(ck.file("rng.pt"));
  torch::Tensor state;
  archive.read("cpu", state);
  at::Generator cpu = at::detail::getDefaultCPUGenerator();  // a handle to the global one
  cpu.set_state(state);
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d) {
      torch::Tensor cuda_state;
      if (archive.try_read(str("cuda", d), cuda_state)) {
        at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d));
        gen.set_state(cuda_state);
      }
    }
  }
}

void check_same_model(const YAML::Node& saved, const YAML::Node& current,
                      const std::string& where) {
  const YAML::Node a = saved["model"], b = current["model"];
  for (const auto& kv : b) {
    const std::string key = kv.first.Scalar();
    const std::string va = a[key] ? YAML::Dump(a[key]) : "<absent>";
    const std::string vb = YAML::Dump(kv.second);
    if (va != vb)
      throw Error(str(where, ": model.", key, " differs from the checkpoint's (checkpoint: ", va,
                      ", config: ", vb, "); resume needs the same model shape"));
  }
}

}  // namespace herd::ckpt
