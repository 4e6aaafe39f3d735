#include "dist/data_parallel.h"

#include "core/error.h"

namespace herd::dist {
namespace {

torch::Device requested_device(const TrainConfig& t) {
  const bool cuda = torch::cuda::is_available();
  return (t.device == "cuda" || (t.device == "auto" && cuda)) ? torch::Device(torch::kCUDA)
                                                              : torch::Device(torch::kCPU);
}

}  // namespace

DataParallel::DataParallel(const Config& cfg, const DistEnv& env)
    : bucket_cap_mb_(cfg.train.bucket_cap_mb),
      check_first_step_(cfg.logging.level == "debug"),
      zero_stage_(static_cast<int>(cfg.train.zero)) {
  const TrainConfig& t = cfg.train;
  WorldOptions o;
  o.backend = t.backend;
  o.timeout_s = t.dist_timeout_s;
  o.device = requested_device(t);
  world_ = std::make_unique<World>(env, o);
  context_parts_ = static_cast<int>(t.context_parallel);
  HERD_CHECK(context_parts_ >= 1 && size() % context_parts_ == 0, cfg.source,
             " train.context_parallel: ", context_parts_, " does not divide the world size ",
             size(), " (ranks = data parallel x context parallel)");
  if (context_parts_ > 1) context_ = std::make_unique<ContextGroup>(*world_, context_parts_);
}

torch::Device DataParallel::device(torch::Device requested) const {
  return requested.is_cuda() ? world_->device() : requested;
}

int64_t DataParallel::local_batch(int64_t global_batch, const std::string& source) const {
  HERD_CHECK(global_batch % data_size() == 0, source, " train.batch_size: ", global_batch,
             " does not divide among ", data_size(),
             context_parts_ > 1 ? str(" data-parallel ranks (", size(),
                                      " ranks / train.context_parallel ", context_parts_, ")")
                                : std::string(" ranks"),
             " (the global batch is split evenly)");
  return global_batch / data_size();
}

void DataParallel::setup(torch::nn::Module& model) {
  model_ = &model;
  if (!active()) return;
  world_->broadcast_parameters(model);
  sync_ = std::make_unique<GradSync>(*world_, model.parameters(), bucket_cap_mb_, zero_stage_);
}

std::unique_ptr<torch::optim::AdamW> DataParallel::shard_optimizer(
    std::unique_ptr<torch::optim::AdamW> plain, std::vector<double> initial_lr) {
  if (!sync_ || zero_stage_ == 0) return plain;
  auto sharded = std::make_unique<ShardedAdamW>(*plain, *sync_, *world_, std::move(initial_lr));
  zero_ = sharded.get();
  return sharded;  // `plain` and any full state it held go here
}

void DataParallel::before_backward(bool last_micro_step) {
  if (sync_) sync_->before_backward(last_micro_step);
}

void DataParallel::after_backward() {
  if (sync_) sync_->wait();
}

void DataParallel::after_step(int64_t step_done) {
  if (!active() || !check_first_step_ || checked_) return;
  checked_ = true;
  world_->check_parameters_identical(*model_, str("after step ", step_done));
}

}  // namespace herd::dist
