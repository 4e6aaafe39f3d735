#include "conformance/conformance.h"

#include <dirent.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "conformance/reference.h"
#include "core/error.h"

namespace herd::conformance {
namespace {

// POSIX instead of std::filesystem: torch's wheels export their own (broken) copies of the
// std::filesystem symbols (pytorch/pytorch#133437), which interpose on libstdc++'s.
std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

// Tensors the harness reads itself; everything else that is not param/grad/buffer is a model
// input ("input", "target", ...).
bool is_model_input(const std::string& name) {
  return !starts_with(name, "param.") && !starts_with(name, "grad.") &&
         !starts_with(name, "buffer.") && name != "output" && name != "grad_output" &&
         name != "grad_input";
}

double meta_double(const io::SafeTensors& g, const std::string& key) {
  auto it = g.metadata.find(key);
  HERD_CHECK(it != g.metadata.end(), g.file, ": metadata \"", key,
             "\" missing (needed as tolerance)");
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    if (used == it->second.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw Error(str(g.file, ": metadata \"", key, "\": expected a non-negative number, got \"",
                  it->second, "\""));
}

std::string meta_string(const io::SafeTensors& g, const std::string& key) {
  auto it = g.metadata.find(key);
  HERD_CHECK(it != g.metadata.end(), g.file, ": metadata \"", key, "\" missing");
  return it->second;
}

struct Bounds {
  double rtol = 0, atol = 0;
  std::map<std::string, double> strict;  // per-tensor absolute bound (strict f32 mode)
};

Bounds read_bounds(const io::SafeTensors& g, torch::Dtype dtype, const Options& opt) {
  Bounds b;
  if (dtype == torch::kFloat64) {
    b.rtol = meta_double(g, "rtol");
    b.atol = meta_double(g, "atol");
    return b;
  }
  b.rtol = meta_double(g, "rtol_f32");
  b.atol = meta_double(g, "atol_f32");
  if (opt.strict_f32) {
    YAML::Node errs;
    try {
      errs = YAML::Load(meta_string(g, "f32_max_abs_err"));
    } catch (const YAML::Exception& e) {
      throw Error(str(g.file, ": metadata \"f32_max_abs_err\" is not JSON (", e.msg, ")"));
    }
    HERD_CHECK(errs.IsMap(), g.file, ": metadata \"f32_max_abs_err\": expected a JSON object");
    for (const auto& kv : errs) b.strict[kv.first.as<std::string>()] = 10 * kv.second.as<double>();
  }
  return b;
}

TensorCheck compare(const std::string& name, const torch::Tensor& herd, const torch::Tensor& ref,
                    const Bounds& b) {
  TensorCheck c;
  c.name = name;
  auto r = ref.to(torch::kFloat64);
  c.ref_max_abs = r.numel() ? r.abs().max().item<double>() : 0.0;
  auto it = b.strict.find(name);
  c.bound = it != b.strict.end() ? it->second : b.atol + b.rtol * c.ref_max_abs;
  if (!herd.defined()) {
    c.note = "herd produced no value (no gradient reached this tensor)";
    c.max_abs_err = std::numeric_limits<double>::quiet_NaN();
    return c;
  }
  if (herd.sizes() != ref.sizes()) {
    c.note = str("shape mismatch: herd ", herd.sizes(), " vs reference ", ref.sizes());
    c.max_abs_err = std::numeric_limits<double>::quiet_NaN();
    return c;
  }
  auto d = herd.detach().to(torch::kCPU, torch::kFloat64) - r;
  c.max_abs_err = d.numel() ? d.abs().max().item<double>() : 0.0;
  if (!std::isfinite(c.max_abs_err)) c.note = "non-finite values in herd's result";
  c.pass = c.max_abs_err <= c.bound;  // false for NaN
  return c;
}

// Finds a parameter or buffer by dotted name (parameters first).
torch::Tensor find_tensor(torch::nn::Module& m, const std::string& name, bool* is_param) {
  for (const auto& p : m.named_parameters(true))
    if (p.key() == name) return *is_param = true, p.value();
  for (const auto& p : m.named_buffers(true))
    if (p.key() == name) return *is_param = false, p.value();
  return {};
}

void run_check(const io::SafeTensors& g, torch::Dtype dtype, const Options& opt, CheckResult& res) {
  res.block = meta_string(g, "block");
  res.variant = g.metadata.count("variant") ? g.metadata.at("variant") : "";
  YAML::Node config;
  try {
    config = YAML::Load(meta_string(g, "config"));
  } catch (const YAML::Exception& e) {
    throw Error(str(g.file, ": metadata \"config\" is not JSON (", e.msg, ")"));
  }
  const Bounds bounds = read_bounds(g, dtype, opt);
  const auto& entry = find_reference(res.block);
  ReferenceModule rm = entry.build(config, res.variant);
  HERD_CHECK(rm.module && rm.forward, res.block, ": reference adapter returned no module");
  rm.module->to(dtype);
  rm.module->eval();

  // Load every param.* / buffer.* through the name map; both directions must be complete so
  // that a layout bug (a tensor nobody reads, a herd weight left at its init) is a failure.
  std::map<std::string, torch::Tensor> herd_param_of;  // reference param name -> herd param
  std::set<std::string> loaded;                        // herd names written from the file
  {
    torch::NoGradGuard no_grad;
    for (const auto& name : g.order) {
      const bool param = starts_with(name, "param."), buffer = starts_with(name, "buffer.");
      if (!param && !buffer) continue;
      const std::string ref_name = name.substr(param ? 6 : 7);
      auto it = rm.name_map.find(ref_name);
      HERD_CHECK(it != rm.name_map.end(), g.file, ": ", name, " has no herd counterpart in the ",
                 res.block, " adapter's name map");
      bool is_param = false;
      auto t = find_tensor(*rm.module, it->second, &is_param);
      HERD_CHECK(t.defined(), g.file, ": ", name, " maps to \"", it->second,
                 "\", which is not a parameter or buffer of herd's module");
      HERD_CHECK(t.sizes() == g.at(name).sizes(), g.file, ": ", name, " has shape ",
                 g.at(name).sizes(), " but herd's \"", it->second, "\" has shape ", t.sizes());
      t.copy_(g.at(name));
      loaded.insert(it->second);
      if (param) herd_param_of[ref_name] = t;
    }
  }
  std::string missing;
  for (const auto& p : rm.module->named_parameters(true))
    if (!loaded.count(p.key())) missing += (missing.empty() ? "" : ", ") + p.key();
  HERD_CHECK(missing.empty(), g.file, ": herd parameters not provided by the file: ", missing);

  std::map<std::string, torch::Tensor> inputs;
  const bool want_grad_input = g.has("grad_input");
  for (const auto& name : g.order) {
    if (!is_model_input(name)) continue;
    auto t = g.at(name);
    if (t.is_floating_point()) t = t.to(dtype);
    if (name == "input" && want_grad_input) {
      HERD_CHECK(t.is_floating_point(), g.file, ": grad_input given but input is not floating");
      t = t.detach().requires_grad_(true);
    }
    inputs[name] = t;
  }
  for (auto& p : rm.module->parameters()) p.mutable_grad() = torch::Tensor();

  auto out = rm.forward(inputs);
  const auto& ref_out = g.at("output");
  HERD_CHECK(out.sizes() == ref_out.sizes(), g.file, ": herd output has shape ", out.sizes(),
             " but the reference output has shape ", ref_out.sizes());
  auto loss = (out * g.at("grad_output").to(out.scalar_type())).sum();
  loss.backward();

  res.tensors.push_back(compare("output", out, ref_out, bounds));
  if (want_grad_input)
    res.tensors.push_back(
        compare("grad_input", inputs.at("input").grad(), g.at("grad_input"), bounds));
  for (const auto& name : g.order) {
    if (!starts_with(name, "grad.param.")) continue;
    const std::string ref_name = name.substr(11);
    auto it = herd_param_of.find(ref_name);
    HERD_CHECK(it != herd_param_of.end(), g.file, ": ", name, " has no matching param.", ref_name);
    auto grad = it->second.grad();
    // An unused parameter gets no gradient at all; the reference then stores zeros.
    if (!grad.defined()) grad = torch::zeros_like(it->second);
    res.tensors.push_back(compare(name, grad, g.at(name), bounds));
  }
  res.pass = std::all_of(res.tensors.begin(), res.tensors.end(),
                         [](const TensorCheck& c) { return c.pass; });
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::string dtype_name(torch::Dtype dtype) {
  if (dtype == torch::kFloat64) return "float64";
  if (dtype == torch::kFloat32) return "float32";
  return c10::toString(dtype);
}

const TensorCheck* CheckResult::worst() const {
  const TensorCheck* w = nullptr;
  double wr = -1;
  for (const auto& c : tensors) {
    double r = c.bound > 0 ? c.max_abs_err / c.bound : c.max_abs_err;
    if (std::isnan(r)) r = std::numeric_limits<double>::infinity();
    if (r > wr) wr = r, w = &c;
  }
  return w;
}

CheckResult check_golden(const io::SafeTensors& golden, torch::Dtype dtype, const Options& opt) {
  CheckResult res;
  res.file = base_name(golden.file);
  res.dtype = dtype;
  try {
    run_check(golden, dtype, opt, res);
  } catch (const Error& e) {
    res.pass = false;
    res.error = e.what();
  } catch (const c10::Error& e) {
    res.pass = false;
    res.error = str(res.file, ": ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    res.pass = false;
    res.error = str(res.file, ": ", e.what());
  }
  if (!res.error.empty()) {
    // Keep one line: torch messages can span several.
    std::replace(res.error.begin(), res.error.end(), '\n', ' ');
  }
  return res;
}

std::vector<CheckResult> check_file(const std::string& path, const Options& opt) {
  std::vector<CheckResult> out;
  io::SafeTensors g;
  try {
    g = io::read_safetensors(path);
  } catch (const std::exception& e) {
    for (auto dtype : opt.dtypes) {
      CheckResult r;
      r.file = base_name(path);
      r.dtype = dtype;
      r.error = e.what();
      out.push_back(r);
    }
    return out;
  }
  for (auto dtype : opt.dtypes) out.push_back(check_golden(g, dtype, opt));
  return out;
}

std::vector<CheckResult> check_dir(const std::string& dir, const Options& opt, std::ostream* out) {
  HERD_CHECK(is_directory(dir), dir, ": not a directory (expected a folder of *.safetensors)");
  std::vector<std::string> files;
  DIR* d = ::opendir(dir.c_str());
  HERD_CHECK(d, dir, ": cannot list directory");
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (!ends_with(name, ".safetensors")) continue;
    if (!opt.filter.empty() && name.find(opt.filter) == std::string::npos) continue;
    files.push_back(dir + "/" + name);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  HERD_CHECK(!files.empty(), dir, ": no *.safetensors files",
             opt.filter.empty() ? "" : str(" matching --filter \"", opt.filter, "\""));
  std::vector<CheckResult> results;
  for (const auto& f : files) {
    for (auto& r : check_file(f, opt)) {
      if (out) {
        *out << format_line(r) << "\n";
        if (opt.verbose || !r.pass) *out << format_detail(r);
        out->flush();
      }
      results.push_back(std::move(r));
    }
  }
  return results;
}

std::string format_line(const CheckResult& r) {
  std::string line = str(r.pass ? "PASS" : "FAIL", "  ", r.file, "  ", dtype_name(r.dtype), "  ");
  if (!r.error.empty()) return line + "error: " + r.error;
  const auto* w = r.worst();
  if (!w) return line + "no tensors compared";
  return line + str("worst: ", w->name, " abs=", fmt(w->max_abs_err), " rel=", fmt(w->rel()));
}

std::string format_detail(const CheckResult& r) {
  std::string s;
  for (const auto& c : r.tensors) {
    s += str("    ", c.pass ? "ok  " : "FAIL", "  ", c.name, "  abs=", fmt(c.max_abs_err),
             " rel=", fmt(c.rel()), " bound=", fmt(c.bound), " max|ref|=", fmt(c.ref_max_abs));
    if (!c.note.empty()) s += "  (" + c.note + ")";
    s += "\n";
  }
  return s;
}

bool all_passed(const std::vector<CheckResult>& results) {
  return !results.empty() &&
         std::all_of(results.begin(), results.end(), [](const CheckResult& r) { return r.pass; });
}

}  // namespace herd::conformance
