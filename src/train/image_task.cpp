// Image classification (ViT stack) on a dataset made by `herd prepare images`: cross-entropy
// on labels, random-resized-crop and flip augmentation in the loader, top-1/top-5 accuracy.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "data/hash.h"
#include "data/image/image_loader.h"
#include "models/vit.h"
#include "train/task.h"

namespace herd {
namespace {

data::ImageAugment augment_from(const DataConfig& d) {
  data::ImageAugment a;
  a.random_resized_crop = d.augment.random_resized_crop;
  a.min_scale = d.augment.min_scale;
  a.max_scale = d.augment.max_scale;
  a.hflip = d.augment.hflip;
  a.validate();
  return a;
}

class ImageTask : public Task {
 public:
  ImageTask(const Config& base, const Runtime& rt)
      : rt_(rt),
        manifest_(data::load_image_manifest(required_dir(base))),
        loader_(manifest_, augment_from(base.data), base.train.seed),
        val_(manifest_),
        model_(nullptr) {
    cfg_ = base;
    const auto& shape = manifest_.shape;
    HERD_CHECK(shape.height == shape.width, manifest_.manifest_path(), ": images are ",
               shape.height, "x", shape.width, "; the ViT stack needs square images");
    resolve(cfg_.model.num_classes, manifest_.num_classes(), "num_classes");
    resolve(cfg_.model.image_size, shape.height, "image_size");
    resolve(cfg_.model.channels, shape.channels, "channels");
    model_ = Vit(cfg_.model);
    model_->to(rt_.device, rt_.param_dtype);
  }

  torch::nn::Module& model() override { return *model_; }
  std::string data_summary() const override {
    const auto& s = manifest_.shape;
    return str(loader_.num_samples(), " train images of ", s.height, "x", s.width, "x", s.channels,
               ", ", val_.num_samples(), " eval images, ", manifest_.num_classes(), " classes");
  }
  int64_t units_per_row() const override { return 1; }
  std::string unit() const override { return "img"; }

  TaskBatch next_batch(int64_t global, int64_t rank, int64_t world) override {
    auto b = loader_.next_batch(global, rank, world);
    return {{b.images, b.labels}};
  }
  LossOutput loss(const TaskBatch& mb) override {
    auto logits = model_->forward(mb.parts[0].to(rt_.device, rt_.param_dtype));
    auto labels = mb.parts[1].to(rt_.device);
    return {torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels),
            {{"acc", {logits.argmax(-1).eq(labels).sum(), static_cast<double>(labels.size(0))}}}};
  }
  std::string loader_state() const override { return loader_.state().to_string(); }
  void restore_loader(const std::string& s) override {
    loader_.restore(data::LoaderState::from_string(s));
  }

  bool has_eval() const override { return val_.num_samples() > 0; }
  EvalResult evaluate(int64_t max_batches, const EvalShard& shard) override {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t mb = cfg_.micro_batch();
    const int64_t batches = eval_batch_count(val_.num_samples(), mb, max_batches);
    const int64_t k5 = std::min<int64_t>(5, cfg_.model.num_classes);
    EvalSums sums(4);  // loss * rows, top-1 correct, top-5 correct, rows
    for (int64_t i : shard.mine(batches)) {
      val_.seek(static_cast<uint64_t>(i * mb));
      auto b = val_.next_batch(mb);
      AutocastScope autocast(rt_);
      auto logits = model_->forward(b->images.to(rt_.device, rt_.param_dtype)).to(torch::kFloat32);
      auto labels = b->labels.to(rt_.device);
      const double rows = static_cast<double>(labels.size(0));
      sums.add(0, torch::nn::functional::cross_entropy(logits, labels).to(torch::kFloat64) * rows);
      sums.add(1, logits.argmax(-1).eq(labels).sum());
      auto best = std::get<1>(logits.topk(k5, -1));
      sums.add(2, best.eq(labels.unsqueeze(1)).any(1).sum());
      sums.add(3, rows);
    }
    model_->train();
    const auto total = sums.total(shard);  // [dist] over every rank's batches
    const double n = total[3];
    return {{"loss", total[0] / n}, {"acc", total[1] / n}, {"top5", total[2] / n}};
  }

  // The dataset's manifest bytes: a checkpoint resumes only on the same images and labels.
  std::string data_identity() const override {
    std::ifstream in(manifest_.manifest_path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return "images:" + data::hex64(data::fnv1a64(s.str()));
  }

 private:
  static const std::string& required_dir(const Config& cfg) {
    HERD_CHECK(!cfg.data.dir.empty(), cfg.source,
               " data.dir: required (a directory made by `herd prepare images`)");
    return cfg.data.dir;
  }
  // A model key left at 0 takes the dataset's value; a set one must agree with it.
  void resolve(int64_t& key, int64_t from_data, const char* name) {
    if (key == 0) key = from_data;  // num_classes: 0 means "from the data"
    HERD_CHECK(key == from_data, cfg_.source, " model.", name, ": ", key, " but the dataset (",
               cfg_.data.dir, ") has ", from_data);
    cfg_.resolved["model"][name] = key;
  }

  Runtime rt_;
  data::ImageManifest manifest_;
  data::ImageTrainLoader loader_;
  data::ImageEvalLoader val_;
  Vit model_;
};

}  // namespace

std::unique_ptr<Task> make_image_task(const Config& cfg, const Runtime& rt) {
  return std::make_unique<ImageTask>(cfg, rt);
}

}  // namespace herd
