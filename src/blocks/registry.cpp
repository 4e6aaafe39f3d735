#include "blocks/registry.h"

namespace herd {

// Each block file defines its factory; one line below registers it.
SequenceMixer make_attention(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_primer(const MixerContext&, cfg::ConfigMap&);

const std::vector<MixerEntry>& mixer_registry() {
  static const std::vector<MixerEntry> entries = {
      {"attention", "multi-head softmax attention (causal or bidirectional)", make_attention},
      {"primer", "Primer multi-dconv-head attention (depthwise conv on q, k, v)", make_primer},
  };
  return entries;
}

const MixerEntry& find_mixer(const std::string& name) {
  for (const auto& e : mixer_registry())
    if (e.name == name) return e;
  std::string names;
  for (const auto& e : mixer_registry()) names += (names.empty() ? "" : "|") + e.name;
  throw Error(str("unknown mixer \"", name, "\": expected one of ", names));
}

std::vector<std::string> mixer_names() {
  std::vector<std::string> out;
  for (const auto& e : mixer_registry()) out.push_back(e.name);
  return out;
}

}  // namespace herd
