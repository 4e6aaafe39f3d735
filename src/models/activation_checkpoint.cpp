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

// What backward needs besides the saved inputs. Only defined tensors go through autograd;
// the masks put the undefined ones (e.g. an absent pending residual) back in place.
struct Recompute : torch::CustomClassHolder {
  BlockListFn fn;
  std::vector<bool> in_defined, out_defined;
  std::vector<bool> in_needs_grad;  // per defined input
  RngState rng;
  AutocastState autocast;

  std::vector<torch::Tensor> call(const torch::autograd::variable_list& defined_inputs) const {
    std::vector<torch::Tensor> xs;
    size_t k = 0;
    for (bool d : in_defined) xs.push_back(d ? defined_inputs[k++] : torch::Tensor());
    return fn(xs);
  }
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
  // xs: the defined inputs; returns the defined outputs.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                at::TensorList xs,
                                                c10::intrusive_ptr<Recompute> r) {
    r->rng = RngState::capture(xs[0]);
    r->autocast = AutocastState::capture();
    for (const auto& x : xs) r->in_needs_grad.push_back(x.requires_grad());
    ctx->save_for_backward(xs.vec());
    ctx->set_materialize_grads(false);  // unused outputs get no gradient
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(r);
    NoAutocastCache no_cache;
    torch::autograd::variable_list out;
    for (auto& y : r->call(xs.vec())) {  // grad mode is off here: nothing is saved
      r->out_defined.push_back(y.defined());
      if (y.defined()) out.push_back(y);
    }
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    HERD_CHECK(!torch::GradMode::is_enabled(),
               "activation checkpointing: double backward (create_graph) is not supported");
    auto r =
        c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    torch::autograd::variable_list xs;
    const auto saved = ctx->get_saved_variables();
    for (size_t i = 0; i < saved.size(); ++i) {
      auto x = saved[i].detach();
      xs.push_back(r->in_needs_grad[i] ? x.requires_grad_(true) : x);
    }
    std::vector<torch::Tensor> ys;
    {
      ForwardStates states(*r, xs[0]);
      NoAutocastCache no_cache;
      torch::AutoGradMode grad(true);
      ys = r->call(xs);
    }
    // Parameters' gradients accumulate in their .grad as they would without checkpointing.
    torch::autograd::variable_list outputs, output_grads;
    size_t k = 0;
    for (size_t i = 0; i < ys.size(); ++i) {
      if (!r->out_defined[i]) continue;
      const auto& g = grads[k++];
      if (g.defined() && ys[i].requires_grad()) {
        outputs.push_back(ys[i]);
        output_grads.push_back(g);
      }
    }
    if (!outputs.empty()) torch::autograd::backward(outputs, output_grads);
    torch::autograd::variable_list input_grads;
    for (const auto& x : xs) input_grads.push_back(x.requires_grad() ? x.grad() : torch::Tensor());
    input_grads.emplace_back();  // for `r`
    return input_grads;
  }
};

bool any_requires_grad(const std::vector<torch::Tensor>& xs) {
  for (const auto& x : xs)
    if (x.defined() && x.requires_grad()) return true;
  return false;
}

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

std::vector<torch::Tensor> checkpointed(BlockListFn fn, const std::vector<torch::Tensor>& xs) {
  auto r = c10::make_intrusive<Recompute>();
  r->fn = std::move(fn);
  torch::autograd::variable_list defined;
  for (const auto& x : xs) {
    r->in_defined.push_back(x.defined());
    if (x.defined()) defined.push_back(x);
  }
  HERD_CHECK(!defined.empty(), "activation checkpointing: a block with no input tensor");
  const auto out = BlockCheckpoint::apply(at::TensorList(defined), r);
  std::vector<torch::Tensor> ys;
  size_t k = 0;
  for (bool d : r->out_defined) ys.push_back(d ? out[k++] : torch::Tensor());
  return ys;
}

std::vector<torch::Tensor> maybe_checkpointed(BlockListFn fn,
                                              const std::vector<torch::Tensor>& xs) {
  if (checkpointing_on && torch::GradMode::is_enabled() && any_requires_grad(xs))
    return checkpointed(std::move(fn), xs);
  return fn(xs);
}

torch::Tensor checkpointed(BlockFn fn, const torch::Tensor& x) {
  return checkpointed(
      [fn = std::move(fn)](const std::vector<torch::Tensor>& xs) -> std::vector<torch::Tensor> {
        return {fn(xs[0])};
      },
      {x})[0];
}

torch::Tensor maybe_checkpointed(BlockFn fn, const torch::Tensor& x) {
  if (checkpointing_on && torch::GradMode::is_enabled() && x.requires_grad())
    return checkpointed(std::move(fn), x);
  return fn(x);
}

}  // namespace herd
