#include "ops/kernel_path.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

#include <chrono>
#include <thread>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>

#include "core/log.h"

namespace herd::ops {

const char* path_name(KernelPath p) {
  switch (p) {
    case KernelPath::cpu:
      return "cpu";
    case KernelPath::cuda:
      return "cuda";
    case KernelPath::reference:
      break;
  }
  return "reference";
}

namespace {
// HERD_KERNELS is read once; set_fused_kernels_enabled() replaces it afterwards.
std::atomic<bool>& fused_flag() {
  static std::atomic<bool> enabled{[] {
    const char* v = std::getenv("HERD_KERNELS");
    return !(v && std::strcmp(v, "reference") == 0);
  }()};
  return enabled;
}
}  // namespace

bool fused_kernels_enabled() {
  return fused_flag().load(std::memory_order_relaxed);
}

bool set_fused_kernels_enabled(bool enabled) {
  return fused_flag().exchange(enabled);
}

bool cuda_kernels_compiled() {
#ifdef HERD_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

int parallel_loop_threads() {
  std::mutex mu;
  std::set<std::thread::id> ids;
  const int64_t n = 4 * std::max(1, at::get_num_threads());
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) {
    // Long enough that every thread of the team takes a chunk.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int>(ids.size());
}

OpTarget OpTarget::of(const at::Tensor& t) {
  OpTarget o;
  o.device = t.device().type();
  o.dtype = t.scalar_type();
  o.autocast = at::autocast::is_autocast_enabled(o.device);
  return o;
}

const char* dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Double:
      return "float64";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    case c10::ScalarType::Half:
      return "float16";
    default:
      return c10::toString(t);
  }
}

std::string OpTarget::describe() const {
  return str(c10::DeviceTypeName(device, /*lower_case=*/true), " ", dtype_name(dtype),
             autocast ? " autocast" : "");
}

Support device_supports(const OpTarget& t, std::initializer_list<c10::ScalarType> dtypes) {
  if (t.device == c10::DeviceType::CUDA && !cuda_kernels_compiled())
    return Support::no("CUDA kernels not compiled (no nvcc at build time)");
  if (t.device != c10::DeviceType::CPU && t.device != c10::DeviceType::CUDA)
    return Support::no(str("no kernel for device ", c10::DeviceTypeName(t.device, true)));
  for (auto d : dtypes)
    if (d == t.dtype) return {};
  std::string names;
  for (auto d : dtypes) names += str(names.empty() ? "" : ", ", dtype_name(d));
  return Support::no(str("no ", dtype_name(t.dtype), " kernel (takes ", names, ")"));
}

KernelPath choose_path(const char* op, const OpTarget& t, const Support& s) {
  if (!fused_kernels_enabled()) return KernelPath::reference;
  if (!s.ok) {
    // Visible fallback: once per (op, device, dtype, autocast) and process.
    static std::mutex mu;
    static std::set<std::tuple<std::string, int, int, bool>> seen;
    std::lock_guard<std::mutex> lock(mu);
    if (seen.emplace(op, static_cast<int>(t.device), static_cast<int>(t.dtype), t.autocast).second)
      log::info("op ", op, ": reference path on ", t.describe(), ": ", s.why);
    return KernelPath::reference;
  }
  return t.device == c10::DeviceType::CUDA ? KernelPath::cuda : KernelPath::cpu;
}

}  // namespace herd::ops
