// The ViT stack through train() on real Fashion-MNIST (Debian's dataset-fashion-mnist): a
// small attention ViT and an M2-ViT, trained for 300 steps of 64 images, classify the 10,000
// test images far better than chance (10%); the image task's errors name the config key.
#include <gtest/gtest.h>

#include "core/error.h"
#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {

// Prepared once per test process.
const std::string& fashion_mnist() {
  static const std::string dir = [] {
    const std::string out = test::temp_dir("fmnist") + "/data";
    const std::string f = "/usr/share/datasets/fashion-mnist/";
    std::string log;
    const int rc = test::run_herd(
        str("prepare images --idx-train-images ", f, "train-images-idx3-ubyte.gz",
            " --idx-train-labels ", f, "train-labels-idx1-ubyte.gz", " --idx-test-images ", f,
            "t10k-images-idx3-ubyte.gz", " --idx-test-labels ", f, "t10k-labels-idx1-ubyte.gz",
            " --class-names fashion-mnist --out ", out),
        &log);
    EXPECT_EQ(rc, 0) << log;
    return out;
  }();
  return dir;
}

std::string vit_yaml(const std::string& mixer_lines, int64_t steps) {
  return str(
      "model:\n  stack: vit\n  image_size: 28\n  patch_size: 7\n  channels: 1\n  num_classes: 10\n"
      "  d_model: 32\n  n_layer: 2\n  n_head: 4\n  mlp_ratio: 2\n",
      mixer_lines, "data:\n  dir: ", fashion_mnist(),
      "\n  augment: {min_scale: 0.6}\n"
      "optimizer:\n  lr: 3.0e-3\n  betas: [0.9, 0.999]\n  weight_decay: 0.05\n"
      "schedule:\n  warmup_steps: 20\n"
      "train:\n  steps: ",
      steps, "\n  batch_size: 64\n  eval_batches: 40\n  micro_batch_size: 64\n  threads: 1\n");
}

TEST(VitTask, AttentionAndM2BeatChanceOnFashionMnist) {
  const char* mixers[][2] = {
      {"attention", "  pool: cls\n  mlp: gelu\n  mixer: {type: attention}\n"},
      {"m2",
       "  pool: mean\n  mlp: m2_glu\n  mlp_nblocks: 4\n"
       "  mixer: {type: m2, filter_order: 16, emb_dim: 5}\n"},
  };
  for (auto& [name, lines] : mixers) {
    const std::string dir = test::temp_dir(str("vit-", name));
    test::write_text(dir + "/vit.yaml", vit_yaml(lines, 300));
    auto r = train(load_config(dir + "/vit.yaml"), {dir + "/run", "", 0, true});
    ASSERT_EQ(r.losses.size(), 300u);
    // 40 batches of 64: the first 2,560 test images.
    const double acc = eval_value(r.val, "acc"), top5 = eval_value(r.val, "top5");
    EXPECT_GT(acc, 0.6) << name << ": test accuracy " << acc << " (chance 0.1)";
    EXPECT_GE(top5, acc) << name;
    EXPECT_GT(top5, 0.9) << name;
    EXPECT_EQ(r.step_metrics.at("acc").size(), 300u);
  }
}

TEST(VitTask, DatasetMismatchNamesTheKey) {
  const std::string dir = test::temp_dir("vit-bad");
  test::write_text(dir + "/vit.yaml",
                   vit_yaml("  mixer: {type: attention}\n", 2) + "  device: cpu\n");
  Config cfg = load_config(dir + "/vit.yaml", {"model.num_classes=7"});
  try {
    train(cfg, {dir + "/run", "", 0, true});
    FAIL() << "a 7-class model trained on 10 classes";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("model.num_classes"), std::string::npos) << what;
    EXPECT_NE(what.find(fashion_mnist()), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace herd
