// Mixers by name. A new block is one file under src/blocks/ plus one line in registry.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "blocks/mixer.h"

namespace herd {

// Reads the block's own options from `options` (the layer's mixer mapping, minus `type`);
// must read every key it accepts so that unknown keys are rejected by the caller.
using MixerFactory = std::function<SequenceMixer(const MixerContext&, cfg::ConfigMap& options)>;

struct MixerEntry {
  std::string name;
  std::string summary;
  MixerFactory make;
};

const std::vector<MixerEntry>& mixer_registry();
const MixerEntry& find_mixer(const std::string& name);  // throws herd::Error listing names
std::vector<std::string> mixer_names();

}  // namespace herd
