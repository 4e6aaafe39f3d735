#include "models/activation_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/error.h"

namespace herd {
namespace {

thread_local bool checkpointing_on = false;

// The default generators a block can draw from: the CPU one, and the CUDA one of the
// input's device when it is on a GPU.
struct RngState {
  torch::Tensor cpu;
  std::optional<std::pair<c10::Device, torch::Tensor>> cuda;

  static RngState capture(const torch::Tensor& x) {
    RngState s;
    s.cpu = get(at::detail::getDefaultCPUGenerator());
    if (x.is_cuda())
      s.cuda.emplace(x.device(), get(at::globalContext().defaultGenerator(x.device())));
    return s;
  }
  void apply() const {
    set(at::detail::getDefaultCPUGenerator(), cpu);
    if (cuda) set(at::globalContext().defaultGenerator(cuda->first), cuda->second);
  }

 private:
  static torch::Tensor get(const at::Generator& gen) {
    at::Generator g = gen;  // a handle on the same generator
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
  }
  static void set(const at::Generator& gen, const torch::Tensor& state) {
    at::Generator g = gen;  // a handle on the same generator
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state);
  }
};

// Autocast on/off and its dtype for the device types herd trains on.
struct AutocastState {
  struct Entry {
    c10::DeviceType type;
    bool enabled;
    at::ScalarType dtype;
  };
  std::vector<Entry> entries;

  static AutocastState capture() {
    AutocastState s;
    for (auto type : {c10::DeviceType::CPU, c10::DeviceType::CUDA})
      s.entries.push_back(
          {type, at::autocast::is_autocast_enabled(type), at::autocast::get_autocast_dtype(type)});
    return s;
  }
  void apply() const {
    for (const auto& e : entries) {
      at::autocast::set_autocast_dtype(e.type, e.dtype);
      at::autocast::set_autocast_enabled(e.type, e.enabled);
    }
  }
};

// Autocast's weight-cast cache off for one call: a cast cached while the forward runs
// without grad would carry no gradient edge into later uses, and one cached by the recompute
// would outlive it. Casting again gives the same values.
class NoAutocastCache {
 public:
  NoAutocastCache() : previous_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~NoAutocastCache() { at::autocast::set_autocast_cache_enabled(previous_); }

 private:
  bool previous_;
};

// What backward needs besides the saved input.
struct Recompute : torch::CustomClassHolder {
  BlockFn fn;
  RngState rng;
  AutocastState autocast;
};

// The forward's RNG and autocast states for the scope of a recompute; the caller's after.
class ForwardStates {
 public:
  ForwardStates(const Recompute& r, const torch::Tensor& x)
      : caller_rng_(RngState::capture(x)), caller_autocast_(AutocastState::capture()) {
    r.rng.apply();
    r.autocast.apply();
  }
  ~ForwardStates() {
    caller_rng_.apply();
    caller_autocast_.apply();
  }
  ForwardStates(const ForwardStates&) = delete;
  ForwardStates& operator=(const ForwardStates&) = delete;

 private:
  RngState caller_rng_;
  AutocastState caller_autocast_;
};

struct BlockCheckpoint : torch::autograd::Function<BlockCheckpoint> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               c10::intrusive_ptr<Recompute> r) {
    r->rng = RngState::capture(x);
    r->autocast = AutocastState::capture();
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(r);
    NoAutocastCache no_cache;
    return r->fn(x);  // grad mode is off here: nothing is saved
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    HERD_CHECK(!torch::GradMode::is_enabled(),
               "activation checkpointing: double backward (create_graph) is not supported");
    auto r =
        c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      ForwardStates states(*r, x);
      NoAutocastCache no_cache;
      torch::AutoGradMode grad(true);
      y = r->fn(x);
    }
    // Parameters' gradients accumulate in their .grad as they would without checkpointing.
    if (y.requires_grad()) torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), torch::Tensor()};
  }
};

}  // namespace

ActivationCheckpointing::ActivationCheckpointing(bool on) : previous_(checkpointing_on) {
  checkpointing_on = on;
}

ActivationCheckpointing::~ActivationCheckpointing() {
  checkpointing_on = previous_;
}

bool ActivationCheckpointing::enabled() {
  return checkpointing_on;
}

torch::Tensor checkpointed(BlockFn fn, const torch::Tensor& x) {
  auto r = c10::make_intrusive<Recompute>();
  r->fn = std::move(fn);
  return BlockCheckpoint::apply(x, r);
}

torch::Tensor maybe_checkpointed(BlockFn fn, const torch::Tensor& x) {
  if (checkpointing_on && torch::GradMode::is_enabled() && x.requires_grad())
    return checkpointed(std::move(fn), x);
  return fn(x);
}

}  // namespace herd
