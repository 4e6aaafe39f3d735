#include "data/text/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "config/node.h"
#include "core/error.h"
#include "data/file_util.h"
#include "data/image/image_manifest.h"
#include "data/manifest_file.h"

namespace herd::data {
namespace {

uint64_t sum_tokens(const std::vector<ShardEntry>& shards) {
  uint64_t total = 0;
  for (const auto& s : shards) total += s.tokens;
  return total;
}

void emit_shards(YAML::Emitter& out, const char* key, const std::vector<ShardEntry>& shards) {
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const auto& s : shards)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "file" << YAML::Value << s.file << YAML::Key
        << "tokens" << YAML::Value << s.tokens << YAML::EndMap;
  out << YAML::EndSeq;
}

std::vector<ShardEntry> read_shards(cfg::ConfigMap& parent, const std::string& key) {
  std::vector<ShardEntry> shards;
  for (auto& entry : parent.child_list(key)) {
    ShardEntry s;
    s.file = entry.require_string("file");
    if (s.file.empty() || s.file.find('/') != std::string::npos || s.file == "." || s.file == "..")
      entry.fail("file", str("\"", s.file, "\" (expected a file name inside the dataset dir)"));
    s.tokens = static_cast<uint64_t>(entry.require_int("tokens", 0, int64_t(kShardMaxTokens)));
    entry.finish();
    shards.push_back(std::move(s));
  }
  return shards;
}

}  // namespace

uint64_t DatasetManifest::train_tokens() const {
  return sum_tokens(train_shards);
}
uint64_t DatasetManifest::val_tokens() const {
  return sum_tokens(val_shards);
}

std::string DatasetManifest::manifest_path() const {
  return join_path(dir, kManifestFile);
}

std::string DatasetManifest::shard_path(const ShardEntry& e) const {
  return join_path(dir, e.file);
}

std::string manifest_to_yaml(const DatasetManifest& m) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kManifestFormat;
  out << YAML::Key << "version" << YAML::Value << kManifestVersion;
  out << YAML::Key << "tokenizer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "path" << YAML::Value << m.tokenizer_path;
  out << YAML::Key << "identity" << YAML::Value << YAML::DoubleQuoted << m.tokenizer_identity;
  out << YAML::EndMap;
  out << YAML::Key << "vocab_size" << YAML::Value << m.vocab_size;
  out << YAML::Key << "eos_id" << YAML::Value << m.eos_id;
  out << YAML::Key << "token_dtype" << YAML::Value << dtype_name(m.dtype);
  out << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "inputs" << YAML::Value << YAML::BeginSeq;
  for (const auto& in : m.inputs) out << in;
  out << YAML::EndSeq;
  out << YAML::Key << "doc_delimiter" << YAML::Value << YAML::DoubleQuoted << m.doc_delimiter;
  out << YAML::Key << "val_fraction" << YAML::Value << shortest_double(m.val_fraction);
  out << YAML::Key << "seed" << YAML::Value << m.seed;
  out << YAML::EndMap;
  out << YAML::Key << "documents" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "train" << YAML::Value << m.train_documents;
  out << YAML::Key << "val" << YAML::Value << m.val_documents;
  out << YAML::EndMap;
  out << YAML::Key << "tokens" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "train" << YAML::Value << m.train_tokens();
  out << YAML::Key << "val" << YAML::Value << m.val_tokens();
  out << YAML::EndMap;
  out << YAML::Key << "shards" << YAML::Value << YAML::BeginMap;
  emit_shards(out, "train", m.train_shards);
  emit_shards(out, "val", m.val_shards);
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void save_manifest(const DatasetManifest& m) {
  write_file_atomic(m.manifest_path(), manifest_to_yaml(m));
}

