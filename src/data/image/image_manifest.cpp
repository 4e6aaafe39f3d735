#include "data/image/image_manifest.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "config/node.h"
#include "core/error.h"
#include "data/file_util.h"
#include "data/manifest_file.h"
#include "data/text/manifest.h"

namespace herd::data {
namespace {

void emit_doubles(YAML::Emitter& out, const char* key, const std::vector<double>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (double v : values) out << shortest_double(v);
  out << YAML::EndSeq;
}

void emit_split(YAML::Emitter& out, const char* key, const ImageSplit& s) {
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "images" << YAML::Value << s.images();
  out << YAML::Key << "skipped" << YAML::Value << s.skipped;
  out << YAML::Key << "class_counts" << YAML::Value << YAML::Flow << s.class_counts;
  out << YAML::Key << "shards" << YAML::Value << YAML::BeginSeq;
  for (const auto& e : s.shards)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "file" << YAML::Value << e.file << YAML::Key
        << "images" << YAML::Value << e.images << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
}

std::vector<double> read_doubles(cfg::ConfigMap& map, const std::string& key, size_t n,
                                 bool positive) {
  std::vector<double> out;
  for (const auto& text : map.get_string_list(key, {})) {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || (positive && v <= 0))
      map.fail(key, str("item \"", text, "\" (expected a ", positive ? "positive " : "",
                        "number per channel)"));
    out.push_back(v);
  }
  if (out.size() != n)
    map.fail(key, str(out.size(), " values (expected one per channel: ", n, ")"));
  return out;
}

ImageSplit read_split(cfg::ConfigMap& parent, const std::string& key, int64_t num_classes) {
  auto map = parent.child(key);
  ImageSplit s;
  int64_t images = map.require_int("images", 0);
  s.skipped = static_cast<uint64_t>(map.get_int("skipped", 0, 0));
  for (int64_t c : map.get_int_list("class_counts", {})) {
    if (c < 0) map.fail("class_counts", str("negative count ", c));
    s.class_counts.push_back(static_cast<uint64_t>(c));
  }
  if (static_cast<int64_t>(s.class_counts.size()) != num_classes)
    map.fail("class_counts",
             str(s.class_counts.size(), " counts (expected num_classes = ", num_classes, ")"));
  for (auto& entry : map.child_list("shards")) {
    ImageShardEntry e;
    e.file = entry.require_string("file");
    if (e.file.empty() || e.file.find('/') != std::string::npos || e.file == "." || e.file == "..")
      entry.fail("file", str("\"", e.file, "\" (expected a file name inside the dataset dir)"));
    e.images = static_cast<uint64_t>(entry.require_int("images", 1, kImageShardMaxImages));
    entry.finish();
    s.shards.push_back(std::move(e));
  }
  if (static_cast<uint64_t>(images) != s.images())
    map.fail("images", str(images, " but the shards list ", s.images()));
  uint64_t counted = 0;
  for (uint64_t c : s.class_counts) counted += c;
  if (counted != s.images())
    map.fail("class_counts", str("sum to ", counted, " but the split has ", s.images(), " images"));
  map.finish();
  return s;
}

}  // namespace

uint64_t ImageSplit::images() const {
  uint64_t total = 0;
  for (const auto& e : shards) total += e.images;
  return total;
}

std::string ImageManifest::manifest_path() const {
  return join_path(dir, "manifest.yaml");
}

std::string ImageManifest::shard_path(const ImageShardEntry& e) const {
  return join_path(dir, e.file);
}

const ImageSplit& ImageManifest::split(const std::string& name) const {
  if (name == "train") return train;
  if (name == "val") return val;
  throw Error(str(manifest_path(), ": no split \"", name, "\" (expected train or val)"));
}

std::string image_manifest_to_yaml(const ImageManifest& m) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kImageManifestFormat;
  out << YAML::Key << "version" << YAML::Value << kImageManifestVersion;
  out << YAML::Key << "height" << YAML::Value << m.shape.height;
  out << YAML::Key << "width" << YAML::Value << m.shape.width;
  out << YAML::Key << "channels" << YAML::Value << m.shape.channels;
  out << YAML::Key << "num_classes" << YAML::Value << m.num_classes();
  out << YAML::Key << "class_names" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& name : m.class_names) out << YAML::DoubleQuoted << name;
  out << YAML::EndSeq;
  emit_doubles(out, "mean", m.mean);
  emit_doubles(out, "std", m.std);
  out << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << m.source_kind;
  out << YAML::Key << "inputs" << YAML::Value << YAML::BeginSeq;
  for (const auto& in : m.inputs) out << in;
  out << YAML::EndSeq;
  out << YAML::Key << "size" << YAML::Value << m.size;
  out << YAML::EndMap;
  out << YAML::Key << "splits" << YAML::Value << YAML::BeginMap;
  emit_split(out, "train", m.train);
  emit_split(out, "val", m.val);
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void save_image_manifest(const ImageManifest& m) {
  write_file_atomic(m.manifest_path(), image_manifest_to_yaml(m));
}

ImageManifest load_image_manifest(const std::string& dir) {
  ImageManifest m;
  m.dir = dir;
  const std::string file = m.manifest_path();
  cfg::ConfigMap top =
      open_manifest(file, {"image dataset manifest", "herd prepare images", kImageManifestFormat,
                           kImageManifestVersion, kManifestFormat, "this is a text dataset"});
  m.shape.height = top.require_int("height", 1, 1 << 16);
  m.shape.width = top.require_int("width", 1, 1 << 16);
  m.shape.channels = top.require_int("channels", 1, 3);
  if (m.shape.channels == 2) top.fail("channels", "2 (expected 1 or 3)");
  int64_t num_classes = top.require_int("num_classes", 1, INT32_MAX);
  m.class_names = top.get_string_list("class_names", {});
  if (static_cast<int64_t>(m.class_names.size()) != num_classes)
    top.fail("class_names",
             str(m.class_names.size(), " names (expected num_classes = ", num_classes, ")"));
  const size_t c = static_cast<size_t>(m.shape.channels);
  m.mean = read_doubles(top, "mean", c, false);
  m.std = read_doubles(top, "std", c, true);
  auto source = top.child("source");
  m.source_kind = source.get_choice("kind", "folder", {"idx", "folder"});
  m.inputs = source.get_string_list("inputs", {});
  m.size = source.get_int("size", 0, 0, 1 << 16);
  source.finish();
  auto splits = top.child("splits");
  m.train = read_split(splits, "train", num_classes);
  m.val = read_split(splits, "val", num_classes);
  splits.finish();
  top.finish();
  return m;
}

}  // namespace herd::data
