// Which implementation a fused op runs: herd's kernels (kernels/<op>.cuh) on CUDA or on the
// CPU, or the plain ATen reference. Every op in src/ops/ with a fused path dispatches the same
// way: it declares what its kernel takes (`<op>_supports`, a Support), and choose_path()
//   CUDA target and supported -> cuda; CPU target and supported -> cpu; else -> reference.
// HERD_KERNELS=reference in the environment (read once) forces the reference everywhere.
// A call that falls back although fused kernels are on is logged once per (op, device, dtype).
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <initializer_list>
#include <string>

namespace at {
class Tensor;
}

namespace herd::ops {

enum class KernelPath { reference, cpu, cuda };

const char* path_name(KernelPath p);

// False when HERD_KERNELS=reference; any other value (or none) leaves fused paths on.
bool fused_kernels_enabled();

// Overrides HERD_KERNELS for this process from now on (tests compare whole models with the
// fused ops on and off). Returns the previous setting.
bool set_fused_kernels_enabled(bool enabled);

// True when this binary holds the CUDA kernels (nvcc existed at build time).
bool cuda_kernels_compiled();

// Distinct threads one at::parallel_for of herd's own code runs on (torch's headers make it
// an inline OpenMP region: herd must be compiled with OpenMP for it to be more than 1).
int parallel_loop_threads();

// "float32", "float64", "bfloat16", "float16" (torch's Python names).
const char* dtype_name(c10::ScalarType t);

// Where a call runs: the device of its inputs, their dtype, and whether autocast is on there.
struct OpTarget {
  c10::DeviceType device = c10::DeviceType::CPU;
  c10::ScalarType dtype = c10::ScalarType::Float;
  bool autocast = false;
  static OpTarget of(const at::Tensor& t);  // reads the autocast state of t's device
  std::string describe() const;             // "cuda float32 autocast"
};

// Whether a fused kernel takes a call; `why` names what it lacks when it does not.
struct Support {
  bool ok = true;
  std::string why;
  static Support no(std::string reason) { return {false, std::move(reason)}; }
  explicit operator bool() const { return ok; }
};

// The common device rule: the CPU path always exists, the CUDA one when compiled; the dtype
// must be one of `dtypes`. Ops add their shape rules on top.
Support device_supports(const OpTarget& t, std::initializer_list<c10::ScalarType> dtypes);

// Picks the path for a call from its target and the op's Support (see the header comment).
KernelPath choose_path(const char* op, const OpTarget& t, const Support& s);

}  // namespace herd::ops
