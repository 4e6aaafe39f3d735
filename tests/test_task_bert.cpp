// BERT stack tasks through the user-facing train() path, on real text: masked-LM pretraining
// (attention and M2) lowers the loss and raises masked-token accuracy; fine-tuning the
// pretrained encoder on a labelled set built from two Debian text sources (fortunes and the
// GCIDE dictionary's definitions) classifies far above chance.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <numeric>
#include <sstream>

#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {

double mean_of(const std::vector<double>& v, size_t begin, size_t end) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(begin),
                         v.begin() + static_cast<std::ptrdiff_t>(end), 0.0) /
         static_cast<double>(end - begin);
}

const char* kMixers[][2] = {
    {"attention", "  mlp: gelu\n  mixer: {type: attention}\n"},
    {"m2",
     "  positional: none\n  mlp: m2_glu\n  mlp_nblocks: 4\n"
     "  mixer: {type: m2, filter_order: 16, emb_dim: 5}\n"},
};

constexpr int64_t kPretrainSteps = 200;

std::string bert_yaml(const std::string& model_lines, const std::string& rest) {
  return str("model:\n  stack: bert\n  d_model: 64\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 64\n",
             model_lines, rest);
}

// Pretrains; returns the final checkpoint.
std::string pretrain(const std::string& dir, const std::string& model_lines, int64_t steps,
                     TrainResult* out = nullptr) {
  test::write_text(
      dir + "/mlm.yaml",
      bert_yaml(model_lines, str("data:\n  dir: ", test::fortunes_dataset(), "\n",
                                 "task:\n  type: mlm\n  mask_rate: 0.3\n",
                                 "optimizer:\n  lr: 3.0e-3\n  weight_decay: 0.01\n",
                                 "schedule:\n  warmup_steps: 10\n", "train:\n  steps: ", steps,
                                 "\n  batch_size: 16\n  eval_batches: 2\n  threads: 1\n")));
  auto r = train(load_config(dir + "/mlm.yaml"), {dir + "/mlm", "", 0, true});
  if (out) *out = r;
  return r.last_checkpoint;
}

TEST(BertTasks, MaskedLmPretrainingLearns) {
  for (auto& [name, lines] : kMixers) {
    const std::string dir = test::temp_dir(str("mlm-", name));
    TrainResult r;
    pretrain(dir, lines, kPretrainSteps, &r);
    ASSERT_EQ(r.losses.size(), static_cast<size_t>(kPretrainSteps));
    const auto& acc = r.step_metrics.at("mlm_acc");
    ASSERT_EQ(acc.size(), static_cast<size_t>(kPretrainSteps));
    const size_t n = kPretrainSteps;
    const double loss0 = mean_of(r.losses, 0, 10), loss1 = mean_of(r.losses, n - 10, n);
    const double acc0 = mean_of(acc, 0, 10), acc1 = mean_of(acc, n - 10, n);
    EXPECT_LT(loss1, loss0 - 1.0) << name << ": loss " << loss0 << " -> " << loss1;
    EXPECT_GT(acc1, acc0 + 0.04) << name << ": masked accuracy " << acc0 << " -> " << acc1;
    EXPECT_TRUE(std::isfinite(eval_value(r.val, "mlm_acc"))) << name;
  }
}

// Fortunes, one per "%"-delimited block, newlines folded, from several fortune files.
std::vector<std::string> fortunes(size_t n) {
  std::vector<std::string> out;
  for (const char* name : {"wisdom", "literature", "people", "science", "politics", "fortunes"}) {
    std::ifstream in(str("/usr/share/games/fortunes/", name));
    std::string line, cur;
    while (out.size() < n && std::getline(in, line)) {
      if (line == "%") {
        if (cur.size() > 20) out.push_back(cur);
        cur.clear();
      } else {
        cur += (cur.empty() ? "" : " ") + line;
      }
    }
  }
  return out;
}

// Definitions from GCIDE (dictd format, gzip-compatible): each entry's indented body lines,
// without the headword line and the source tags.
std::vector<std::string> definitions(size_t n) {
  gzFile f = gzopen("/usr/share/dictd/gcide.dict.dz", "rb");
  EXPECT_NE(f, nullptr) << "dict-gcide is installed by scripts/setup.sh";
  std::vector<std::string> out;
  if (!f) return out;
  char buf[4096];
  std::string cur;
  bool skipped_front = false;
  while (out.size() < n && gzgets(f, buf, sizeof buf)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.empty()) {
      if (skipped_front && cur.size() > 40) out.push_back(cur);
      skipped_front = true;  // the first block is the dictionary's front matter
      cur.clear();
    } else if (line[0] == ' ' && line.find_first_not_of(' ') != std::string::npos &&
               line.find("[1913 Webster]") == std::string::npos &&
               line.find("[PJC]") == std::string::npos) {
      cur += (cur.empty() ? "" : " ") + line.substr(line.find_first_not_of(' '));
    }
  }
  gzclose(f);
  return out;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      o += ' ';
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

TEST(BertTasks, FineTunedClassifierBeatsChance) {
  const std::string dir = test::temp_dir("classify");
  const std::string ckpt = pretrain(dir, kMixers[0][1], 60);
  // Skip the first 1,000 definitions (mostly "A"-words with long etymologies).
  auto defs = definitions(2400);
  auto forts = fortunes(400);
  ASSERT_GE(defs.size(), 2400u);
  ASSERT_GE(forts.size(), 400u);
  std::ostringstream train_set, val_set;
  for (size_t i = 0; i < 400; ++i) {
    auto& out = i < 300 ? train_set : val_set;
    out << "{\"text\": \"" << json_escape(forts[i]) << "\", \"label\": \"fortune\"}\n";
    out << "{\"text\": \"" << json_escape(defs[2000 + i]) << "\", \"label\": \"definition\"}\n";
  }
  test::write_text(dir + "/train.jsonl", train_set.str());
  test::write_text(dir + "/val.jsonl", val_set.str());
  test::write_text(dir + "/cls.yaml",
                   bert_yaml(kMixers[0][1],
                             str("task:\n  type: classify\n  init_from: ", ckpt, "\n  train_file: ",
                                 dir, "/train.jsonl\n  val_file: ", dir, "/val.jsonl\n",
                                 "optimizer:\n  lr: 1.0e-3\n", "schedule:\n  warmup_steps: 5\n",
                                 "train:\n  steps: 60\n  batch_size: 16\n  eval_batches: 100\n"
                                 "  threads: 1\n")));
  auto r = train(load_config(dir + "/cls.yaml"), {dir + "/cls", "", 0, true});
  const double acc = eval_value(r.val, "acc");
  EXPECT_GT(acc, 0.8) << "validation accuracy " << acc << " (chance 0.5)";
}

}  // namespace
}  // namespace herd
