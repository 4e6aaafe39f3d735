#include "data/image/prepare_images.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <regex>

#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"
#include "data/image/idx.h"
#include "data/image/image_codec.h"

namespace herd::data {
namespace {

using Clock = std::chrono::steady_clock;

std::string shard_file(const char* split, size_t index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s_%06zu.bin", split, index);
  return name;
}

// One decoded, resized input: pixels of the dataset shape, or the reason it was skipped.
struct Decoded {
  std::vector<uint8_t> pixels;
  std::string error;  // non-empty: skipped
};

// Fills consecutive shards of one split, counts classes and sums pixel moments (for train).
class SplitWriter {
 public:
  SplitWriter(const char* split, ImageManifest* m, ImageSplit* s, uint64_t shard_images)
      : split_(split), m_(m), s_(s), shard_images_(shard_images) {
    s_->class_counts.assign(static_cast<size_t>(m->num_classes()), 0);
    sum_.assign(static_cast<size_t>(m->shape.channels), 0);
    sum_sq_.assign(static_cast<size_t>(m->shape.channels), 0);
  }

  void append(const uint8_t* pixels, int32_t label) {
    if (!writer_)
      writer_ = std::make_unique<ImageShardWriter>(
          m_->shard_path(ImageShardEntry{shard_file(split_, s_->shards.size()), 0}), m_->shape);
    writer_->append(pixels, label);
    ++s_->class_counts[static_cast<size_t>(label)];
    const size_t C = sum_.size(), n = m_->shape.pixels();
    for (size_t i = 0; i < n; ++i) {
      sum_[i % C] += pixels[i];
      sum_sq_[i % C] += uint64_t(pixels[i]) * pixels[i];
    }
    if (writer_->images() == shard_images_) close();
  }

  void close() {
    if (!writer_) return;
    writer_->finish();
    s_->shards.push_back(ImageShardEntry{base_name(writer_->path()), writer_->images()});
    writer_.reset();
  }

  // Mean and (population) std per channel over every pixel appended, in pixel / 255 units.
  void moments(std::vector<double>* mean, std::vector<double>* std) const {
    const double n = static_cast<double>(s_->images()) *
                     static_cast<double>(m_->shape.height * m_->shape.width) * 255.0;
    for (size_t c = 0; c < sum_.size(); ++c) {
      const double mu = static_cast<double>(sum_[c]) / n;
      const double ex2 = static_cast<double>(sum_sq_[c]) / (n * 255.0);
      mean->push_back(mu);
      // A constant channel would divide by zero in the loaders; 1 leaves it centred only.
      const double var = ex2 - mu * mu;
      std->push_back(var > 1e-12 ? std::sqrt(var) : 1.0);
    }
  }

 private:
  const char* split_;
  ImageManifest* m_;
  ImageSplit* s_;
  uint64_t shard_images_;
  std::unique_ptr<ImageShardWriter> writer_;
  std::vector<uint64_t> sum_, sum_sq_;  // exact integers: the same sums on every machine
};

// Decodes items in parallel chunks and appends them in input order (so the output does not
// depend on the thread count), reporting skipped items and progress.
class Pipeline {
 public:
  Pipeline(const PrepareImagesOptions& opt, uint64_t total) : opt_(opt), total_(total) {}

  // decode(i) -> Decoded for items [0, n); name(i) names item i in warnings.
  void run(const char* split, uint64_t n, const std::function<Decoded(uint64_t)>& decode,
           const std::function<std::string(uint64_t)>& name,
           const std::function<int32_t(uint64_t)>& label, SplitWriter* writer, ImageSplit* s) {
    const uint64_t chunk = 1024;
    std::vector<Decoded> out(chunk);
    for (uint64_t begin = 0; begin < n; begin += chunk) {
      const uint64_t end = std::min(n, begin + chunk);
      at::parallel_for(int64_t(begin), int64_t(end), 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          Decoded& d = out[static_cast<size_t>(i) - begin];
          try {
            d = decode(static_cast<uint64_t>(i));
          } catch (const std::exception& e) {  // unreadable file, out of memory
            d = Decoded{{}, e.what()};
          }
        }
      });
      for (uint64_t i = begin; i < end; ++i) {
        Decoded& d = out[i - begin];
        if (!d.error.empty()) {
          ++s->skipped;
          if (++skipped_ <= uint64_t(opt_.max_warnings))
            log::warn("prepare images: skipped ", name(i), ": ", d.error);
          else if (skipped_ == uint64_t(opt_.max_warnings) + 1)
            log::warn("prepare images: more skipped files are counted but not listed");
        } else {
          writer->append(d.pixels.data(), label(i));
        }
        d = Decoded{};
      }
      done_ += end - begin;
      if (Clock::now() - last_log_ > std::chrono::seconds(5)) {
        last_log_ = Clock::now();
        log::info("prepare images: ", split, " ", done_, "/", total_, " inputs, ", rate(),
                  " images/s, ", skipped_, " skipped");
      }
    }
    writer->close();
  }

