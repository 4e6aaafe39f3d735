#include "dist/env.h"

#include <cstdlib>

#include "core/error.h"

extern char** environ;

namespace herd::dist {
namespace {

using Vars = std::map<std::string, std::string>;

const std::string* find(const Vars& v, const std::string& key) {
  auto it = v.find(key);
  return it == v.end() || it->second.empty() ? nullptr : &it->second;
}

int parse_int(const Vars& v, const std::string& key, int min, int max, const std::string& form) {
  const std::string* s = find(v, key);
  HERD_CHECK(s, "environment: ", key, " is not set (expected ", form, ")");
  char* end = nullptr;
  const long x = std::strtol(s->c_str(), &end, 10);
  HERD_CHECK(end != s->c_str() && *end == '\0' && x >= min && x <= max, "environment: ", key, "=",
             *s, ": expected ", form);
  return static_cast<int>(x);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Up to the first comma outside brackets; a bracket range keeps its first number.
  std::string host;
  for (size_t i = 0; i < nodelist.size(); ++i) {
    const char c = nodelist[i];
    if (c == ',') break;
    if (c == '[') {
      size_t j = i + 1;
      while (j < nodelist.size() && nodelist[j] != '-' && nodelist[j] != ',' && nodelist[j] != ']')
        host += nodelist[j++];
      return host;
    }
    host += c;
  }
  return host;
}

DistEnv detect_env(const Vars& v) {
  DistEnv e;
  if (find(v, "RANK") || find(v, "WORLD_SIZE")) {
    e.source = "torchrun";
    e.world_size = parse_int(v, "WORLD_SIZE", 1, 1 << 20, "a positive integer");
    e.rank = parse_int(v, "RANK", 0, e.world_size - 1,
                       str("an integer in [0, WORLD_SIZE=", e.world_size, ")"));
    e.local_rank = find(v, "LOCAL_RANK")
                       ? parse_int(v, "LOCAL_RANK", 0, e.world_size - 1, "a non-negative integer")
                       : e.rank;
    if (e.world_size > 1) {
      const std::string* addr = find(v, "MASTER_ADDR");
      HERD_CHECK(addr,
                 "environment: MASTER_ADDR is not set (expected the host of rank 0, e.g. "
                 "MASTER_ADDR=node01 MASTER_PORT=29500)");
      e.master_addr = *addr;
      e.master_port = parse_int(v, "MASTER_PORT", 1, 65535, "a TCP port in [1, 65535]");
    }
    if (const std::string* agent = find(v, "TORCHELASTIC_USE_AGENT_STORE")) {
      e.agent_store = *agent == "True" || *agent == "true" || *agent == "1";
      const std::string* restart = find(v, "TORCHELASTIC_RESTART_COUNT");
      e.store_prefix = str("herd/", restart ? *restart : "0");
    }
    return e;
  }
  if (find(v, "SLURM_PROCID") && find(v, "SLURM_NTASKS")) {
    e.source = "slurm";
    e.world_size = parse_int(v, "SLURM_NTASKS", 1, 1 << 20, "a positive integer");
    // srun sets the step variables for each task it starts; the batch script itself (one
    // process) has none of them, whatever --ntasks says.
    const bool in_step =
        find(v, "SLURM_STEP_ID") || find(v, "SLURM_STEPID") || find(v, "SLURM_STEP_NUM_TASKS");
    HERD_CHECK(e.world_size == 1 || in_step, "environment: SLURM_NTASKS=", e.world_size,
               " but this is the batch script's single process (sbatch without srun): start "
               "one herd per task with `srun herd train ...` inside the script, or use "
               "--nproc-per-node on one node");
    e.rank = parse_int(v, "SLURM_PROCID", 0, e.world_size - 1,
                       str("an integer in [0, SLURM_NTASKS=", e.world_size, ")"));
    e.local_rank = find(v, "SLURM_LOCALID") ? parse_int(v, "SLURM_LOCALID", 0, e.world_size - 1,
                                                        "a non-negative integer")
                                            : 0;
    if (const std::string* addr = find(v, "MASTER_ADDR")) {
      e.master_addr = *addr;
    } else {
      const std::string* list = find(v, "SLURM_JOB_NODELIST");
      if (!list) list = find(v, "SLURM_NODELIST");
      HERD_CHECK(list || e.world_size == 1,
                 "environment: SLURM_JOB_NODELIST is not set (expected a node list such as "
                 "node[01-04]; or set MASTER_ADDR)");
      if (list) e.master_addr = first_slurm_host(*list);
    }
    if (find(v, "MASTER_PORT"))
      e.master_port = parse_int(v, "MASTER_PORT", 1, 65535, "a TCP port in [1, 65535]");
    return e;
  }
  return e;
}

DistEnv detect_env() {
  Vars v;
  for (char** p = environ; p && *p; ++p) {
    std::string kv = *p;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) v[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return detect_env(v);
}

}  // namespace herd::dist
