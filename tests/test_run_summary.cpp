// What herd train prints before step 1 and after the first timed step.
#include <gtest/gtest.h>

#include "config/config.h"
#include "fixtures.h"
#include "train/run_summary.h"

namespace herd {
namespace {

Config tiny(const std::string& extra = "") {
  const std::string path = test::temp_dir("summary") + "/cfg.yaml";
  test::write_text(path,
                   "model:\n  vocab_size: 64\n  d_model: 16\n  n_layer: 2\n  max_seq_len: 32\n"
                   "  layers: [{at: [1], mixer: {type: hyena}}]\n"
                   "train:\n  batch_size: 8\n  micro_batch_size: 4\n" +
                       extra);
  return load_config(path);
}

TEST(RunSummary, PlanParametersTokensDataAndEpochs) {
  const std::string s =
      run_summary(tiny(), {12345, 256, 100, "tok", "12800 train tokens, 399 samples of 32"});
  EXPECT_NE(s.find("plan (gpt, 2 layers): 0 attention, 1 hyena"), std::string::npos) << s;
  EXPECT_NE(s.find("parameters 12345 (0.01M); 256 tokens per step (8 x 32, micro-batch 4)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("data: 12800 train tokens"), std::string::npos) << s;
  EXPECT_NE(s.find("100 steps cover 2.00 epochs"), std::string::npos) << s;
  // Classification data counts examples: each is a row of seq_len tokens.
  const std::string c =
      run_summary(tiny(), {1, 256, 10, "tok", "50 labelled train examples, 5 val, 2 classes"});
  EXPECT_NE(c.find("10 steps cover 1.60 epochs"), std::string::npos) << c;
  // A summary without a leading count says nothing about epochs.
  EXPECT_EQ(run_summary(tiny(), {1, 256, 10, "tok", "blend"}).find("epochs"), std::string::npos);
}

TEST(RunSummary, TimeEstimateFromTheFirstStep) {
  EXPECT_EQ(time_estimate(1.5, 100), "first step 1.50s: about 2m30s for the remaining 100 steps");
}

}  // namespace
}  // namespace herd
