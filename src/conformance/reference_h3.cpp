// Golden adapter: herd's h3 built from the reference constructor arguments.
#include "blocks/h3.h"
#include "conformance/reference_util.h"

namespace herd {

// Conformance adapter: config = H3 constructor arguments (kernel args included).
ReferenceModule reference_h3(const YAML::Node& config, const std::string& variant) {
  const std::string block = "h3";
  ref::check_keys(config, block,
                  {"d_model", "d_state", "l_max", "head_dim", "use_fast_fftconv", "dropout",
                   "layer_idx", "lr", "mode", "measure", "dt_min", "dt_max", "disc", "real_type",
                   "deterministic", "rank", "channels", "n_ssm"});
  auto str_or = [&](const char* key, const std::string& def) {
    return ref::get_string(config, block, key, def);
  };
  HERD_CHECK(str_or("mode", "diag") == "diag", block, " config: key \"mode\": expected \"diag\"");
  HERD_CHECK(str_or("disc", "bilinear") == "bilinear", block,
             " config: key \"disc\": expected \"bilinear\"");
  HERD_CHECK(str_or("real_type", "exp") == "exp", block,
             " config: key \"real_type\": expected \"exp\"");
  HERD_CHECK(ref::get_int(config, block, "channels", 1) == 1, block,
             " config: key \"channels\": expected 1");
  H3Options o;
  o.d_model = ref::get_int(config, block, "d_model");
  o.l_max = ref::get_int(config, block, "l_max");
  o.d_state = ref::get_int(config, block, "d_state", 64);
  o.head_dim = ref::get_int(config, block, "head_dim", 1);
  o.measure = str_or("measure", "diag-lin");
  if (o.measure != "diag-inv") o.measure = "diag-lin";  // init only; the file sets values
  o.dt_min = ref::get_double(config, block, "dt_min", 0.001);
  o.dt_max = ref::get_double(config, block, "dt_max", 0.1);
  auto m = H3(o);
  auto rm =
      mirrored_reference(m.ptr(), [p = m.ptr()](const torch::Tensor& x) { return p->forward(x); });
  rm.name_map = ref::nest_kernel_names(rm.name_map, {"ssm_k_kernel.", "kernel."});
  return rm;
}

}  // namespace herd
