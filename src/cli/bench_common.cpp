#include "cli/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "ops/registry.h"

namespace herd::cli::bench {

void sync(torch::Device dev) {
  if (dev.is_cuda()) torch::cuda::synchronize();
}

double time_ms(const std::function<void()>& body, torch::Device dev, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) body();
  sync(dev);
  std::vector<double> ms;
  for (int i = 0; i < std::max(iters, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    sync(dev);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  return n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

namespace {
std::string cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("flags", 0) == 0) {
      std::string out;
      for (const char* f : {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
        if (line.find(std::string(" ") + f) != std::string::npos)
          out += str(out.empty() ? "" : " ", f);
      return out.empty() ? "no AVX2" : out;
    }
  return "?";
}
}  // namespace

void print_machine(std::ostream& out) {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  out << "date     " << date << "\n"
      << "cpu      " << cpu_model() << " (" << std::thread::hardware_concurrency()
      << " logical cores; " << cpu_flags() << "; torch threads " << torch::get_num_threads()
      << ")\n"
      << "torch    " << TORCH_VERSION << "\n"
      << "cuda     ";
  if (torch::cuda::is_available())
    out << torch::cuda::device_count() << " device(s)";
  else
    out << "not available";
  out << ", herd CUDA kernels " << (ops::cuda_kernels_compiled() ? "compiled" : "not compiled")
      << "\n";
  for (const auto& line : ops::fused_op_lines()) out << "  " << line << "\n";
}

double gemm_peak_flops(torch::Device dev, torch::ScalarType dtype, int64_t n) {
  torch::NoGradGuard no_grad;
  auto o = torch::TensorOptions().device(dev).dtype(dtype);
  auto a = torch::randn({n, n}, o), b = torch::randn({n, n}, o), c = torch::empty({n, n}, o);
  // Best of 5 medians-of-1: the peak, not the typical (other processes only slow it down).
  double best_ms = 1e30;
  torch::mm_out(c, a, b);
  sync(dev);
  for (int rep = 0; rep < 5; ++rep)
    best_ms = std::min(best_ms, time_ms([&] { torch::mm_out(c, a, b); }, dev, 0, 1));
  return 2.0 * static_cast<double>(n) * n * n / (best_ms * 1e-3);
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    HERD_CHECK(torch::cuda::is_available(), "--device cuda: no CUDA device is available here");
    return torch::kCUDA;
  }
  throw Error(str("--device: expected cpu|cuda, got \"", name, "\""));
}

namespace {
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}
}  // namespace

JsonObject& JsonObject::num(const std::string& key, double v) {
  std::ostringstream s;
  if (std::isfinite(v))
    s << std::setprecision(6) << v;
  else
    s << "null";
  fields_.emplace_back(key, s.str());
  return *this;
}

JsonObject& JsonObject::integer(const std::string& key, int64_t v) {
  fields_.emplace_back(key, std::to_string(v));
  return *this;
}

JsonObject& JsonObject::text(const std::string& key, const std::string& v) {
  fields_.emplace_back(key, quote(v));
  return *this;
}

std::string JsonObject::dump() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i)
    out += str(i ? ", " : "", quote(fields_[i].first), ": ", fields_[i].second);
  return out + "}";
}

void write_json_list(const std::string& path, const std::vector<JsonObject>& items) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    HERD_CHECK(f.good(), path, ": cannot write the --json file");
    f << "[\n";
    for (size_t i = 0; i < items.size(); ++i)
      f << "  " << items[i].dump() << (i + 1 < items.size() ? ",\n" : "\n");
    f << "]\n";
    f.flush();
    HERD_CHECK(f.good(), path, ": writing the --json file failed (disk full?)");
  }
  HERD_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot move ", tmp,
             " into place");
}

}  // namespace herd::cli::bench
