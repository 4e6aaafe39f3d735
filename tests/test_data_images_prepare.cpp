// herd prepare images: IDX (the real Fashion-MNIST files and small written ones) and folders
// of JPEG/PNG files written here with libjpeg/libpng.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <numeric>

#include "data/file_util.h"
#include "data/image/image_loader.h"
#include "data/image/image_manifest.h"
#include "data/image/prepare_images.h"
#include "fixtures.h"
#include "test_data_util.h"
#include "test_image_util.h"

namespace {

using namespace herd::data;
using namespace herd::data::testing_util;

const std::string kFashion = "/usr/share/datasets/fashion-mnist/";

PrepareImagesOptions fashion_options(const std::string& out) {
  PrepareImagesOptions opt;
  opt.idx_train_images = kFashion + "train-images-idx3-ubyte.gz";
  opt.idx_train_labels = kFashion + "train-labels-idx1-ubyte.gz";
  opt.idx_test_images = kFashion + "t10k-images-idx3-ubyte.gz";
  opt.idx_test_labels = kFashion + "t10k-labels-idx1-ubyte.gz";
  opt.class_names = "fashion-mnist";
  opt.out_dir = out;
  return opt;
}

uint64_t pixel_sum(const uint8_t* p, size_t n) {
  return std::accumulate(p, p + n, uint64_t(0));
}

TEST(ImagesIdx, FashionMnistCountsShapesAndKnownFacts) {
  ScratchDir dir("fmnist");
  ImageManifest written = prepare_images(fashion_options(dir.path()));
  ImageManifest m = load_image_manifest(dir.path());
  EXPECT_EQ(image_manifest_to_yaml(m), image_manifest_to_yaml(written));
  EXPECT_EQ(m.shape, (ImageShape{28, 28, 1}));
  EXPECT_EQ(m.train.images(), 60000u);
  EXPECT_EQ(m.val.images(), 10000u);
  EXPECT_EQ(m.train.shards.size(), 6u);  // 10000 per shard by default
  EXPECT_EQ(m.val.shards.size(), 1u);
  EXPECT_EQ(m.class_names, fashion_mnist_class_names());
  EXPECT_EQ(m.class_names[9], "Ankle boot");
  // Facts read from the files themselves (gzip + struct in Python): 6000 / 1000 per class,
  // the first labels, the pixel sums of the first images, the mean/std of all train pixels.
  EXPECT_EQ(m.train.class_counts, std::vector<uint64_t>(10, 6000));
  EXPECT_EQ(m.val.class_counts, std::vector<uint64_t>(10, 1000));
  EXPECT_EQ(m.train.skipped + m.val.skipped, 0u);
  EXPECT_NEAR(m.mean[0], 0.2860406, 1e-6);
  EXPECT_NEAR(m.std[0], 0.3530242, 1e-6);
  ImageSource train(m, "train"), val(m, "val");
  const std::vector<int32_t> first_train = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
  const std::vector<int32_t> first_val = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
  for (size_t i = 0; i < first_train.size(); ++i) {
    EXPECT_EQ(train.label(i), first_train[i]) << i;
    EXPECT_EQ(val.label(i), first_val[i]) << i;
  }
  EXPECT_EQ(pixel_sum(train.image(0), 784), 76247u);
  EXPECT_EQ(pixel_sum(val.image(0), 784), 33456u);
  // Row 14 of train image 0, as stored in the file.
  const std::vector<uint8_t> row14 = {0,   0,   1,   4,   6,   7,   2,   0,   0,   0,
                                      0,   0,   237, 226, 217, 223, 222, 219, 222, 221,
                                      216, 223, 229, 215, 218, 255, 77,  0};
  EXPECT_EQ(std::vector<uint8_t>(train.image(0) + 14 * 28, train.image(0) + 15 * 28), row14);
  // The last image of the last shard is reachable and labelled in range.
  EXPECT_LT(train.label(59999), 10);
}

TEST(ImagesIdx, SmallFilesResizeExpandChannelsAndNameClasses) {
  ScratchDir dir("idx-small");
  // 5 images of 4x4: image i is uniformly 40*i; labels 0,1,2,1,0. Plain (not gzip) labels.
  std::vector<uint8_t> pixels, labels = {0, 1, 2, 1, 0};
  for (int i = 0; i < 5; ++i) pixels.insert(pixels.end(), 16, static_cast<uint8_t>(40 * i));
  write_idx(dir / "img.gz", {5, 4, 4}, pixels);
  write_idx(dir / "lab", {5}, labels, false);
  PrepareImagesOptions opt;
  opt.idx_train_images = dir / "img.gz";
  opt.idx_train_labels = dir / "lab";
  opt.class_names = "cat,dog,bird";
  opt.size = 8;
  opt.channels = 3;
  opt.shard_images = 2;
  opt.out_dir = dir / "out";
  ImageManifest m = prepare_images(opt);
  EXPECT_EQ(m.shape, (ImageShape{8, 8, 3}));
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(m.train.class_counts, (std::vector<uint64_t>{2, 2, 1}));
  ASSERT_EQ(m.train.shards.size(), 3u);  // 2 + 2 + 1
  EXPECT_EQ(m.train.shards[2].images, 1u);
  EXPECT_EQ(m.val.images(), 0u);
  ImageSource src(load_image_manifest(m.dir), "train");
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(src.label(i), labels[i]);
    for (uint64_t p = 0; p < 8 * 8 * 3; ++p) ASSERT_EQ(src.image(i)[p], 40 * i) << i << " " << p;
  }
  // Mean of 0, 40, 80, 120, 160 (equal areas) / 255.
  EXPECT_NEAR(m.mean[1], 80.0 / 255, 1e-12);
  // Without names, classes are the label numbers; too few names is an error.
  opt.class_names = "";
  EXPECT_EQ(prepare_images(opt).class_names, (std::vector<std::string>{"0", "1", "2"}));
  opt.class_names = "cat,dog";
  EXPECT_NE(error_of([&] { prepare_images(opt); }).find("labels go up to 2"), std::string::npos);
}

