#include "train/runtime.h"

#include <ATen/autocast_mode.h>

#include "core/error.h"

namespace herd {

Runtime Runtime::from(const TrainConfig& t) {
  Runtime rt;
  const bool cuda = torch::cuda::is_available();
  if (t.device == "cuda")
    HERD_CHECK(cuda, "train.device: cuda requested but no CUDA device is available");
  rt.device = (t.device == "cuda" || (t.device == "auto" && cuda)) ? torch::Device(torch::kCUDA)
                                                                   : torch::Device(torch::kCPU);
  if (t.precision == "fp64") rt.param_dtype = torch::kFloat64;
  if (t.precision == "bf16" || (t.precision == "auto" && rt.device.is_cuda()))
    rt.autocast_dtype = torch::kBFloat16;
  return rt;
}

std::string Runtime::describe() const {
  std::string p = param_dtype == torch::kFloat64 ? "fp64" : "fp32";
  if (autocast_dtype) p += " params, bf16 autocast";
  return str(device.str(), ", ", p);
}

AutocastScope::AutocastScope(const Runtime& rt)
    : type_(rt.device.type()), on_(rt.autocast_dtype.has_value()) {
  if (!on_) return;
  at::autocast::set_autocast_dtype(type_, *rt.autocast_dtype);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, false);
}

}  // namespace herd
