// Shared by the `herd bench` subcommands: timing, the machine header, the measured GEMM peak
// (the denominator of every FLOP/s ratio), and a minimal JSON writer for --json files.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace herd::cli::bench {

void sync(torch::Device dev);

// Median milliseconds of `iters` runs of body after `warmup` untimed ones (device-synced).
double time_ms(const std::function<void()>& body, torch::Device dev, int warmup, int iters);

std::string cpu_model();
// Prints date, CPU, torch and thread counts, CUDA devices and the fused-op table.
void print_machine(std::ostream& out);

// Best-of-several FLOP/s of an n x n x n matmul in `dtype` on `dev` (2 n^3 / time).
double gemm_peak_flops(torch::Device dev, torch::ScalarType dtype, int64_t n = 2048);

// Resolves --device: "cpu" | "cuda" (throws herd::Error when CUDA is not available).
torch::Device parse_device(const std::string& name);

// One flat JSON object: keys in order, values already formatted (numbers) or strings.
class JsonObject {
 public:
  JsonObject& num(const std::string& key, double v);
  JsonObject& integer(const std::string& key, int64_t v);
  JsonObject& text(const std::string& key, const std::string& v);
  std::string dump() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Writes `[obj, obj, ...]` to path atomically (temp file + rename); throws herd::Error.
void write_json_list(const std::string& path, const std::vector<JsonObject>& items);

}  // namespace herd::cli::bench