TEST(ImagesIdx, MissingOrInvalidFilesAreOneLineErrors) {
  ScratchDir dir("idx-bad");
  std::string out;
  EXPECT_NE(herd::test::run_herd("prepare images --idx-train-images " + (dir / "nope.gz") +
                                     " --idx-train-labels " + kFashion +
                                     "train-labels-idx1-ubyte.gz --out " + (dir / "o"),
                                 &out),
            0);
  EXPECT_NE(out.find(dir / "nope.gz"), std::string::npos) << out;
  EXPECT_NE(out.find("expected IDX images"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;

  // Labels given as images: the magic names the expected form.
  PrepareImagesOptions opt = fashion_options(dir / "o");
  opt.idx_train_images = opt.idx_train_labels;
  std::string err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find("IDX magic 0x00000801 (expected 0x00000803"), std::string::npos) << err;
  // Images and labels from different splits: the counts disagree.
  opt = fashion_options(dir / "o");
  opt.idx_train_labels = opt.idx_test_labels;
  err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find("10000 labels but"), std::string::npos) << err;
  // A truncated gzip stream.
  std::string gz = bytes_of(kFashion + "t10k-labels-idx1-ubyte.gz");
  put_file(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  opt = fashion_options(dir / "o");
  opt.idx_test_labels = dir / "cut.gz";
  err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find(dir / "cut.gz"), std::string::npos) << err;
  EXPECT_FALSE(is_regular_file(dir / "o/manifest.yaml"));
}

