// Image loaders over a synthetic dataset whose label is the image index (so every row names
// its image) and whose pixels are fixed pseudo-random values.
#include <gtest/gtest.h>

#include <set>

#include "data/image/image_loader.h"
#include "data/image/image_manifest.h"
#include "data/text/manifest.h"
#include "fixtures.h"
#include "test_data_util.h"
#include "test_image_util.h"

namespace {

using namespace herd::data;
using namespace herd::data::testing_util;

constexpr int64_t N = 103, H = 12, W = 10, C = 3;

// 103 train images of 12x10x3 in shards of 40, 40, 23 (label = index), 9 val images.
ImageManifest make_dataset(const std::string& dir) {
  ImageManifest m;
  m.dir = dir;
  m.shape = ImageShape{H, W, C};
  for (int64_t i = 0; i < N; ++i) m.class_names.push_back("c" + std::to_string(i));
  m.mean = {0.5, 0.25, 0.75};
  m.std = {0.2, 0.5, 0.125};
  m.source_kind = "folder";
  m.inputs = {"synthetic"};
  m.size = H;
  auto add = [&](ImageSplit* s, const char* file, int64_t first, int64_t n) {
    ImageShardWriter w(join_path(dir, file), m.shape);
    for (int64_t i = first; i < first + n; ++i)
      w.append(noise_image(H, W, C, uint32_t(i)).pixels.data(), int32_t(i));
    w.finish();
    s->shards.push_back(ImageShardEntry{file, uint64_t(n)});
    s->class_counts.resize(N);
    for (int64_t i = first; i < first + n; ++i) ++s->class_counts[size_t(i)];
  };
  add(&m.train, "train_000000.bin", 0, 40);
  add(&m.train, "train_000001.bin", 40, 40);
  add(&m.train, "train_000002.bin", 80, 23);
  add(&m.val, "val_000000.bin", 0, 9);
  save_image_manifest(m);
  return load_image_manifest(dir);
}

// Pixels of image i as the loaders should produce them without augmentation: [C, H, W].
torch::Tensor expected_plain(const ImageManifest& m, int64_t i) {
  Image im = noise_image(H, W, C, uint32_t(i));
  auto t = torch::from_blob(im.pixels.data(), {H, W, C}, torch::kUInt8).to(torch::kFloat64);
  auto mean = torch::tensor(m.mean, torch::kFloat64), std = torch::tensor(m.std, torch::kFloat64);
  return ((t / 255 - mean) / std).permute({2, 0, 1}).to(torch::kFloat32);
}

std::vector<int64_t> labels_of(const ImageBatch& b) {
  auto l = b.labels.contiguous();
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

TEST(ImageLoader, EveryImageOncePerEpochInSeededOrder) {
  ScratchDir dir("img-epoch");
  ImageManifest m = make_dataset(dir.path());
  ImageTrainLoader loader(m, ImageAugment{}, 42);
  EXPECT_EQ(loader.num_samples(), uint64_t(N));
  std::vector<int64_t> seen;
  for (int step = 0; step < 31; ++step) {  // 310 rows: three epochs and one row
    ImageBatch b = loader.next_batch(10);
    ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{10, C, H, W}));
    ASSERT_EQ(b.images.scalar_type(), torch::kFloat32);
    ASSERT_EQ(b.labels.scalar_type(), torch::kInt64);
    for (int64_t l : labels_of(b)) seen.push_back(l);
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> part(seen.begin() + epoch * N, seen.begin() + (epoch + 1) * N);
    EXPECT_EQ(std::set<int64_t>(part.begin(), part.end()).size(), size_t(N)) << epoch;
    auto order = epoch_permutation(N, 42, uint64_t(epoch));
    for (int64_t k = 0; k < N; ++k) ASSERT_EQ(part[size_t(k)], int64_t(order[size_t(k)]));
  }
  EXPECT_EQ(loader.state().epoch, 3u);
  EXPECT_EQ(loader.state().next_sample, 310u - 3 * N);
}

TEST(ImageLoader, PlainImagesAreTheStoredPixelsNormalizedWithTheManifest) {
  ScratchDir dir("img-norm");
  ImageManifest m = make_dataset(dir.path());
  ImageTrainLoader loader(m, ImageAugment::none(), 1);
  ImageBatch b = loader.next_batch(N);
  auto labels = labels_of(b);
  for (int64_t r = 0; r < N; ++r)
    ASSERT_TRUE(torch::allclose(b.images[r], expected_plain(m, labels[size_t(r)]), 1e-5, 1e-5))
        << r;
  ImageEvalLoader eval(m, "train");
  auto e = eval.next_batch(N);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(labels_of(*e)[50], 50);
  EXPECT_TRUE(torch::equal(e->images[50],
                           b.images[std::find(labels.begin(), labels.end(), 50) - labels.begin()]));
}

