#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "ckpt/checkpoint.h"
#include "config/node.h"
#include "core/log.h"
#include "core/mem_stats.h"
#include "data/file_util.h"
#include "dist/data_parallel.h"
#include "models/activation_checkpoint.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/prefetch.h"
#include "train/run_summary.h"
#include "train/schedule.h"
#include "train/step_totals.h"
#include "train/stop_signal.h"

namespace herd {
namespace fs = std::filesystem;
namespace {

std::string default_run_dir(const Config& cfg) {
  return (fs::path("runs") / fs::path(cfg.source).stem()).string();
}

std::string join_plan(const ModelConfig& m) {
  std::string s;
  for (const auto& n : layer_plan(m)) s += (s.empty() ? "" : " ") + n;
  return s;
}

SampleRequest sample_request(const TrainConfig& t, uint64_t seed) {
  return {t.sample_prompt, t.sample_tokens, t.sample_temperature, t.sample_top_k, seed};
}

std::vector<std::pair<std::string, double>> means(const Tallies& tallies) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [name, t] : tallies) out.emplace_back(name, t.mean());
  return out;
}

// [dist] The step's loss and tallies summed over ranks on the device, in one all-reduce.
RankSum rank_sum(dist::DataParallel& dp) {
  RankSum r{dp.size(), {}};
  if (dp.active())
    r.sum = [&dp](torch::Tensor& t) {
      auto& world = dp.world();
      t = t.to(world.device());
      world.finish(world.allreduce_async(t), "all-reduce of the step's loss and metrics");
    };
  return r;
}

// [dist] Evaluation batches shared out over the data-parallel ranks; context parallel: the
// ranks of a group run the same batches, each on its shard of positions (train/eval_shard.h).
EvalShard eval_shard(dist::DataParallel& dp) {
  EvalShard shard{dp.data_rank(), dp.data_size(), {}, dp.context()};
  if (dp.active()) shard.sum = [&dp](std::vector<double> v) { return dp.sum(std::move(v)); };
  return shard;
}

// --- Run directory, resume and stop safety ---

int64_t step_of(const std::string& checkpoint_dir) {
  const std::string name = fs::path(checkpoint_dir).filename().string();
  return std::strtoll(name.c_str() + 5, nullptr, 10);  // "step_00000100"
}

// The checkpoint to resume from (nullopt: a fresh start). `auto` takes the newest one that
// verifies, warning about each newer one passed over; checkpoints none of which verifies are
// an error, never a silent fresh start.
std::optional<std::string> resume_source(const std::string& ckpt_dir, const RunOptions& o,
                                         bool speak) {
  if (o.resume.empty()) return std::nullopt;
  if (o.resume != "auto") return o.resume;
  auto pick = ckpt::pick_latest(ckpt_dir);
  if (speak)
    for (const auto& s : pick.skipped) log::warn("skipping checkpoint ", s);
  if (!pick.path && !pick.skipped.empty())
    throw Error(str(ckpt_dir, ": no valid checkpoint to resume (", pick.skipped.front(),
                    "); pass --resume PATH to pick one, or --overwrite to start over"));
  return pick.path;
}

// Resuming an older checkpoint of this run would overwrite the newer ones as it goes: refused
// unless --overwrite (then they are deleted). `auto` skips only checkpoints that failed to
// verify, which its saves may replace.
void check_no_newer(const std::string& ckpt_dir, int64_t step, const RunOptions& o) {
  if (o.resume == "auto" || o.overwrite) return;
  for (const auto& dir : ckpt::list_complete(ckpt_dir))
    HERD_CHECK(step_of(dir) <= step, o.resume, ": ", dir,
               " is newer and would be overwritten as this run goes on; pass --overwrite to "
               "discard the newer checkpoints, or resume the newest");
}

// --overwrite: the checkpoints after `after_step` (all for a fresh start) are deleted, each
// renamed aside first so that nothing takes a half-deleted one for a checkpoint.
void discard_checkpoints(const std::string& ckpt_dir, int64_t after_step) {
  for (const auto& dir : ckpt::list_step_dirs(ckpt_dir)) {
    if (step_of(dir) <= after_step) continue;
    log::warn("--overwrite: deleting ", dir);
    const fs::path aside = fs::path(ckpt_dir) / str(".del-", fs::path(dir).filename().string());
    fs::rename(dir, aside);
    fs::remove_all(aside);
  }
  if (after_step < 0) fs::remove(fs::path(ckpt_dir) / "latest");
}

