// Which implementation a fused op runs: herd's kernels (kernels/<op>.cuh) on CUDA or on the
// CPU, or the plain ATen reference. Every op in src/ops/ with a fused path dispatches:
//   CUDA tensor and supported -> cuda; CPU tensor and supported -> cpu; else -> reference.
// HERD_KERNELS=reference in the environment (read once) forces the reference everywhere.
#pragma once

#include <string>
#include <vector>

namespace herd::ops {

enum class KernelPath { reference, cpu, cuda };

const char* path_name(KernelPath p);

// False when HERD_KERNELS=reference; any other value (or none) leaves fused paths on.
bool fused_kernels_enabled();

// True when this binary holds the CUDA kernels (nvcc existed at build time).
bool cuda_kernels_compiled();

// One line per fused op for `herd info` / `herd bench ops`, e.g.
// "short_conv    cpu (float, double), cuda (float, double), reference (any)".
std::vector<std::string> fused_op_lines();

}  // namespace herd::ops