DatasetManifest load_manifest(const std::string& dir) {
  DatasetManifest m;
  m.dir = dir;
  const std::string file = m.manifest_path();
  cfg::ConfigMap top =
      open_manifest(file, {"dataset manifest", "herd prepare text", kManifestFormat,
                           kManifestVersion, kImageManifestFormat, "this is an image dataset"});

  auto tok = top.child("tokenizer");
  m.tokenizer_path = tok.require_string("path");
  m.tokenizer_identity = tok.require_string("identity");
  tok.finish();
  m.vocab_size = top.require_int("vocab_size", 1, (int64_t(1) << 32));
  m.eos_id = top.require_int("eos_id", 0, m.vocab_size - 1);
  m.dtype = parse_dtype(top.require_string("token_dtype"), top.where("token_dtype"));
  if (m.dtype == TokenDtype::u16 && m.vocab_size > 65536)
    top.fail("token_dtype", str("uint16 cannot hold vocab_size ", m.vocab_size));

  auto source = top.child("source");
  m.inputs = source.get_string_list("inputs", {});
  m.doc_delimiter = source.get_string("doc_delimiter", "");
  m.val_fraction = source.get_double("val_fraction", 0, 0, 1);
  // A seed may use all 64 bits, beyond get_int's range.
  std::string seed = source.get_string("seed", "0");
  char* end = nullptr;
  errno = 0;
  m.seed = std::strtoull(seed.c_str(), &end, 10);
  if (seed.empty() || *end != '\0' || errno != 0 || seed[0] == '-')
    source.fail("seed", str("\"", seed, "\" (expected an unsigned 64-bit integer)"));
  source.finish();

  auto docs = top.child("documents");
  m.train_documents = static_cast<uint64_t>(docs.require_int("train", 0));
  m.val_documents = static_cast<uint64_t>(docs.require_int("val", 0));
  docs.finish();

  auto shards = top.child("shards");
  m.train_shards = read_shards(shards, "train");
  m.val_shards = read_shards(shards, "val");
  shards.finish();

  auto tokens = top.child("tokens");
  int64_t train_tokens = tokens.require_int("train", 0);
  int64_t val_tokens = tokens.require_int("val", 0);
  if (static_cast<uint64_t>(train_tokens) != m.train_tokens())
    tokens.fail("train", str(train_tokens, " but the train shards list ", m.train_tokens()));
  if (static_cast<uint64_t>(val_tokens) != m.val_tokens())
    tokens.fail("val", str(val_tokens, " but the val shards list ", m.val_tokens()));
  tokens.finish();
  top.finish();
  return m;
}

namespace {

constexpr const char* kLlmcIdentity = "llm.c shards ";

// llm.c's data scripts name shards like fineweb_train_000001.bin and fineweb_val_000000.bin.
std::vector<ShardEntry> llmc_shards(const std::string& dir, const std::string& split) {
  std::vector<ShardEntry> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() != ".bin") continue;
    if (name.find(split) == std::string::npos) continue;
    ShardReader reader(e.path().string());  // checks magic, version and size
    out.push_back({name, reader.size()});
  }
  std::sort(out.begin(), out.end(),
            [](const ShardEntry& a, const ShardEntry& b) { return a.file < b.file; });
  return out;
}

}  // namespace

DatasetManifest load_dataset(const std::string& dir) {
  if (is_regular_file(join_path(dir, kManifestFile))) return load_manifest(dir);
  HERD_CHECK(std::filesystem::is_directory(dir), dir,
             ": no such dataset directory (expected the output of herd prepare text, or a "
             "folder of llm.c *train*.bin / *val*.bin shards)");
  DatasetManifest m;
  m.dir = dir;
  m.train_shards = llmc_shards(dir, "train");
  m.val_shards = llmc_shards(dir, "val");
  HERD_CHECK(!m.train_shards.empty(), dir,
             ": no manifest.yaml and no llm.c *train*.bin shards (expected the output of herd "
             "prepare text, or a folder of llm.c shards)");
  m.dtype = ShardReader(m.shard_path(m.train_shards.front())).dtype();
  // Resume checks that a run continues on the same data: the shard names and sizes.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto* list : {&m.train_shards, &m.val_shards})
    for (const auto& e : *list)
      for (char c : str(e.file, ":", e.tokens, ";"))
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  m.tokenizer_identity = str(kLlmcIdentity, std::hex, h);
  return m;
}

bool is_llmc_folder(const DatasetManifest& manifest) {
  return manifest.tokenizer_identity.rfind(kLlmcIdentity, 0) == 0;
}

}  // namespace herd::data
