// herd prepare images: IDX files or class folders of JPEG/PNG -> uint8 image shards + manifest.
#include <memory>

#include "cli/commands.h"
#include "data/image/prepare_images.h"

namespace herd::cli {

void add_prepare_images(CLI::App& prepare) {
  auto opt = std::make_shared<data::PrepareImagesOptions>();
  auto* cmd = prepare.add_subcommand(
      "images", "Decode IDX files or ROOT/{train,val}/<class>/*.jpg|png into image shards");
  cmd->add_option("--folder", opt->folder,
                  "ImageNet-style root holding train/<class>/ and val/<class>/");
  cmd->add_option("--idx-train-images", opt->idx_train_images, "IDX images (.gz or plain)");
  cmd->add_option("--idx-train-labels", opt->idx_train_labels, "IDX labels for the train images");
  cmd->add_option("--idx-test-images", opt->idx_test_images, "IDX images of the val split");
  cmd->add_option("--idx-test-labels", opt->idx_test_labels, "IDX labels of the val split");
  cmd->add_option("--class-names", opt->class_names,
                  "IDX only: comma-separated names for labels 0,1,... or fashion-mnist");
  cmd->add_option("--size", opt->size,
                  "Square side: shorter side resized to it, then centre crop (0: native IDX)")
      ->capture_default_str();
  cmd->add_option("--channels", opt->channels, "1 (gray) or 3 (RGB); 0: 1 for IDX, 3 for folders")
      ->capture_default_str();
  cmd->add_option("--shard-images", opt->shard_images, "Images per shard")->capture_default_str();
  cmd->add_option("--max-warnings", opt->max_warnings, "Skipped files listed before only counting")
      ->capture_default_str();
  cmd->add_option("--out", opt->out_dir, "Output directory (shards + manifest.yaml)")->required();
  cmd->footer(
      "Examples:\n"
      "  F=/usr/share/datasets/fashion-mnist\n"
      "  herd prepare images --idx-train-images $F/train-images-idx3-ubyte.gz \\\n"
      "      --idx-train-labels $F/train-labels-idx1-ubyte.gz \\\n"
      "      --idx-test-images $F/t10k-images-idx3-ubyte.gz \\\n"
      "      --idx-test-labels $F/t10k-labels-idx1-ubyte.gz \\\n"
      "      --class-names fashion-mnist --out data/fashion-mnist\n"
      "  herd prepare images --folder imagenet --size 64 --out data/imagenet64");
  cmd->callback([opt] { data::prepare_images(*opt); });
}

}  // namespace herd::cli
