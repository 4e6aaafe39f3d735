// herd bench ops: times the ATen reference against herd's fused path for every kernel in
// src/ops/, forward and forward+backward, on the CPU and on CUDA when a device is present.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "ops/registry.h"
#include "ops/short_conv.h"
#include "ops/squared_relu.h"

namespace herd::cli {
namespace {

using Fn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

struct BenchCase {
  std::string op, shape;
  std::function<std::vector<torch::Tensor>(torch::Device)> inputs;  // leaves require grad
  Fn reference, fused;
};

// (B, C, L, K) with x a transposed [B, L, C] activation, as Hyena/M2/Primer pass it.
BenchCase short_conv_case(int64_t B, int64_t C, int64_t L, int64_t K) {
  BenchCase c;
  c.op = "short_conv";
  c.shape = str("B", B, " C", C, " L", L, " K", K, " x^T");
  c.inputs = [=](torch::Device dev) {
    auto o = torch::TensorOptions().device(dev);
    return std::vector<torch::Tensor>{torch::randn({B, L, C}, o).requires_grad_(true),
                                      torch::randn({C, 1, K}, o).requires_grad_(true),
                                      torch::randn({C}, o).requires_grad_(true)};
  };
  c.reference = [](const std::vector<torch::Tensor>& in) {
    return ops::short_conv_reference(in[0].transpose(1, 2), in[1], in[2]);
  };
  c.fused = [](const std::vector<torch::Tensor>& in) {
    return ops::short_conv_fused(in[0].transpose(1, 2), in[1], in[2]);
  };
  return c;
}

// An FFN activation [tokens, hidden].
BenchCase squared_relu_case(int64_t rows, int64_t cols) {
  BenchCase c;
  c.op = "squared_relu";
  c.shape = str(rows, " x ", cols);
  c.inputs = [=](torch::Device dev) {
    return std::vector<torch::Tensor>{
        torch::randn({rows, cols}, torch::TensorOptions().device(dev)).requires_grad_(true)};
  };
  c.reference = [](const std::vector<torch::Tensor>& in) {
    return ops::squared_relu_reference(in[0]);
  };
  c.fused = [](const std::vector<torch::Tensor>& in) { return ops::squared_relu_fused(in[0]); };
  return c;
}

std::vector<BenchCase> bench_cases() {
  return {short_conv_case(4, 384, 256, 3), short_conv_case(1, 2304, 1024, 3),
          short_conv_case(2, 768, 1024, 7), squared_relu_case(1024, 3072),
          squared_relu_case(4096, 3072)};
}

void sync(torch::Device dev) {
  if (dev.is_cuda()) torch::cuda::synchronize();
}

// Median milliseconds of `iters` runs after `warmup` untimed ones.
double time_ms(const std::function<void()>& body, torch::Device dev, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) body();
  sync(dev);
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    sync(dev);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

void print_machine() {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
  std::cout << "date     " << date << "\n"
            << "cpu      " << cpu_model() << " (" << std::thread::hardware_concurrency()
            << " logical cores, torch threads " << torch::get_num_threads() << ")\n"
            << "torch    " << TORCH_VERSION << "\n"
            << "cuda     "
            << (torch::cuda::is_available() ? str(torch::cuda::device_count(), " device(s)")
                                            : std::string("not available"))
            << ", herd kernels " << (ops::cuda_kernels_compiled() ? "compiled" : "not compiled")
            << "\n";
  for (const auto& line : ops::fused_op_lines()) std::cout << "op       " << line << "\n";
}

void run_benchmarks(const std::string& device, int warmup, int iters) {
  print_machine();
  std::vector<torch::Device> devices;
  if (device != "cuda") devices.push_back(torch::kCPU);
  if (device != "cpu") {
    if (torch::cuda::is_available() && ops::cuda_kernels_compiled())
      devices.push_back(torch::kCUDA);
    else if (device == "cuda")
      throw Error("bench ops: --device cuda needs a CUDA device and a build with nvcc");
  }
  std::printf("\n%-12s %-5s %-26s %-8s %12s %10s %8s\n", "op", "dev", "shape (float32)", "pass",
              "reference ms", "fused ms", "speedup");
  for (const auto dev : devices)
    for (const auto& c : bench_cases()) {
      torch::manual_seed(0);
      const auto in = c.inputs(dev);
      const auto g = torch::randn_like(c.reference(in));
      for (const bool backward : {false, true}) {
        auto timed = [&](const Fn& f) {
          return time_ms(
              [&] {
                if (!backward) {
                  torch::NoGradGuard no_grad;
                  f(in);
                  return;
                }
                for (const auto& t : in) t.mutable_grad() = torch::Tensor();
                f(in).backward(g);
              },
              dev, warmup, iters);
        };
        const double ref = timed(c.reference), fused = timed(c.fused);
        std::printf("%-12s %-5s %-26s %-8s %12.3f %10.3f %7.2fx\n", c.op.c_str(),
                    dev.is_cuda() ? "cuda" : "cpu", c.shape.c_str(), backward ? "fwd+bwd" : "fwd",
                    ref, fused, ref / fused);
      }
    }
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  struct Args {
    std::string device = "all";
    int warmup = 3, iters = 20;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = bench->add_subcommand(
      "ops", "Time the ATen reference against herd's fused kernels (median of --iters runs)");
  cmd->add_option("--device", args->device, "Where to run")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  cmd->add_option("--warmup", args->warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
  cmd->add_option("--iters", args->iters, "Timed runs (the median is printed)")
      ->check(CLI::PositiveNumber);
  cmd->footer("Example:\n  herd bench ops --device cpu --iters 20");
  cmd->callback([args] { run_benchmarks(args->device, args->warmup, args->iters); });
}

}  // namespace herd::cli