TEST(ImageLoader, AugmentationDependsOnlyOnSeedEpochAndImage) {
  ScratchDir dir("img-aug");
  ImageManifest m = make_dataset(dir.path());
  ImageTrainLoader a(m, ImageAugment{}, 7), b(m, ImageAugment{}, 7), c(m, ImageAugment{}, 8);
  // Same seed, different batch boundaries: the same 120 rows (crossing into epoch 1).
  std::vector<torch::Tensor> rows_a, rows_b;
  for (int i = 0; i < 10; ++i) rows_a.push_back(a.next_batch(12).images);
  for (int i = 0; i < 15; ++i) rows_b.push_back(b.next_batch(8).images);
  auto all_a = torch::cat(rows_a), all_b = torch::cat(rows_b);
  EXPECT_TRUE(torch::equal(all_a, all_b));
  EXPECT_FALSE(torch::equal(c.next_batch(12).images, all_a.narrow(0, 0, 12)));
  // Augmented rows differ from the stored image, and the same image differs between epochs.
  ImageTrainLoader plain(m, ImageAugment::none(), 7);
  auto p = plain.next_batch(12).images;
  EXPECT_FALSE(torch::allclose(p, all_a.narrow(0, 0, 12)));
  int differ = 0;
  auto order0 = epoch_permutation(N, 7, 0), order1 = epoch_permutation(N, 7, 1);
  for (int64_t k = 0; k < 120 - N; ++k) {  // rows of epoch 1 present in both epochs
    int64_t image = int64_t(order1[size_t(k)]);
    int64_t pos0 = std::find(order0.begin(), order0.end(), uint64_t(image)) - order0.begin();
    differ += !torch::equal(all_a[N + k], all_a[pos0]);
  }
  EXPECT_EQ(differ, 120 - N);
}

TEST(ImageLoader, ResumeMidEpochGivesTheSameNextBatch) {
  ScratchDir dir("img-resume");
  ImageManifest m = make_dataset(dir.path());
  for (int steps : {3, 10, 11}) {  // mid-epoch, just before and after the epoch turns
    ImageTrainLoader full(m, ImageAugment{}, 99);
    for (int i = 0; i < steps; ++i) full.next_batch(10);
    const torch::Tensor saved = full.state().to_tensor();
    ImageBatch want = full.next_batch(10);
    ImageTrainLoader resumed(m, ImageAugment{}, 5);  // the seed comes from the state
    resumed.restore(LoaderState::from_tensor(saved));
    ImageBatch got = resumed.next_batch(10);
    EXPECT_TRUE(torch::equal(got.images, want.images)) << steps;
    EXPECT_TRUE(torch::equal(got.labels, want.labels)) << steps;
    EXPECT_EQ(resumed.state(), full.state());
  }
  ImageTrainLoader loader(m, ImageAugment{}, 1);
  LoaderState bad{0, uint64_t(N), 1};
  EXPECT_NE(error_of([&] { loader.restore(bad); }).find("next_sample beyond"), std::string::npos);
}

