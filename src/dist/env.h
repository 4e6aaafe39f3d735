// Who this process is in a multi-process run: rank, world size, local rank and the rendezvous
// address, read from the environment that herd's launcher, torchrun or SLURM sets.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace herd::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // single | torchrun | slurm (herd's launcher sets torchrun vars)
  // torchrun's agent already hosts a store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client, herd's keys under
  // their own prefix, instead of rank 0 failing to host a second one on the same port.
  bool agent_store = false;
  std::string store_prefix = "herd";
  bool distributed() const { return world_size > 1; }
};

// Reads RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT (torchrun and `herd train
// --nproc-per-node`), else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID with the first host of
// SLURM_JOB_NODELIST (MASTER_PORT honoured, default 29500), else a single process. A batch
// script's one process under SLURM_NTASKS > 1 (sbatch without srun) is an error that says to
// start herd with srun. `vars` replaces the process environment (tests).
DistEnv detect_env();
DistEnv detect_env(const std::map<std::string, std::string>& vars);

// The first host of a SLURM node list: "gpu[03-05,7],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace herd::dist
