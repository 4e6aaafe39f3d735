// Conformance harness: replays golden files (schema: shared/golden/README.md) through herd's
// modules built by the reference registry and compares output, grad_input and every
// grad.param.* with  max|herd - ref| <= atol + rtol * max|ref|  per tensor.
#pragma once

#include <torch/torch.h>

#include <ostream>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace herd::conformance {

struct TensorCheck {
  std::string name;          // "output", "grad_input", "grad.param.<ref name>"
  double max_abs_err = 0.0;  // max |herd - ref| (NaN if herd produced non-finite values)
  double ref_max_abs = 0.0;  // max |ref|
  double bound = 0.0;        // atol + rtol * ref_max_abs (or the strict f32 bound)
  bool pass = false;
  std::string note;  // why it failed when not a plain tolerance miss (shape, missing grad)
  double rel() const { return ref_max_abs > 0 ? max_abs_err / ref_max_abs : max_abs_err; }
};

struct CheckResult {
  std::string file;  // base name
  std::string block, variant;
  torch::Dtype dtype = torch::kFloat64;
  bool pass = false;
  std::string error;  // set when the file could not be read/built/loaded: a FAIL
  std::vector<TensorCheck> tensors;
  // The tensor closest to (or furthest past) its bound; nullptr when none was compared.
  const TensorCheck* worst() const;
};

struct Options {
  std::vector<torch::Dtype> dtypes{torch::kFloat64, torch::kFloat32};
  std::string filter;       // substring of the file name; empty = all
  bool verbose = false;     // per-tensor lines for passing checks too
  bool strict_f32 = false;  // float32 bound per tensor: 10 * f32_max_abs_err[name]
};

// One golden file already in memory, in one dtype. Never throws: errors become result.error.
CheckResult check_golden(const io::SafeTensors& golden, torch::Dtype dtype,
                         const Options& opt = {});
// One file, every dtype in opt.dtypes; an unreadable file yields one failed result per dtype.
std::vector<CheckResult> check_file(const std::string& path, const Options& opt = {});
// Every *.safetensors in dir (sorted by name) whose name contains opt.filter. When out is set,
// prints one line per file and dtype as soon as it is done (plus details, see format_detail).
// Throws herd::Error when dir is not a directory or nothing matched.
std::vector<CheckResult> check_dir(const std::string& dir, const Options& opt,
                                   std::ostream* out = nullptr);

// "PASS  file  float64  worst: <tensor> abs=.. rel=.."  or "FAIL  file  float32  error: ..".
std::string format_line(const CheckResult& r);
// Indented per-tensor lines (empty when there is nothing to add).
std::string format_detail(const CheckResult& r);
bool all_passed(const std::vector<CheckResult>& results);
std::string dtype_name(torch::Dtype dtype);  // "float64" | "float32" | ...

}  // namespace herd::conformance