// Installs the stop handlers for the scope of a run (tests run several in one process).
struct StopHandlers {
  StopHandlers() {
    clear_stop_request();
    install_stop_handlers();
  }
  ~StopHandlers() { remove_stop_handlers(); }
};

// Non-finite steps: skipped (no update, gradients zeroed) and counted; max_bad_steps in a
// row end the run with the checkpoints written so far intact.
struct BadSteps {
  int64_t limit, in_a_row = 0, total = 0;
  // True when the step may be applied.
  bool accept(double loss, double grad_norm, int64_t step, const std::string& last_checkpoint) {
    if (std::isfinite(loss) && std::isfinite(grad_norm)) {
      in_a_row = 0;
      return true;
    }
    ++in_a_row;
    ++total;
    log::warn("step ", step, ": loss ", loss, ", gradient norm ", grad_norm,
              ": not finite, step skipped (", in_a_row, " in a row, ", total, " in all)");
    HERD_CHECK(in_a_row < limit, "step ", step, ": ", in_a_row,
               " steps in a row with a non-finite loss or gradient norm (train.max_bad_steps ",
               limit, "); the run diverged: lower optimizer.lr or raise schedule.warmup_steps. ",
               last_checkpoint.empty() ? std::string("No checkpoint was written")
                                       : str("Last good checkpoint: ", last_checkpoint));
    return false;
  }
};

// Test hook (docs/reliability.md): HERD_FAULT_NONFINITE_STEPS=3,4 makes those steps' losses NaN.
bool injected_nonfinite(int64_t step) {
  const char* v = std::getenv("HERD_FAULT_NONFINITE_STEPS");
  for (const char* p = v; p && *p;) {
    char* end = nullptr;
    if (std::strtoll(p, &end, 10) == step) return true;
    if (end == p) return false;
    p = *end ? end + 1 : end;
  }
  return false;
}

// The L2 norm of all gradients (as clip_grad_norm reports it), without clipping.
torch::Tensor grad_norm_of(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : parameters)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2.0));
  if (norms.empty()) return torch::zeros({}, torch::kFloat64);
  return norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2.0);
}

// [dist] herd bench train: every rank's peak memory, each in its own slot of one sum.
void record_rank_memory(dist::DataParallel& dp, torch::Device device, TrainResult& r) {
  std::vector<double> v(2 * static_cast<size_t>(dp.size()), 0.0);
  v[2 * dp.rank()] = static_cast<double>(mem::peak_bytes(device));
  v[2 * dp.rank() + 1] = static_cast<double>(mem::peak_rss_bytes());
  v = dp.sum(v);
  for (size_t i = 0; i < v.size(); i += 2) {
    r.rank_peak_tensor_bytes.push_back(static_cast<int64_t>(v[i]));
    r.rank_peak_rss_bytes.push_back(static_cast<int64_t>(v[i + 1]));
  }
}

}  // namespace

void check_run_dir(const std::string& run_dir, const RunOptions& o) {
  if (o.bench || o.overwrite || !o.resume.empty()) return;
  const auto dirs = ckpt::list_step_dirs((fs::path(run_dir) / "checkpoints").string());
  if (dirs.empty()) return;
  throw Error(str(run_dir, ": already holds checkpoints (newest ",
                  fs::path(dirs.back()).filename().string(),
                  "); pass --resume auto to continue that run, or --overwrite to start over "
                  "(deletes them)"));
}

