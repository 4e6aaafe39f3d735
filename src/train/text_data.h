// The training text of the LM and MLM tasks: one prepared dataset (data.dir) or a weighted
// blend of several (data.mix, src/data/mixture.h). Validation, the tokenizer and the
// vocabulary come from the first dataset.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/text/loader.h"
#include "data/text/manifest.h"
#include "data/text/mixture.h"

namespace herd {

class TextTrainData {
 public:
  TextTrainData(const Config& cfg, int64_t seq_len);

  const data::DatasetManifest& manifest() const { return manifests_.front(); }
  data::Batch next_batch(int64_t global_batch, int64_t rank, int64_t world);
  // Samples handed out so far over all epochs and sources (a global, rank-free counter).
  uint64_t samples_drawn() const;
  std::string state() const;
  void restore(const std::string& state);
  uint64_t num_tokens() const;
  uint64_t num_samples() const;
  std::string describe() const;  // "N train tokens, M samples of T" (+ the blend)

 private:
  std::vector<data::DatasetManifest> manifests_;
  std::vector<double> weights_;
  std::unique_ptr<data::TrainLoader> single_;
  std::unique_ptr<data::MixtureLoader> mixture_;
};

// The manifests a text config names (data.dir, or every data.mix dir); one-line errors.
std::vector<data::DatasetManifest> text_manifests(const Config& cfg);

}  // namespace herd
