#include "blocks/registry.h"

namespace herd {

// Each block file defines its factory; one line below registers it.
SequenceMixer make_attention(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_hyena(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_h3(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_m2(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_primer(const MixerContext&, cfg::ConfigMap&);
SequenceMixer make_s4d(const MixerContext&, cfg::ConfigMap&);

const std::vector<MixerEntry>& mixer_registry() {
  static const std::vector<MixerEntry> entries = {
      {"attention", "multi-head softmax attention (causal or bidirectional)", make_attention},
      {"hyena", "Hyena operator: implicit long convolutions with gating (causal)", make_hyena},
      {"h3", "H3: shift-SSM and diagonal-SSM long convolutions with gating (causal)", make_h3},
      {"m2", "Monarch Mixer sequence mixer (gated implicit long conv, causal or bidir)", make_m2},
      {"primer", "Primer multi-dconv-head attention (depthwise conv on q, k, v)", make_primer},
      {"s4d", "S4D: diagonal-SSM long convolution (zero-order hold), GELU, output linear (causal)",
       make_s4d},
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
