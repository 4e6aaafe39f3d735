#include "ckpt/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "ckpt/manifest.h"
#include "config/node.h"
#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"

namespace herd::ckpt {
namespace fs = std::filesystem;
namespace {

const char* kLatest = "latest";
// Prefixes of a save's temporaries: the copy being written, a same-step checkpoint being
// replaced, a pruned one being removed. Left behind only by a crash; the next save removes them.
const std::vector<std::string> kTempPrefixes = {".tmp-", ".old-", ".del-"};

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

void fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  HERD_CHECK(fd >= 0, path, ": cannot open for fsync (", std::strerror(errno), ")");
  int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  HERD_CHECK(rc == 0, path, ": fsync failed (", std::strerror(err), ")");
}

// A torch archive serialized in memory (a failed file write inside torch's writer would
// throw from its destructor), then written with checked writes.
FileDigest write_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  return write_checked(path, bytes);
}

torch::serialize::OutputArchive module_archive(torch::nn::Module& model) {
  torch::serialize::OutputArchive archive;
  for (const auto& kv : model.named_parameters())
    archive.write(kv.key(), kv.value().detach().cpu());
  for (const auto& kv : model.named_buffers())
    archive.write(kv.key(), kv.value().cpu(), /*is_buffer=*/true);
  return archive;
}

torch::serialize::OutputArchive rng_archive() {
  torch::serialize::OutputArchive archive;
  archive.write("cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d)
      archive.write(str("cuda", d),
                    at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d)).get_state());
  }
  return archive;
}

std::string state_yaml(const TrainState& state, bool has_optimizer) {
  YAML::Node s;
  s["format"] = kFormat;
  s["version"] = kVersion;
  s["herd_version"] = HERD_VERSION;
  s["step"] = state.step;
  s["tokens_seen"] = state.tokens_seen;
  s["loader_state"] = state.loader_state;
  s["tokenizer_identity"] = state.tokenizer_identity;
  s["tokenizer_file"] = state.tokenizer_file;
  s["has_optimizer"] = has_optimizer;
  return cfg::to_yaml(s);
}

// Every file of the checkpoint into `dir`, the manifest last.
void write_files(const SaveRequest& req, const fs::path& dir) {
  std::map<std::string, FileDigest> files;
  auto path = [&](const char* name) { return (dir / name).string(); };
  {
    auto archive = module_archive(*req.model);
    files["model.pt"] = write_archive(archive, path("model.pt"));
  }
  if (req.optimizer) {
    torch::serialize::OutputArchive archive;
    req.optimizer->save(archive);
    files["optimizer.pt"] = write_archive(archive, path("optimizer.pt"));
  }
  {
    auto archive = rng_archive();
    files["rng.pt"] = write_archive(archive, path("rng.pt"));
  }
  TrainState state = req.state;
  if (!req.tokenizer_path.empty()) {
    files["tokenizer.model"] =
        write_checked(path("tokenizer.model"), data::read_file(req.tokenizer_path, "tokenizer"));
    state.tokenizer_file = "tokenizer.model";
  }
  files["state.yaml"] =
      write_checked(path("state.yaml"), state_yaml(state, req.optimizer != nullptr));
  files["config.yaml"] = write_checked(path("config.yaml"), cfg::to_yaml(req.config));
  write_manifest(dir.string(), files);
  fsync_dir(dir.string());
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

void remove_stale_temporaries(const std::string& checkpoints_dir) {
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const auto name = entry.path().filename().string();
    for (const auto& prefix : kTempPrefixes)
      if (starts_with(name, prefix)) stale.push_back(entry.path());
  }
  for (const auto& p : stale) {
    log::info("removing ", p.string(), " (left by an interrupted save)");
    remove_quietly(p);
  }
}

// state.yaml and config.yaml of a checkpoint whose manifest has been verified.
Checkpoint read_verified(const std::string& path);

// Oldest first; the one just written is never removed. Each is renamed to .del-* (one atomic
// step: from then on nothing takes it for a checkpoint) before its files go.
void prune(const std::string& checkpoints_dir, const fs::path& newest, int64_t keep_last) {
  auto complete = list_complete(checkpoints_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < complete.size(); ++i) {
    const fs::path victim = complete[i];
    if (victim == newest) continue;
    const fs::path aside = victim.parent_path() / str(".del-", victim.filename().string());
    fs::rename(victim, aside);
    remove_quietly(aside);
  }
}

}  // namespace

void save_rng(const std::string& path) {
  auto archive = rng_archive();
  write_archive(archive, path);
}

