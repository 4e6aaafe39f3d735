#include "conformance/reference.h"

#include "core/error.h"

namespace herd {

// Each adapter file (src/conformance/reference_*.cpp) defines its builder (helpers in
// reference_util.h);
// one line below registers it under the golden file's `block` metadata.
ReferenceModule reference_attention(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_hyena(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_h3(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_m2_sequence_mixer(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_primer(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_m2_blockdiag_linear(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_m2_dimension_mixer(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_gpt(const YAML::Node& config, const std::string& variant);
ReferenceModule reference_s4d(const YAML::Node& config, const std::string& variant);

const std::vector<ReferenceEntry>& reference_registry() {
  static const std::vector<ReferenceEntry> entries = {
      {"attention", reference_attention},
      {"hyena", reference_hyena},
      {"h3", reference_h3},
      {"m2_sequence_mixer", reference_m2_sequence_mixer},
      {"primer", reference_primer},
      {"m2_blockdiag_linear", reference_m2_blockdiag_linear},
      {"m2_dimension_mixer", reference_m2_dimension_mixer},
      {"gpt", reference_gpt},
      {"s4d", reference_s4d},
  };
  return entries;
}

const ReferenceEntry& find_reference(const std::string& block) {
  for (const auto& e : reference_registry())
    if (e.block == block) return e;
  std::string names;
  for (const auto& e : reference_registry()) names += (names.empty() ? "" : "|") + e.block;
  throw Error(str("unknown block \"", block, "\": no reference adapter (known: ", names, ")"));
}

}  // namespace herd
