// The fused ops, one entry each (one line per op in registry.cpp). `herd info` and `herd bench
// ops` list every op's path per device and dtype by asking the op's own supports() about a
// typical call, so what they print is what the dispatcher does.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ops/kernel_path.h"

namespace herd::ops {

struct FusedOpEntry {
  std::string name;     // kernels/<name>.cuh
  std::string summary;  // what it fuses, one line
  // The op's supports() for a typical call at this target (shape rules are in the op's header).
  std::function<Support(const OpTarget&)> probe;
};

const std::vector<FusedOpEntry>& fused_ops();

// The targets `herd info` reports: CPU float32/float64/bfloat16, CUDA float32/bfloat16 and
// CUDA float32 under bf16 autocast.
std::vector<OpTarget> reported_targets();

// One line per op: "long_conv  cpu float32: cpu | cpu float64: cpu | ... " with the reason
// of each reference fallback; the HERD_KERNELS override is named when set.
std::vector<std::string> fused_op_lines();

}  // namespace herd::ops
