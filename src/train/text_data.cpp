#include "train/text_data.h"

#include "core/error.h"

namespace herd {

std::vector<data::DatasetManifest> text_manifests(const Config& cfg) {
  std::vector<data::DatasetManifest> out;
  if (!cfg.data.mix.empty()) {
    for (const auto& s : cfg.data.mix) out.push_back(data::load_dataset(s.dir));
  } else {
    HERD_CHECK(!cfg.data.dir.empty(), cfg.source,
               " data.dir: required (a directory made by `herd prepare text`, a folder of llm.c "
               "shards, or data.mix: a list of {dir, weight})");
    out.push_back(data::load_dataset(cfg.data.dir));
  }
  // A folder of llm.c shards records no vocabulary: the config names it.
  for (auto& m : out)
    if (data::is_llmc_folder(m)) {
      HERD_CHECK(cfg.model.vocab_size > 0, cfg.source, " model.vocab_size: required for ", m.dir,
                 ", a folder of llm.c shards without a manifest (e.g. 50257 for GPT-2 tokens)");
      m.vocab_size = cfg.model.vocab_size;
    }
  if (out.size() > 1) data::check_same_tokenizer(out);
  return out;
}

TextTrainData::TextTrainData(const Config& cfg, int64_t seq_len) : manifests_(text_manifests(cfg)) {
  if (cfg.data.mix.empty()) {
    single_ = std::make_unique<data::TrainLoader>(manifests_.front(), seq_len, cfg.train.seed);
  } else {
    for (const auto& s : cfg.data.mix) weights_.push_back(s.weight);
    mixture_ = std::make_unique<data::MixtureLoader>(manifests_, weights_, seq_len, cfg.train.seed);
  }
}

data::Batch TextTrainData::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  return single_ ? single_->next_batch(global_batch, rank, world)
                 : mixture_->next_batch(global_batch, rank, world);
}

uint64_t TextTrainData::samples_drawn() const {
  if (single_) {
    const auto s = single_->state();
    return s.epoch * single_->num_samples() + s.next_sample;
  }
  uint64_t n = 0;
  for (size_t i = 0; i < mixture_->num_sources(); ++i) n += mixture_->drawn(i);
  return n;
}

std::string TextTrainData::state() const {
  return single_ ? single_->state().to_string() : mixture_->state();
}

void TextTrainData::restore(const std::string& state) {
  if (single_) {
    single_->restore(data::LoaderState::from_string(state));
  } else {
    mixture_->restore(state);
  }
}

uint64_t TextTrainData::num_tokens() const {
  return single_ ? single_->num_tokens() : mixture_->num_tokens();
}

uint64_t TextTrainData::num_samples() const {
  return single_ ? single_->num_samples() : mixture_->num_samples();
}

std::string TextTrainData::describe() const {
  std::string s = str(num_tokens(), " train tokens, ", num_samples(), " samples of ",
                      single_ ? single_->seq_len() : mixture_->seq_len());
  if (mixture_) {
    s += ", blend of";
    for (size_t i = 0; i < manifests_.size(); ++i)
      s += str(i ? ", " : " ", manifests_[i].dir, " (weight ", weights_[i], ")");
  }
  return s;
}

}  // namespace herd