// ROOT/train/{blue,gray,red}/ and ROOT/val/{blue,red}/ with JPEG, PNG, grayscale, RGBA and
// CMYK files of several sizes and aspect ratios.
std::string make_folder(const ScratchDir& dir) {
  const std::string root = dir / "root";
  for (const char* d : {"train/blue", "train/gray", "train/red", "val/blue", "val/red"})
    make_dirs(join_path(root, d));
  write_jpeg(root + "/train/red/a.jpg", solid_image(40, 30, {200, 30, 20}));
  write_png(root + "/train/red/b.PNG", solid_image(17, 50, {200, 30, 20}));
  // Adobe CMYK stores inverted inks; R = C*K/255 etc. gives about (200, 30, 20).
  write_jpeg(root + "/train/red/c.jpeg", solid_image(24, 24, {255, 38, 26, 200}));
  write_jpeg(root + "/train/blue/a.jpg", solid_image(64, 48, {20, 40, 210}));
  write_png(root + "/train/blue/b.png", solid_image(9, 9, {20, 40, 210, 255}));  // RGBA, opaque
  write_jpeg(root + "/train/gray/a.jpg", solid_image(30, 30, {128}));            // 1-channel
  write_png(root + "/train/gray/b.png", solid_image(12, 20, {128, 255}));        // gray+alpha
  write_jpeg(root + "/val/red/a.jpg", solid_image(33, 35, {200, 30, 20}));
  write_png(root + "/val/blue/a.png", solid_image(16, 16, {20, 40, 210}));
  herd::test::write_text(root + "/train/red/notes.txt", "not an image\n");
  herd::test::write_text(root + "/train/.DS_Store", "x");
  return root;
}

void expect_color(const uint8_t* p, int64_t pixels, const std::vector<int>& rgb, int tolerance) {
  for (int64_t i = 0; i < pixels; ++i)
    for (int c = 0; c < 3; ++c) ASSERT_NEAR(p[3 * i + c], rgb[c], tolerance) << i << " " << c;
}

TEST(ImagesFolder, ClassesLabelsShapesAndColoursSurvive) {
  ScratchDir dir("folder");
  PrepareImagesOptions opt;
  opt.folder = make_folder(dir);
  opt.size = 16;
  opt.out_dir = dir / "out";
  prepare_images(opt);
  ImageManifest m = load_image_manifest(opt.out_dir);
  EXPECT_EQ(m.shape, (ImageShape{16, 16, 3}));
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"blue", "gray", "red"}));
  EXPECT_EQ(m.train.class_counts, (std::vector<uint64_t>{2, 2, 3}));
  EXPECT_EQ(m.val.class_counts, (std::vector<uint64_t>{1, 0, 1}));
  EXPECT_EQ(m.train.skipped + m.val.skipped, 0u);
  EXPECT_EQ(m.source_kind, "folder");
  const std::vector<std::vector<int>> colour = {{20, 40, 210}, {128, 128, 128}, {200, 30, 20}};
  ImageSource train(m, "train"), val(m, "val");
  // Stored class by class, files in name order.
  const std::vector<int32_t> labels = {0, 0, 1, 1, 2, 2, 2};
  for (uint64_t i = 0; i < train.size(); ++i) {
    ASSERT_EQ(train.label(i), labels[i]);
    expect_color(train.image(i), 256, colour[size_t(labels[i])], 6);
  }
  ASSERT_EQ(val.size(), 2u);
  expect_color(val.image(0), 256, colour[0], 6);
  expect_color(val.image(1), 256, colour[2], 6);
  // The manifest's mean is that of the train pixels (channel 0: 2 blue, 2 gray, 3 red).
  EXPECT_NEAR(m.mean[0], (2 * 20 + 2 * 128 + 3 * 200) / 7.0 / 255, 3.0 / 255);
  EXPECT_GT(m.std[0], 0.2);
}

