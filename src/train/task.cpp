#include "train/task.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "core/error.h"

namespace herd {
namespace {

// One line per task.
const std::vector<TaskEntry>& task_registry() {
  static const std::vector<TaskEntry> tasks = {
      {"lm", "gpt", make_lm_task},
      {"mlm", "bert", make_mlm_task},
      {"classify", "bert", make_classify_task},
      {"image", "vit", make_image_task},
  };
  return tasks;
}

}  // namespace

TaskBatch TaskBatch::slice(int64_t start, int64_t n) const {
  TaskBatch out;
  for (const auto& p : parts) out.parts.push_back(p.narrow(0, start, n));
  return out;
}

TaskBatch TaskBatch::sequence_shard(int64_t index, int64_t count) const {
  if (count == 1) return *this;
  TaskBatch out;
  for (const auto& p : parts) {
    HERD_CHECK(p.dim() >= 2 && p.size(1) % count == 0, "context parallel: a batch part ", p.sizes(),
               " has no sequence dimension that splits into ", count, " shards");
    const int64_t n = p.size(1) / count;
    out.parts.push_back(p.narrow(1, index * n, n));
  }
  return out;
}

double eval_value(const EvalResult& r, const std::string& name) {
  for (const auto& [n, v] : r)
    if (n == name) return v;
  return std::nan("");
}

std::string format_eval(const EvalResult& r) {
  std::ostringstream s;
  for (size_t i = 0; i < r.size(); ++i)
    s << (i ? " | " : "") << r[i].first << " " << std::fixed << std::setprecision(4) << r[i].second;
  return s.str();
}

std::string resolved_task_type(const Config& cfg) {
  if (cfg.task.type != "auto") return cfg.task.type;
  for (const auto& t : task_registry())
    if (cfg.model.stack == t.stack) return t.name;
  throw Error(str(cfg.source, " task.type: no default task for model.stack ", cfg.model.stack));
}

std::unique_ptr<Task> make_task(const Config& cfg, const Runtime& rt) {
  const std::string type = resolved_task_type(cfg);
  std::string names;
  for (const auto& t : task_registry()) {
    if (type != t.name) {
      names += (names.empty() ? "" : "|") + std::string(t.name);
      continue;
    }
    HERD_CHECK(cfg.model.stack == t.stack, cfg.source, " task.type: ", type, " trains model.stack ",
               t.stack, ", not ", cfg.model.stack);
    return t.make(cfg, rt);
  }
  throw Error(str(cfg.source, " task.type: expected auto|", names, ", got ", type));
}

}  // namespace herd
