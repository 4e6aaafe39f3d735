// Golden adapter: herd's s4d built from the reference S4D constructor arguments.
#include "blocks/s4d.h"
#include "conformance/reference_util.h"

namespace herd {

// Conformance adapter: config = S4D constructor arguments (S4DKernel's included). herd models
// channels 1, unidirectional, GELU, no postact, (B, L, H) layout; anything else is an error.
ReferenceModule reference_s4d(const YAML::Node& config, const std::string& variant) {
  const std::string block = "s4d";
  ref::check_keys(
      config, block,
      {"d_model", "d_state", "channels", "bidirectional", "activation", "postact", "dropout",
       "transposed", "return_state", "lr", "n_ssm", "scaling", "dt_min", "dt_max"});
  auto expect = [&](bool ok, const char* key, const char* form) {
    HERD_CHECK(ok, block, " config: key \"", key, "\": expected ", form);
  };
  expect(ref::get_int(config, block, "channels", 1) == 1, "channels", "1");
  expect(!ref::get_bool(config, block, "bidirectional", false), "bidirectional", "false");
  expect(ref::get_string(config, block, "activation", "gelu") == "gelu", "activation", "\"gelu\"");
  expect(ref::get_string(config, block, "postact", "").empty(), "postact", "null");
  expect(ref::get_double(config, block, "dropout", 0.0) == 0.0, "dropout", "0");
  expect(!ref::get_bool(config, block, "transposed", true), "transposed",
         "false (herd's layout is (B, L, H))");
  S4DOptions o;
  o.d_model = ref::get_int(config, block, "d_model");
  o.l_max = int64_t{1} << 40;  // the S4D kernel is generated for any length
  o.d_state = ref::get_int(config, block, "d_state", 64);
  o.n_ssm = ref::get_int(config, block, "n_ssm", 1);
  o.scaling = ref::get_string(config, block, "scaling", "inverse");
  if (o.scaling != "linear") o.scaling = "inverse";  // init only; the file sets the values
  o.dt_min = ref::get_double(config, block, "dt_min", 0.001);
  o.dt_max = ref::get_double(config, block, "dt_max", 0.1);
  auto m = S4D(o);
  auto rm =
      mirrored_reference(m.ptr(), [p = m.ptr()](const torch::Tensor& x) { return p->forward(x); });
  rm.name_map = ref::nest_kernel_names(rm.name_map, {"kernel."});
  return rm;
}

}  // namespace herd