TrainResult train(const Config& base_cfg, const RunOptions& given) {
  // [dist] Joins the ranks named by the environment (a world of one otherwise); only rank 0
  // logs, writes files and samples.
  const std::string given_dir = given.run_dir.empty() ? default_run_dir(base_cfg) : given.run_dir;
  check_run_dir(given_dir, given);  // before anything joins, loads or writes
  StopHandlers stop_handlers;
  dist::DataParallel dp(base_cfg);
  RunOptions options = given;
  options.quiet |= !dp.is_main();
  log::set_level(base_cfg.logging.level);
  if (base_cfg.train.threads > 0) torch::set_num_threads(static_cast<int>(base_cfg.train.threads));
  Runtime rt = Runtime::from(base_cfg.train);
  rt.device = dp.device(rt.device);  // [dist] cuda:LOCAL_RANK
  torch::manual_seed(base_cfg.train.seed);
  auto task = make_task(base_cfg, rt);
  const Config& cfg = task->config();

  const std::string run_dir = options.run_dir.empty() ? default_run_dir(cfg) : options.run_dir;
  const std::string ckpt_dir = (fs::path(run_dir) / "checkpoints").string();
  fs::create_directories(run_dir);
  auto& model = task->model();
  const auto param_groups = plan_param_groups(model, cfg.optimizer, cfg.source);
  auto optimizer = make_optimizer(param_groups, cfg.optimizer);

  TrainResult result;
  int64_t units_seen = 0;
  const std::optional<std::string> resume_from = resume_source(ckpt_dir, options, dp.is_main());
  std::optional<ckpt::Checkpoint> resumed;  // its optimizer state is loaded after dp.setup
  if (!resume_from && options.overwrite && dp.is_main()) discard_checkpoints(ckpt_dir, -1);
  if (resume_from) {
    auto ck = ckpt::open(*resume_from);
    HERD_CHECK(ck.state.step <= cfg.train.steps, ck.path, ": checkpoint is at step ", ck.state.step,
               ", past train.steps ", cfg.train.steps,
               "; raise train.steps (--set train.steps=N) to train on, or resume an earlier one");
    check_no_newer(ckpt_dir, ck.state.step, options);
    if (options.overwrite && dp.is_main()) discard_checkpoints(ckpt_dir, ck.state.step);
    ckpt::check_same_model(ck.config, cfg.resolved, cfg.source);
    HERD_CHECK(ck.state.tokenizer_identity == task->data_identity(), ck.path,
               ": trained on data identified as ", ck.state.tokenizer_identity,
               ", the config's is ", task->data_identity());
    ckpt::load_model(ck, model);
    resumed = ck;
    ckpt::load_rng(ck);
    task->restore_loader(ck.state.loader_state);
    result.start_step = ck.state.step;
    units_seen = ck.state.tokens_seen;
    if (!options.quiet) log::info("resumed from ", ck.path, " at step ", ck.state.step);
  }
  // task.init_from (herd train --init-from): weights only, optimizer and step start fresh. The
  // classify task takes just the encoder, itself (classify_task.cpp).
  if (!resume_from && !cfg.task.init_from.empty() && resolved_task_type(cfg) != "classify") {
    auto ck = ckpt::open(cfg.task.init_from);
    ckpt::load_model(ck, model);  // every name and shape checked: errors name the tensor
    if (!ck.state.tokenizer_identity.empty() &&
        ck.state.tokenizer_identity != task->data_identity())
      log::warn(ck.path, ": its weights were trained on data identified as ",
                ck.state.tokenizer_identity, ", this run's is ", task->data_identity());
    if (!options.quiet)
      log::info("weights from ", ck.path, " (its step ", ck.state.step,
                "); optimizer and schedule start at step 0");
  }
  dp.setup(model);  // [dist] rank 0's weights everywhere; gradient hooks
  {                 // [dist] train.zero: this rank keeps its slice of the optimizer state
    std::vector<double> peak_lrs;
    for (const auto& g : param_groups) peak_lrs.push_back(g.lr);
    optimizer = dp.shard_optimizer(std::move(optimizer), peak_lrs);
    if (resumed) ckpt::load_optimizer(*resumed, *optimizer);  // any world size, any zero
    if (cfg.train.zero > 0 && !dp.active() && !options.quiet)
      log::info("train.zero ", cfg.train.zero, " on one rank: nothing to shard");
  }
  if (dp.is_main())  // checked, atomic: a full disk is an error here, not a silently empty file
    data::write_file_atomic((fs::path(run_dir) / "config.yaml").string(),
                            cfg::to_yaml(cfg.resolved));
  // Steps after the resumed one are redone: their old lines go.
  MetricsWriter metrics(dp.is_main() ? (fs::path(run_dir) / "metrics.jsonl").string() : "/dev/null",
                        task->unit(), result.start_step);

  const int64_t total = cfg.train.steps, B = cfg.train.batch_size;
  // [dist] B is global; each rank runs B / world rows in micro-batches of at most mb.
  const int64_t local_B = dp.local_batch(B, cfg.source), mb = std::min(cfg.micro_batch(), local_B);
  HERD_CHECK(local_B % mb == 0, cfg.source, " train.micro_batch_size: ", mb,
             " must divide the per-rank batch ", local_B, " (train.batch_size ", B, " over ",
             dp.data_size(), " data-parallel ranks)");
  // [dist] train.context_parallel: what cannot split is refused before the first step.
  dist::check_context_parallel(cfg, dp.size(), resolved_task_type(cfg), task->units_per_row(),
                               model);
  const int64_t accum = local_B / mb, units_per_step = B * task->units_per_row();
  if (!options.quiet)
    log::info("model: ", parameter_count(model), " parameters, layers [", join_plan(cfg.model),
              "], ", rt.describe(), "; task ", resolved_task_type(cfg),
              "; data: ", task->data_summary(), "; run dir ", run_dir);
  if (!options.quiet)
    log_run_summary(cfg, {parameter_count(model), units_per_step, total - result.start_step,
                          task->unit(), task->data_summary()});

  // The loader's state after the last batch the loop consumed (checkpoints record it; the
  // prefetcher's own position is one batch ahead).
  std::string loader_state = task->loader_state();
  auto checkpoint = [&](int64_t step) {
    dist::GatheredState full_state(dp.zero());  // [dist] ZeRO: full m, v on rank 0 to save
    if (!dp.is_main()) return dp.barrier("checkpoint written by rank 0");  // [dist]
    ckpt::SaveRequest req;
    req.checkpoints_dir = ckpt_dir;
    req.state = {step, units_seen, loader_state, task->data_identity(), ""};
    req.model = &model;
    req.optimizer = optimizer.get();
    req.config = cfg.resolved.node();
    req.tokenizer_path = task->tokenizer_path();
    req.keep_last = cfg.checkpoint.keep_last;
    result.last_checkpoint = ckpt::save(req);
    if (!options.quiet) log::info("checkpoint ", result.last_checkpoint);
    dp.barrier("checkpoint written by rank 0");
  };
  auto run_eval = [&](int64_t step) {
    EvalResult r = task->evaluate(cfg.train.eval_batches, eval_shard(dp));  // [dist] shared out
    metrics.eval(step, r);
    if (!options.quiet) log::info("step ", step, " | val ", format_eval(r));
    return r;
  };
  auto log_sample = [&](uint64_t seed) {
    if (!dp.is_main()) return std::optional<std::string>();  // [dist]
    auto text = task->sample(sample_request(cfg.train, seed));
    if (text && !options.quiet) log::info("sample: ", *text);
    return text;
  };

  model.train();
  result.units_per_step = units_per_step;
  {  // Per token for text; an image is max_seq_len (patch) tokens.
    const bool images = task->units_per_row() == 1;
    const int64_t seq = images ? cfg.model.max_seq_len : cfg.seq_len();
    result.flops_per_unit =
        flops_per_token(cfg.model, model, seq) * static_cast<double>(images ? seq : 1);
  }
  ProgressClock clock(total - result.start_step, task->unit());
  const bool recompute = cfg.train.activation_checkpointing == "layer";
  const RankSum ranks = rank_sum(dp);
  BadSteps bad{cfg.train.max_bad_steps};
  // [dist] each rank's rows; from here the loader is the prefetch thread's.
  // [dist] context parallel: the data-parallel rank's rows, this rank's shard of positions.
  const int64_t context_parts = dp.context() ? dp.context()->parts() : 1,
                context_index = dp.context() ? dp.context()->index() : 0;
  BatchPrefetcher batches(
      [&] {
        return task->next_batch(B, dp.data_rank(), dp.data_size())
            .sequence_shard(context_index, context_parts);
      },
      [&] { return task->loader_state(); }, total - result.start_step);
  for (int64_t step = result.start_step; step < total; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    const double lr = lr_at(cfg.optimizer, cfg.schedule, step, total);
    set_lr(*optimizer, param_groups, cfg.optimizer.lr > 0 ? lr / cfg.optimizer.lr : 0.0);
    optimizer->zero_grad();
    BatchPrefetcher::Item next = batches.next();
    const TaskBatch& batch = next.batch;
    StepTotals totals(accum);
    for (int64_t m = 0; m < accum; ++m) {
      SequenceSplitScope split(dp.context());  // [dist] blocks see the shard, forward and backward
      LossOutput out;
      {
        AutocastScope autocast(rt);
        ActivationCheckpointing checkpointing(recompute);
        out = task->loss(batch.slice(m * mb, mb));
        if (injected_nonfinite(step + 1)) out.loss = out.loss * std::nan("");
      }
      dp.before_backward(m + 1 == accum);  // [dist] all-reduce on the last micro-step only
      (out.loss / static_cast<double>(accum)).backward();
      totals.add(out);
    }
    dp.after_backward();  // [dist] gradients averaged over ranks
    // [dist] ZeRO: the gradient is in the ranks' shards, its norm one all-reduce.
    const torch::Tensor norm = dp.zero() ? dp.zero()->clip_grad_norm(cfg.train.grad_clip)
                               : cfg.train.grad_clip > 0
                                   ? clip_grad_norm(model.parameters(), cfg.train.grad_clip)
                                   : grad_norm_of(model.parameters());
    totals.vote(stop_requested() ? 1.0 : 0.0);  // [dist] any rank asked to stop: all stop here
    // The step's one host sync: loss, tallies ([dist] of the global batch), gradient norm and
    // the stop votes.
    const StepValues values = totals.read(norm, ranks);
    const double step_loss = values.loss, grad_norm = values.grad_norm;
    const Tallies& tallies = values.tallies;
    if (bad.accept(step_loss, grad_norm, step + 1, result.last_checkpoint)) {
      optimizer->step();
    } else {
      optimizer->zero_grad();
    }
    dp.after_step(step + 1);  // [dist] debug: all ranks hold the same weights
    loader_state = next.loader_state;
    units_seen += units_per_step;
    result.losses.push_back(step_loss);
    result.step_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count());
    const int64_t done = step + 1;
    clock.tick(units_per_step);
    if (done == result.start_step + 1 && done != total && !options.quiet)
      log::info(time_estimate(result.step_seconds.back(), total - done));
    auto step_means = means(tallies);
    for (const auto& [name, v] : step_means) result.step_metrics[name].push_back(v);
    if (bad.in_a_row > 0) step_means.emplace_back("skipped", 1.0);
    if (bad.total > 0) step_means.emplace_back("bad_steps", static_cast<double>(bad.total));
    metrics.step(done, step_loss, lr, grad_norm, clock.tokens_per_second(), units_seen, step_means);
    if (!options.quiet &&
        (done % cfg.logging.every == 0 || done == total || done == result.start_step + 1)) {
      std::string extra;
      for (const auto& [name, v] : step_means) extra += str(" | ", name, " ", v);
      log::info(clock.progress_line(done, total, step_loss, lr), extra);
    }
    if (values.votes > 0) {  // before this step's evaluation or sample: stop soon
      checkpoint(done);
      result.steps = done;
      result.stop_signal = stop_requested() > 0 ? stop_requested() : SIGTERM;
      result.bad_steps = bad.total;
      result.tokens_per_second = clock.tokens_per_second();
      if (dp.is_main())
        log::info("stopped by ",
                  stop_requested() > 0 ? signal_name(stop_requested())
                                       : std::string("a signal to another rank"),
                  " after step ", done, "; checkpoint ", result.last_checkpoint,
                  "; resume with --resume auto (exit status ", kExitStopped, ")");
      return result;
    }
    if (task->has_eval() && cfg.train.eval_every > 0 && done % cfg.train.eval_every == 0 &&
        done != total)
      run_eval(done);
    if (cfg.train.sample_every > 0 && done % cfg.train.sample_every == 0 && done != total &&
        !options.quiet)
      log_sample(cfg.train.seed + static_cast<uint64_t>(done));
    if (options.stop_after > 0 && done >= options.stop_after && done != total) {
      checkpoint(done);
      result.steps = done;
      result.tokens_per_second = clock.tokens_per_second();
      if (!options.quiet)
        log::info("stopped after step ", done, " (--stop-after); resume with --resume auto");
      return result;
    }
    if (cfg.checkpoint.every > 0 && done % cfg.checkpoint.every == 0 && done != total)
      checkpoint(done);
  }
  result.steps = total;
  result.bad_steps = bad.total;
  result.tokens_per_second = clock.tokens_per_second();
  if (options.bench) {
    record_rank_memory(dp, rt.device, result);
    return result;
  }
  if (result.start_step < total || result.last_checkpoint.empty()) checkpoint(total);
  result.val_loss = std::nan("");
  if (task->has_eval()) {
    result.val = run_eval(total);
    result.val_loss = eval_value(result.val, "loss");
  }
  if (cfg.train.sample_tokens > 0)
    if (auto text = log_sample(cfg.train.seed)) result.sample = *text;
  return result;
}

std::unique_ptr<Task> task_from_checkpoint(const std::string& checkpoint, const Config& cfg) {
  auto ck = ckpt::open(checkpoint);
  Config run = cfg;
  const Config saved = parse_config(ck.config, ck.file("config.yaml"));
  run.model = saved.model;
  run.task = saved.task;
  run.resolved["model"] = YamlValue(ck.config["model"]).node();
  const Runtime rt = Runtime::from(run.train);
  auto task = make_task(run, rt);
  ckpt::check_same_model(ck.config, task->config().resolved, cfg.source);
  HERD_CHECK(ck.state.tokenizer_identity == task->data_identity(), checkpoint,
             ": trained on data identified as ", ck.state.tokenizer_identity,
             ", the config's data is ", task->data_identity());
  ckpt::load_model(ck, task->model());
  return task;
}

}  // namespace herd
