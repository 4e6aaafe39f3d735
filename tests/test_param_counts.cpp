// The paper-size configs in configs/ build models whose parameter counts match what the
// reference code (safari ConvLMHeadModel, flash-attention GPTLMHeadModel, m2 BertForMaskedLM)
// creates for the same config. The reference numbers are derived in docs/blocks.md
// (scripts/reference_param_counts.py).
#include <gtest/gtest.h>

#include <chrono>

#include "config/config.h"
#include "models/gpt.h"
#include "models/stack.h"

namespace herd {
namespace {

struct PaperSize {
  const char* config;
  int64_t reference;  // parameters the reference modules create, tied head counted once
};

// The references pad the vocabulary to a multiple of 8 (50257 -> 50264); herd keeps the
// tokenizer's size, so it has exactly 7 * d_model fewer embedding parameters.
constexpr int64_t kVocabPadRows = 50264 - 50257;

class ParamCounts : public ::testing::TestWithParam<PaperSize> {};

TEST_P(ParamCounts, WithinOnePercentOfReference) {
  const PaperSize& size = GetParam();
  const Config cfg = load_config(std::string(HERD_SOURCE_DIR) + "/configs/" + size.config);
  ASSERT_EQ(cfg.model.vocab_size, 50257) << size.config;
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  Gpt model(cfg.model);
  const int64_t herd = parameter_count(*model);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double diff = static_cast<double>(herd - size.reference) / size.reference;
  EXPECT_LT(std::abs(diff), 0.01) << size.config << ": herd " << herd << " vs reference "
                                  << size.reference << " (" << diff * 100 << "%)";
  // Stronger: every module matches, the vocabulary padding is the only difference.
  EXPECT_EQ(size.reference - herd, kVocabPadRows * cfg.model.d_model) << size.config;
  std::printf("[ params ] %-18s herd %lld reference %lld diff %+.4f%% (built in %.1f s)\n",
              size.config, static_cast<long long>(herd), static_cast<long long>(size.reference),
              diff * 100, seconds);
}

INSTANTIATE_TEST_SUITE_P(Configs, ParamCounts,
                         ::testing::Values(PaperSize{"gpt-125m.yaml", 125231616},
                                           PaperSize{"gpt-355m.yaml", 355878912},
                                           PaperSize{"h3-125m.yaml", 126139392},
                                           PaperSize{"h3-355m.yaml", 361058304},
                                           PaperSize{"hyena-153m.yaml", 153700416},
                                           PaperSize{"hyena-355m.yaml", 358602496},
                                           PaperSize{"primer-125m.yaml", 125314560}),
                         [](const ::testing::TestParamInfo<PaperSize>& info) {
                           std::string name = info.param.config;
                           name = name.substr(0, name.find('.'));
                           for (auto& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// M2-BERT (m2@7d359e8c BertForMaskedLM from bert/yamls/pretrain/monarch-mixer-*.yaml) and the
// HF BERT-base baseline. The configs keep create_bert.py's vocabulary padding (30522 ->
// 30528), so the counts are equal.
class BertParamCounts : public ::testing::TestWithParam<PaperSize> {};

TEST_P(BertParamCounts, EqualToReference) {
  const PaperSize& size = GetParam();
  const Config cfg = load_config(std::string(HERD_SOURCE_DIR) + "/configs/" + size.config);
  ASSERT_EQ(cfg.model.stack, "bert") << size.config;
  ASSERT_EQ(cfg.model.vocab_size, 30528) << size.config;
  torch::NoGradGuard no_grad;
  auto model = build_model(cfg.model);
  const int64_t herd = parameter_count(*model);
  const double diff = static_cast<double>(herd - size.reference) / size.reference;
  EXPECT_LT(std::abs(diff), 0.01) << size.config << ": herd " << herd << " vs reference "
                                  << size.reference << " (" << diff * 100 << "%)";
  EXPECT_EQ(herd, size.reference) << size.config;
  std::printf("[ params ] %-22s herd %lld reference %lld diff %+.4f%%\n", size.config,
              static_cast<long long>(herd), static_cast<long long>(size.reference), diff * 100);
}

INSTANTIATE_TEST_SUITE_P(M2Bert, BertParamCounts,
                         ::testing::Values(PaperSize{"m2-bert-base-80m.yaml", 80267328},
                                           PaperSize{"m2-bert-base-110m.yaml", 115583616},
                                           PaperSize{"m2-bert-large-260m.yaml", 259133760},
                                           PaperSize{"m2-bert-large-341m.yaml", 341038144},
                                           PaperSize{"bert-base.yaml", 109518912}),
                         [](const ::testing::TestParamInfo<PaperSize>& info) {
                           std::string name = info.param.config;
                           name = name.substr(0, name.find(".yaml"));
                           for (auto& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace herd