  uint64_t rate() const {
    double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    return secs > 0 ? static_cast<uint64_t>(static_cast<double>(done_) / secs) : 0;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  uint64_t skipped() const { return skipped_; }

 private:
  const PrepareImagesOptions& opt_;
  uint64_t total_;
  uint64_t done_ = 0, skipped_ = 0;
  Clock::time_point start_ = Clock::now(), last_log_ = Clock::now();
};

std::vector<std::string> split_names(const std::string& list) {
  if (list == "fashion-mnist") return fashion_mnist_class_names();
  std::vector<std::string> names;
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    names.push_back(list.substr(start, comma - start));
    HERD_CHECK(!names.back().empty(), "--class-names \"", list,
               "\": empty name (expected a,b,c or fashion-mnist)");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return names;
}

bool is_image_name(const std::string& name) {
  size_t dot = name.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

struct FolderItem {
  std::string path;
  int32_t label;
};

// The image files of ROOT/SPLIT/<class>/, classes in `classes` order, files sorted by name.
std::vector<FolderItem> list_folder_split(const std::string& split_dir,
                                          const std::vector<std::string>& classes,
                                          uint64_t* ignored) {
  std::vector<FolderItem> items;
  for (const auto& entry : list_dir(split_dir)) {
    if (entry[0] == '.') continue;
    const std::string path = join_path(split_dir, entry);
    if (!is_directory(path)) {
      ++*ignored;
      continue;
    }
    HERD_CHECK(std::find(classes.begin(), classes.end(), entry) != classes.end(), path,
               ": class folder not present in the train split (expected the same class folders)");
  }
  for (size_t c = 0; c < classes.size(); ++c) {
    const std::string dir = join_path(split_dir, classes[c]);
    if (!is_directory(dir)) continue;
    for (const auto& name : list_dir(dir)) {
      if (name[0] == '.') continue;
      const std::string path = join_path(dir, name);
      if (is_image_name(name) && is_regular_file(path))
        items.push_back(FolderItem{path, static_cast<int32_t>(c)});
      else
        ++*ignored;
    }
  }
  return items;
}

void prepare_out_dir(const std::string& dir) {
  HERD_CHECK(!dir.empty(), "--out: empty path (expected a directory to write shards into)");
  make_dirs(dir);
  HERD_CHECK(::access(dir.c_str(), W_OK) == 0, dir, ": output directory is not writable");
}

void remove_stale_shards(const ImageManifest& m) {
  static const std::regex pattern("(train|val)_[0-9]{6}\\.bin");
  std::vector<std::string> keep;
  for (const auto* s : {&m.train, &m.val})
    for (const auto& e : s->shards) keep.push_back(e.file);
  for (const auto& name : list_dir(m.dir)) {
    if (!std::regex_match(name, pattern)) continue;
    if (std::find(keep.begin(), keep.end(), name) != keep.end()) continue;
    if (::unlink(join_path(m.dir, name).c_str()) != 0)
      log::warn("prepare images: could not remove stale shard ", join_path(m.dir, name));
  }
}

Decoded finish_image(Image image, const ImageManifest& m, int64_t size) {
  convert_channels(&image, m.shape.channels);
  if (size > 0 && (image.height != size || image.width != size))
    image = resize_center_crop(image, size);
  return Decoded{std::move(image.pixels), {}};
}

void prepare_folder(const PrepareImagesOptions& opt, ImageManifest* m) {
  const std::string train_dir = join_path(opt.folder, "train");
  const std::string val_dir = join_path(opt.folder, "val");
  HERD_CHECK(is_directory(opt.folder), opt.folder,
             ": --folder is not a directory (expected ROOT with train/<class>/*.jpg)");
  HERD_CHECK(is_directory(train_dir), train_dir,
             ": missing (expected --folder ROOT holding train/<class>/ and optionally val/)");
  for (const auto& entry : list_dir(train_dir))
    if (entry[0] != '.' && is_directory(join_path(train_dir, entry)))
      m->class_names.push_back(entry);
  HERD_CHECK(!m->class_names.empty(), train_dir,
             ": no class folders (expected train/<class>/*.jpg)");
  uint64_t ignored = 0;
  auto train = list_folder_split(train_dir, m->class_names, &ignored);
  std::vector<FolderItem> val;
  if (is_directory(val_dir))
    val = list_folder_split(val_dir, m->class_names, &ignored);
  else
    log::warn("prepare images: ", val_dir, " does not exist; the val split will be empty");
  if (ignored > 0)
    log::info("prepare images: ignored ", ignored,
              " entries that are not .jpg/.jpeg/.png files inside class folders");
  HERD_CHECK(!train.empty(), train_dir, ": no .jpg/.jpeg/.png files in the class folders");
  log::info("prepare images: ", m->class_names.size(), " classes, ", train.size(), " train and ",
            val.size(), " val files under ", opt.folder);
  Pipeline pipeline(opt, train.size() + val.size());
  for (int k = 0; k < 2; ++k) {
    const char* split = k == 0 ? "train" : "val";
    const std::vector<FolderItem>* items = k == 0 ? &train : &val;
    ImageSplit* s = k == 0 ? &m->train : &m->val;
    SplitWriter writer(split, m, s, opt.shard_images);
    pipeline.run(
        split, items->size(),
        [&](uint64_t i) {
          Image image;
          std::string error;
          if (!decode_image(read_file((*items)[i].path, "image"), opt.size, &image, &error))
            return Decoded{{}, error};
          return finish_image(std::move(image), *m, opt.size);
        },
        [&](uint64_t i) { return (*items)[i].path; }, [&](uint64_t i) { return (*items)[i].label; },
        &writer, s);
    if (k == 0) writer.moments(&m->mean, &m->std);
  }
  if (pipeline.skipped() > 0)
    log::warn("prepare images: skipped ", pipeline.skipped(), " of ", train.size() + val.size(),
              " files that could not be decoded (", m->train.skipped, " train, ", m->val.skipped,
              " val)");
}

void prepare_idx(const PrepareImagesOptions& opt, ImageManifest* m) {
  struct Pair {
    IdxImages images;
    std::vector<uint8_t> labels;
  };
  auto load = [](const std::string& images_path, const std::string& labels_path) {
    Pair p{read_idx_images(images_path), read_idx_labels(labels_path)};
    HERD_CHECK(uint64_t(p.images.count) == p.labels.size(), labels_path, ": ", p.labels.size(),
               " labels but ", images_path, " holds ", p.images.count,
               " images (expected one label per image)");
    return p;
  };
  std::vector<Pair> splits;
  splits.push_back(load(opt.idx_train_images, opt.idx_train_labels));
  if (!opt.idx_test_images.empty())
    splits.push_back(load(opt.idx_test_images, opt.idx_test_labels));
  HERD_CHECK(splits[0].images.count > 0, opt.idx_train_images, ": no images");
  if (splits.size() == 2)
    HERD_CHECK(splits[1].images.rows == splits[0].images.rows &&
                   splits[1].images.cols == splits[0].images.cols,
               opt.idx_test_images, ": images of ", splits[1].images.rows, "x",
               splits[1].images.cols, " but the train images are ", splits[0].images.rows, "x",
               splits[0].images.cols);
  int max_label = 0;
  for (const auto& p : splits)
    for (uint8_t l : p.labels) max_label = std::max<int>(max_label, l);
  if (opt.class_names.empty()) {
    for (int c = 0; c <= max_label; ++c) m->class_names.push_back(std::to_string(c));
  } else {
    m->class_names = split_names(opt.class_names);
    HERD_CHECK(max_label < m->num_classes(), "--class-names: ", m->num_classes(),
               " names but the IDX labels go up to ", max_label,
               " (expected a name for every label)");
  }
  if (opt.size == 0) {
    m->shape.height = splits[0].images.rows;
    m->shape.width = splits[0].images.cols;
  }
  const int64_t plane = splits[0].images.rows * splits[0].images.cols;
  Pipeline pipeline(opt,
                    splits[0].labels.size() + (splits.size() > 1 ? splits[1].labels.size() : 0));
  for (size_t k = 0; k < splits.size(); ++k) {
    const Pair& p = splits[k];
    const std::string& path = k == 0 ? opt.idx_train_images : opt.idx_test_images;
    ImageSplit* s = k == 0 ? &m->train : &m->val;
    const char* split = k == 0 ? "train" : "val";
    SplitWriter writer(split, m, s, opt.shard_images);
    pipeline.run(
        split, p.labels.size(),
        [&](uint64_t i) {
          Image image{p.images.rows, p.images.cols, 1, {}};
          const uint8_t* src = p.images.pixels.data() + i * uint64_t(plane);
          image.pixels.assign(src, src + plane);
          return finish_image(std::move(image), *m, opt.size);
        },
        [&](uint64_t i) { return str(path, " image ", i); },
        [&](uint64_t i) { return int32_t(p.labels[i]); }, &writer, s);
    if (k == 0) writer.moments(&m->mean, &m->std);
  }
  if (splits.size() == 1) m->val.class_counts.assign(size_t(m->num_classes()), 0);
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

ImageManifest prepare_images(const PrepareImagesOptions& opt) {
  const bool idx = !opt.idx_train_images.empty() || !opt.idx_train_labels.empty() ||
                   !opt.idx_test_images.empty() || !opt.idx_test_labels.empty();
  HERD_CHECK(idx != !opt.folder.empty(),
             "prepare images: expected either --folder ROOT or --idx-train-images/"
             "--idx-train-labels (not both, not neither)");
  if (idx) {
    HERD_CHECK(!opt.idx_train_images.empty() && !opt.idx_train_labels.empty(),
               "prepare images: IDX input needs both --idx-train-images and --idx-train-labels");
    HERD_CHECK(opt.idx_test_images.empty() == opt.idx_test_labels.empty(),
               "prepare images: give both --idx-test-images and --idx-test-labels, or neither");
  } else {
    HERD_CHECK(opt.size > 0,
               "--size: required with --folder (expected the square side in "
               "pixels, e.g. --size 64)");
    HERD_CHECK(opt.class_names.empty(),
               "--class-names: only for IDX input (folder inputs name classes by directory)");
  }
  HERD_CHECK(opt.size >= 0 && opt.size <= 4096, "--size: got ", opt.size,
             " (expected 1..4096, or 0 for the native IDX size)");
  HERD_CHECK(opt.channels == 0 || opt.channels == 1 || opt.channels == 3, "--channels: got ",
             opt.channels, " (expected 1 or 3)");
  HERD_CHECK(opt.shard_images >= 1 && opt.shard_images <= kImageShardMaxImages,
             "--shard-images: got ", opt.shard_images, " (expected 1..", kImageShardMaxImages, ")");
  HERD_CHECK(opt.max_warnings >= 0, "--max-warnings: got ", opt.max_warnings,
             " (expected 0 or more)");
  prepare_out_dir(opt.out_dir);

  ImageManifest m;
  m.dir = opt.out_dir;
  m.source_kind = idx ? "idx" : "folder";
  m.size = opt.size;
  m.shape = ImageShape{opt.size, opt.size, opt.channels != 0 ? opt.channels : idx ? 1 : 3};
  if (idx) {
    m.inputs = {opt.idx_train_images, opt.idx_train_labels};
    if (!opt.idx_test_images.empty()) {
      m.inputs.push_back(opt.idx_test_images);
      m.inputs.push_back(opt.idx_test_labels);
    }
  } else {
    m.inputs = {opt.folder};
  }
  // The old manifest goes first: a crash part-way must not leave it describing new shards.
  ::unlink(m.manifest_path().c_str());
  const auto start = Clock::now();
  if (idx)
    prepare_idx(opt, &m);
  else
    prepare_folder(opt, &m);
  HERD_CHECK(m.train.images() > 0, "prepare images: no train image could be decoded (",
             m.train.skipped, " skipped)");
  remove_stale_shards(m);
  save_image_manifest(m);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const uint64_t total = m.train.images() + m.val.images() + m.train.skipped + m.val.skipped;
  log::info("prepare images: done: train ", m.train.images(), " images in ", m.train.shards.size(),
            " shards, val ", m.val.images(), " in ", m.val.shards.size(), ", ", m.shape.height, "x",
            m.shape.width, "x", m.shape.channels, ", ", m.num_classes(), " classes; skipped ",
            m.train.skipped + m.val.skipped, " (", m.train.skipped, " train, ", m.val.skipped,
            " val); ", total, " inputs in ", secs, " s (",
            static_cast<uint64_t>(secs > 0 ? total / secs : 0), " images/s) -> ",
            m.manifest_path());
  return m;
}

}  // namespace herd::data