TEST(ImagesFolder, CorruptFilesAreReportedCountedAndSkipped) {
  ScratchDir dir("corrupt");
  const std::string root = make_folder(dir);
  write_jpeg(dir / "noise.jpg", noise_image(64, 64, 3, 1));
  write_png(dir / "noise.png", noise_image(32, 32, 3, 2));
  std::string jpeg = bytes_of(dir / "noise.jpg");
  put_file(root + "/train/red/truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  put_file(root + "/train/blue/garbage.jpg", "this is not a JPEG at all");
  // An end-of-image marker inside the scan: libjpeg would pad the rest grey and carry on.
  std::string marked = jpeg;
  marked.replace(marked.size() * 3 / 4, 2, "\xFF\xD9");
  put_file(root + "/train/gray/marker.jpg", marked);
  put_file(root + "/val/red/empty.png", "");
  std::string png = bytes_of(dir / "noise.png");
  put_file(root + "/val/blue/truncated.png", png.substr(0, png.size() / 2));
  std::string out;
  ASSERT_EQ(herd::test::run_herd("prepare images --folder " + root + " --size 8 --out " +
                                     (dir / "out") + " --shard-images 4",
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("skipped 5 of 14 files"), std::string::npos) << out;
  EXPECT_NE(out.find("truncated.jpg: JPEG: Premature end of JPEG file"), std::string::npos) << out;
  EXPECT_NE(out.find("garbage.jpg: not a JPEG or PNG file"), std::string::npos) << out;
  EXPECT_NE(out.find("empty.png: empty file"), std::string::npos) << out;
  EXPECT_NE(out.find("truncated.png: PNG:"), std::string::npos) << out;
  EXPECT_NE(out.find("images/s"), std::string::npos) << out;
  ImageManifest m = load_image_manifest(dir / "out");
  EXPECT_NE(out.find("marker.jpg: JPEG: Corrupt JPEG data"), std::string::npos) << out;
  EXPECT_EQ(m.train.skipped, 3u);
  EXPECT_EQ(m.val.skipped, 2u);
  EXPECT_EQ(m.train.images(), 7u);
  EXPECT_EQ(m.val.images(), 2u);
  EXPECT_EQ(m.train.shards.size(), 2u);  // 4 + 3

  // --max-warnings caps the per-file lines, not the count.
  ASSERT_EQ(herd::test::run_herd("prepare images --folder " + root + " --size 8 --out " +
                                     (dir / "out") + " --max-warnings 1",
                                 &out),
            0);
  EXPECT_NE(out.find("counted but not listed"), std::string::npos) << out;
  EXPECT_NE(out.find("garbage.jpg"), std::string::npos) << out;  // the first, in input order
  EXPECT_EQ(out.find("truncated.jpg"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped 5 of 14 files"), std::string::npos) << out;
  // The second run wrote one train shard: the stale second one is gone.
  EXPECT_FALSE(is_regular_file(dir / "out/train_000001.bin"));
}

TEST(ImagesFolder, SameInputsSameBytesWhateverTheThreadCount) {
  ScratchDir dir("determinism");
  PrepareImagesOptions opt;
  opt.folder = make_folder(dir);
  opt.size = 12;
  opt.shard_images = 3;
  opt.out_dir = dir / "a";
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  ImageManifest a = prepare_images(opt);
  at::set_num_threads(std::max(2, threads));
  opt.out_dir = dir / "b";
  prepare_images(opt);
  at::set_num_threads(threads);
  std::vector<std::string> files = list_dir(dir / "a");
  EXPECT_EQ(files, list_dir(dir / "b"));
  EXPECT_EQ(files.size(), 5u);  // 3 train shards, 1 val shard, manifest
  for (const auto& f : files)
    EXPECT_EQ(bytes_of(join_path(dir / "a", f)), bytes_of(join_path(dir / "b", f))) << f;
}

TEST(ImagesFolder, LayoutAndFlagErrors) {
  ScratchDir dir("layout");
  const std::string root = make_folder(dir);
  PrepareImagesOptions opt;
  opt.folder = root;
  opt.out_dir = dir / "out";
  EXPECT_NE(error_of([&] { prepare_images(opt); }).find("--size: required"), std::string::npos);
  opt.size = 8;
  make_dirs(root + "/val/green");
  std::string err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find("val/green: class folder not present in the train split"), std::string::npos)
      << err;
  opt.folder = dir / "nothing";
  err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find("--folder is not a directory"), std::string::npos) << err;
  opt.idx_train_images = kFashion + "train-images-idx3-ubyte.gz";
  err = error_of([&] { prepare_images(opt); });
  EXPECT_NE(err.find("not both"), std::string::npos) << err;
  std::string out;
  EXPECT_NE(
      herd::test::run_herd(
          "prepare images --folder " + root + " --size 8 --channels 2 --out " + (dir / "o"), &out),
      0);
  EXPECT_NE(out.find("--channels: got 2 (expected 1 or 3)"), std::string::npos) << out;
}

TEST(ImageCodec, ResamplerCopiesAveragesAndInterpolates) {
  // Identity: a box of the whole image at the same size copies exactly.
  Image im{3, 4, 1, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 255}};
  std::vector<float> out(12);
  resample_box(im.pixels.data(), 3, 4, 1, 0, 0, 4, 3, 4, 3, out.data());
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(out[i], im.pixels[i]);
  // Halving: a triangle of radius 2 source pixels, weights 1/8, 3/8, 3/8, 1/8 (edge held).
  Image blocks{4, 4, 1, {0, 0, 100, 100, 0, 0, 100, 100, 200, 200, 50, 50, 200, 200, 50, 50}};
  std::vector<float> half(4);
  resample_box(blocks.pixels.data(), 4, 4, 1, 0, 0, 4, 4, 2, 2, half.data());
  const std::vector<float> expected_half = {33.59375f, 85.15625f, 160.15625f, 71.09375f};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(half[i], expected_half[i], 1e-4) << i;
  // Shrinking a fine checkerboard 16x averages it instead of aliasing to 0 or 255.
  Image checker{64, 64, 1, std::vector<uint8_t>(64 * 64)};
  for (int64_t i = 0; i < 64 * 64; ++i) checker.pixels[size_t(i)] = ((i / 64 + i % 64) % 2) * 255;
  Image small = resize_center_crop(checker, 4);
  for (uint8_t v : small.pixels) EXPECT_NEAR(v, 127.5, 3.0);
  // Enlarging 1x2 -> 1x4 is bilinear with edges held: 0, 25, 75, 100.
  Image pair{1, 2, 1, {0, 100}};
  std::vector<float> wide(4);
  resample_box(pair.pixels.data(), 1, 2, 1, 0, 0, 2, 1, 4, 1, wide.data());
  EXPECT_FLOAT_EQ(wide[0], 0);
  EXPECT_FLOAT_EQ(wide[1], 25);
  EXPECT_FLOAT_EQ(wide[2], 75);
  EXPECT_FLOAT_EQ(wide[3], 100);
  // Centre crop of a wide image keeps its middle: the 10x10 box from x = 10, and the
  // filter's reach of 2 source pixels beyond it (x in [8, 22) is 200, the rest 0).
  Image wide3 = solid_image(10, 30, {0});
  for (int64_t y = 0; y < 10; ++y)
    for (int64_t x = 8; x < 22; ++x) wide3.pixels[size_t(y * 30 + x)] = 200;
  Image sq = resize_center_crop(wide3, 5);
  EXPECT_EQ(sq.pixels, std::vector<uint8_t>(25, 200));
  // Channel conversions.
  Image rgb = solid_image(1, 1, {255, 0, 0});
  convert_channels(&rgb, 1);
  EXPECT_EQ(rgb.pixels, std::vector<uint8_t>{76});  // 0.299 * 255
  convert_channels(&rgb, 3);
  EXPECT_EQ(rgb.pixels, (std::vector<uint8_t>{76, 76, 76}));
}

}  // namespace
