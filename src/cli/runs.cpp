// herd runs list DIR: each run's status, step, last loss, best eval and newest valid checkpoint.
//
// Status rules (scripts/sweep reads them through `--tsv`, so they live only here):
//   running      RUN/herd.pid names a live process (scripts/sweep writes it), or a process on
//                this machine holds RUN/metrics.jsonl open (herd train does, all run long)
//   finished     the newest complete checkpoint is at train.steps of RUN/config.yaml
//   failed       RUN/exit_status (scripts/sweep) holds a non-zero status that is not a stop
//                signal, or train.log ends with "herd: error: ..."
//   interrupted  anything else that started: resume it with `herd train ... --resume auto`
#include <signal.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/stop_signal.h"

namespace herd::cli {
namespace fs = std::filesystem;
namespace {

struct RunRow {
  std::string dir, status, checkpoint;
  int64_t step = 0, steps = 0;
  double last_loss = NAN, best_eval = NAN;
  std::string eval_name;
};

// The number after "key": in one metrics.jsonl line; NaN when absent or null.
double json_number(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  const char* p = line.c_str() + at + key.size() + 3;
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  return end == p ? NAN : v;
}

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

bool is_run(const fs::path& dir) {
  return fs::exists(dir / "config.yaml") || fs::exists(dir / "metrics.jsonl") ||
         fs::exists(dir / "checkpoints") || fs::exists(dir / "sweep_run.json");
}

void read_metrics(const fs::path& file, RunRow& r) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    const double step = json_number(line, "step");
    if (std::isnan(step)) continue;  // a torn last line
    const double loss = json_number(line, "loss");
    if (!std::isnan(loss) || line.find("\"loss\":null") != std::string::npos) {
      r.step = static_cast<int64_t>(step);
      r.last_loss = loss;
      continue;
    }
    double v = json_number(line, "val_loss");
    std::string name = "val_loss";
    if (std::isnan(v))
      for (const char* acc : {"val_accuracy", "val_acc"})
        if (!std::isnan(v = json_number(line, acc))) {
          name = acc;
          break;
        }
    if (std::isnan(v)) continue;
    const bool lower = name == "val_loss";
    if (std::isnan(r.best_eval) || (lower ? v < r.best_eval : v > r.best_eval)) r.best_eval = v;
    r.eval_name = name;
  }
}

bool process_alive(const fs::path& pid_file) {
  const std::string s = read_first_line(pid_file);
  if (s.empty()) return false;
  const long pid = std::strtol(s.c_str(), nullptr, 10);
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0;
}

// Whether a process of this machine has `file` open (Linux: /proc/PID/fd links).
bool held_open(const fs::path& file) {
  std::error_code ec;
  const fs::path target = fs::canonical(file, ec);
  if (ec) return false;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename().string();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    std::error_code fd_ec;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      if (fs::read_symlink(fd.path(), link_ec) == target) return true;
    }
  }
  return false;
}

std::string last_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

RunRow inspect(const fs::path& dir) {
  RunRow r;
  r.dir = dir.string();
  if (fs::exists(dir / "config.yaml")) {
    try {
      r.steps = YAML::LoadFile((dir / "config.yaml").string())["train"]["steps"].as<int64_t>(0);
    } catch (const YAML::Exception&) {
    }
  }
  if (fs::exists(dir / "metrics.jsonl")) read_metrics(dir / "metrics.jsonl", r);
  int64_t ckpt_step = -1;
  const auto complete = ckpt::list_complete((dir / "checkpoints").string());
  if (!complete.empty()) {
    r.checkpoint = complete.back();
    try {
      ckpt_step = ckpt::open(r.checkpoint).state.step;
    } catch (const Error&) {
    }
  }
  const std::string exit_status = read_first_line(dir / "exit_status");
  const int rc = exit_status.empty() ? 0 : std::atoi(exit_status.c_str());
  // Stopped by a signal: herd's own checkpointed stop (kExitStopped), or SIGINT/SIGTERM as a
  // shell or Python reports them. Resumable, not failed.
  const bool stopped = rc == kExitStopped || rc == 130 || rc == 143 || rc == -2 || rc == -15;
  if (process_alive(dir / "herd.pid") || held_open(dir / "metrics.jsonl"))
    r.status = "running";
  else if (r.steps > 0 && ckpt_step >= r.steps)
    r.status = "finished";
  else if ((rc != 0 && !stopped) || last_line(dir / "train.log").rfind("herd: error:", 0) == 0)
    r.status = "failed";
  else
    r.status = "interrupted";
  return r;
}

void collect(const fs::path& dir, int depth, std::vector<RunRow>& rows) {
  if (is_run(dir)) {
    rows.push_back(inspect(dir));
    return;
  }
  if (depth == 0) return;
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) subdirs.push_back(e.path());
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& d : subdirs) collect(d, depth - 1, rows);
}

std::string number(double v, int precision) {
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

void add_runs(CLI::App& app) {
  auto* cmd = app.add_subcommand("runs", "Inspect run directories");
  cmd->require_subcommand(1);
  auto* list = cmd->add_subcommand(
      "list",
      "Each run's status (running, finished, interrupted, failed), step, last loss, "
      "best eval and newest valid checkpoint");
  struct Args {
    std::string dir;
    bool tsv = false;
  };
  auto args = std::make_shared<Args>();
  list->add_option("dir", args->dir, "A run directory or a folder of them (searched 3 deep)")
      ->required()
      ->check(CLI::ExistingDirectory);
  list->add_flag("--tsv", args->tsv, "Tab-separated with a header (for scripts)");
  list->footer("Example:\n  herd runs list runs/sweeps/lr-depth");
  list->callback([args] {
    std::vector<RunRow> rows;
    collect(args->dir, 3, rows);
    if (args->tsv) {
      std::cout << "run\tstatus\tstep\tsteps\tlast_loss\tbest_eval\teval_metric\tcheckpoint\n";
      for (const auto& r : rows)
        std::cout << r.dir << "\t" << r.status << "\t" << r.step << "\t" << r.steps << "\t"
                  << number(r.last_loss, 6) << "\t" << number(r.best_eval, 6) << "\t" << r.eval_name
                  << "\t" << r.checkpoint << "\n";
      return;
    }
    if (rows.empty()) {
      std::cout << "no runs under " << args->dir << "\n";
      return;
    }
    size_t w = 3;
    for (const auto& r : rows) w = std::max(w, r.dir.size());
    std::cout << std::left << std::setw(static_cast<int>(w)) << "run"
              << "  " << std::setw(11) << "status"
              << "  " << std::setw(13) << "step"
              << "  " << std::setw(9) << "loss"
              << "  " << std::setw(18) << "best eval"
              << "  checkpoint\n";
    for (const auto& r : rows) {
      const std::string step = str(r.step, "/", r.steps > 0 ? std::to_string(r.steps) : "?");
      const std::string best =
          std::isnan(r.best_eval) ? "-" : str(r.eval_name, " ", number(r.best_eval, 4));
      std::cout << std::setw(static_cast<int>(w)) << r.dir << "  " << std::setw(11) << r.status
                << "  " << std::setw(13) << step << "  " << std::setw(9) << number(r.last_loss, 4)
                << "  " << std::setw(18) << best << "  "
                << (r.checkpoint.empty() ? "-" : fs::path(r.checkpoint).filename().string())
                << "\n";
    }
  });
}

}  // namespace herd::cli