TEST(ImageLoader, RankSlicesConcatenateToTheSingleRankBatch) {
  ScratchDir dir("img-ranks");
  ImageManifest m = make_dataset(dir.path());
  ImageTrainLoader one(m, ImageAugment{}, 3), r0(m, ImageAugment{}, 3), r1(m, ImageAugment{}, 3);
  for (int step = 0; step < 12; ++step) {
    ImageBatch whole = one.next_batch(10);
    ImageBatch a = r0.next_batch(10, 0, 2), b = r1.next_batch(10, 1, 2);
    ASSERT_EQ(a.images.size(0), 5);
    EXPECT_TRUE(torch::equal(torch::cat({a.images, b.images}), whole.images)) << step;
    EXPECT_TRUE(torch::equal(torch::cat({a.labels, b.labels}), whole.labels)) << step;
    EXPECT_EQ(r0.state(), one.state());
    EXPECT_EQ(r1.state(), one.state());
  }
  EXPECT_NE(error_of([&] { one.next_batch(9, 0, 2); }).find("does not divide"), std::string::npos);

  // Eval: stream order, a short last batch split between ranks, then the end.
  ImageEvalLoader e0(m), e1(m), e(m);
  EXPECT_EQ(e.num_samples(), 9u);
  std::vector<int64_t> seen;
  while (auto whole = e.next_batch(4)) {
    auto a = e0.next_batch(4, 0, 2), b = e1.next_batch(4, 1, 2);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(torch::equal(torch::cat({a->images, b->images}), whole->images));
    for (int64_t l : labels_of(*whole)) seen.push_back(l);
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_FALSE(e0.next_batch(4, 0, 2).has_value());
  e.reset();
  auto first = e.next_batch(9);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(torch::allclose(first->images[8], expected_plain(m, 8), 1e-5, 1e-5));
}

TEST(ImageLoader, ViewsRespectTheAugmentRanges) {
  ImageAugment aug;
  aug.min_scale = 0.35;
  const ImageShape shape{H, W, C};
  int flips = 0;
  for (uint64_t s = 0; s < 2000; ++s) {
    ImageView v = draw_image_view(aug, shape, 11, s / 1000, s % 1000);
    const double area = v.width * v.height / (H * W), ratio = v.width / v.height;
    ASSERT_GE(area, 0.35 - 1e-9);
    ASSERT_LE(area, 1.0 + 1e-9);
    ASSERT_GE(ratio, 0.75 - 1e-9);
    ASSERT_LE(ratio, 4.0 / 3 + 1e-9);
    ASSERT_GE(v.x0, 0);
    ASSERT_GE(v.y0, 0);
    ASSERT_LE(v.x0 + v.width, W + 1e-9);
    ASSERT_LE(v.y0 + v.height, H + 1e-9);
    flips += v.flip;
  }
  EXPECT_GT(flips, 800);  // about half of 2000
  EXPECT_LT(flips, 1200);
  // Flip only: every row is the stored image or its mirror, and both happen.
  ScratchDir dir("img-flip");
  ImageManifest m = make_dataset(dir.path());
  ImageAugment flip_only = ImageAugment::none();
  flip_only.hflip = true;
  ImageTrainLoader loader(m, flip_only, 2);
  ImageBatch b = loader.next_batch(N);
  auto labels = labels_of(b);
  int mirrored = 0;
  for (int64_t r = 0; r < N; ++r) {
    auto want = expected_plain(m, labels[size_t(r)]);
    bool same = torch::allclose(b.images[r], want, 1e-5, 1e-5);
    bool flipped = torch::allclose(b.images[r], want.flip({2}), 1e-5, 1e-5);
    ASSERT_TRUE(same || flipped) << r;
    mirrored += flipped;
  }
  EXPECT_GT(mirrored, 0);
  EXPECT_LT(mirrored, N);
  // Bad ranges are one-line errors.
  ImageAugment bad;
  bad.min_scale = 0;
  EXPECT_NE(error_of([&] { ImageTrainLoader(m, bad, 1); }).find("min_scale"), std::string::npos);
}

TEST(ImageLoader, ManifestAndShardMismatchesAreErrors) {
  ScratchDir dir("img-bad");
  ImageManifest m = make_dataset(dir.path());
  // A text dataset's manifest is named as such.
  make_dirs(dir / "text");
  herd::test::write_text(dir / "text/manifest.yaml", "format: herd-dataset\nversion: 1\n");
  EXPECT_NE(error_of([&] { load_image_manifest(dir / "text"); }).find("this is a text dataset"),
            std::string::npos);
  // And an image dataset's manifest read as a text one says what it is.
  EXPECT_NE(error_of([&] { herd::data::load_manifest(m.dir); }).find("this is an image dataset"),
            std::string::npos);
  // The manifest claims more images than a shard holds.
  ImageManifest wrong = m;
  wrong.train.shards[1].images = 41;
  ++wrong.train.class_counts[0];
  save_image_manifest(wrong);
  std::string err = error_of([&] { ImageTrainLoader(load_image_manifest(m.dir), {}, 1); });
  EXPECT_NE(err.find("train_000001.bin: 40 images but"), std::string::npos) << err;
  // Class counts that do not add up.
  wrong = m;
  wrong.val.class_counts[0] = 5;
  save_image_manifest(wrong);
  err = error_of([&] { load_image_manifest(m.dir); });
  EXPECT_NE(err.find("splits.val.class_counts"), std::string::npos) << err;
  // A truncated shard.
  save_image_manifest(m);
  std::string bytes = bytes_of(dir / "train_000002.bin");
  put_file(dir / "train_000002.bin", bytes.substr(0, bytes.size() - 4));
  err = error_of([&] { ImageTrainLoader(m, {}, 1); });
  EXPECT_NE(err.find("truncated file"), std::string::npos) << err;
}

}  // namespace