std::string save(const SaveRequest& req) {
  HERD_CHECK(req.model != nullptr, "checkpoint save: no model");
  data::make_dirs(req.checkpoints_dir);
  remove_stale_temporaries(req.checkpoints_dir);
  const std::string name = step_name(req.state.step);
  const fs::path final_dir = fs::path(req.checkpoints_dir) / name;
  const fs::path tmp = fs::path(req.checkpoints_dir) / str(".tmp-", name, "-", ::getpid());
  try {
    fs::create_directories(tmp);
    write_files(req, tmp);
  } catch (const std::exception& e) {
    remove_quietly(tmp);
    const auto prev = list_complete(req.checkpoints_dir);
    throw Error(str("checkpoint ", final_dir.string(), " not written: ", e.what(), "; ",
                    prev.empty() ? std::string("no earlier checkpoint")
                                 : str("the previous checkpoint ", prev.back(), " is untouched")));
  }
  // Replacing an existing checkpoint of the same step: move the old one aside first.
  const fs::path old = fs::path(req.checkpoints_dir) / str(".old-", name, "-", ::getpid());
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fsync_dir(req.checkpoints_dir);
  data::write_file_atomic((fs::path(req.checkpoints_dir) / kLatest).string(), name + "\n");
  remove_quietly(old);
  prune(req.checkpoints_dir, final_dir, req.keep_last);
  return final_dir.string();
}

std::vector<std::string> list_step_dirs(const std::string& checkpoints_dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(checkpoints_dir)) return out;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    const auto fname = entry.path().filename().string();
    if (entry.is_directory() && starts_with(fname, "step_")) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort by step
  return out;
}

std::vector<std::string> list_complete(const std::string& checkpoints_dir) {
  std::vector<std::string> out;
  for (const auto& dir : list_step_dirs(checkpoints_dir))
    if (verify(dir, /*checksums=*/false).empty()) out.push_back(dir);
  return out;
}

ResumePick pick_latest(const std::string& checkpoints_dir) {
  ResumePick pick;
  auto all = list_step_dirs(checkpoints_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    std::string why = verify(*it);
    if (why.empty()) {
      try {
        read_verified(*it);
      } catch (const Error& e) {
        why = e.what();
      }
    }
    if (why.empty()) {
      pick.path = *it;
      break;
    }
    pick.skipped.push_back(str(*it, ": ", why));
  }
  return pick;
}

std::optional<std::string> find_latest(const std::string& checkpoints_dir) {
  auto pick = pick_latest(checkpoints_dir);
  for (const auto& s : pick.skipped) log::warn("skipping checkpoint ", s);
  return pick.path;
}

Checkpoint open(const std::string& path) {
  HERD_CHECK(fs::is_directory(path), path, ": not a checkpoint directory");
  const std::string why = verify(path);
  HERD_CHECK(why.empty(), path, ": not a valid checkpoint: ", why);
  return read_verified(path);
}

namespace {
Checkpoint read_verified(const std::string& path) {
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
}  // namespace

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
    // Read on the CPU: a sharded optimizer (train.zero) keeps only its slices on the device.
    archive.load_from(file, torch::Device(torch::kCPU));
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(
        str(file, ": cannot read optimizer state (corrupt, or a different parameter layout)"));
  }
  // Whatever state the optimizer kept in full goes to its parameter's device.
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) {
      auto it = optimizer.state().find(p.unsafeGetTensorImpl());
      if (it == optimizer.state().end()) continue;
      auto* st = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get());
      if (!st || st->exp_avg().device() == p.device()) continue;
      st->exp_avg(st->exp_avg().to(p.device()));
      st->exp_avg_sq(st->exp_avg_sq().to(p.device()));
      if (st->max_exp_avg_sq().defined()) st->max_exp_avg_sq(st->max_exp_avg_sq().to(p.device()));
    }
}

void load_rng(const Checkpoint& ck) {
  torch::serialize::InputArchive archive;
  torch::Tensor state;
  try {
    archive.load_from(ck.file("rng.pt"));
    archive.read("cpu", state);
  } catch (const c10::Error&) {
    throw Error(str(ck.file("rng.pt"), ": cannot read the RNG state (corrupt)"));
  }
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
    // How fresh weights are drawn does not matter once they come from the checkpoint (and
    // checkpoints from before model.init have no such key).
    if (key == "init" || key == "init_std") continue;
    const std::string va = a[key] ? YAML::Dump(a[key]) : "<absent>";
    const std::string vb = YAML::Dump(kv.second);
    if (va != vb)
      throw Error(str(where, ": model.", key, " differs from the checkpoint's (checkpoint: ", va,
                      ", config: ", vb, "); resume needs the same model shape"));
  }
}

}  // namespace herd::ckpt
