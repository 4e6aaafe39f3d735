#include "ckpt/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace herd::ckpt {
namespace {

constexpr const char* kManifestFormat = "herd-checkpoint-manifest";

std::string hex(XXH64_hash_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw Error(str(path, ": ", what, " (", std::strerror(err), ")"));
}

}  // namespace

FileDigest write_checked(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail(path, "write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "fsync failed", err);
  }
  if (::close(fd) != 0) fail(path, "close failed", errno);
  return {bytes.size(), hex(XXH3_64bits(bytes.data(), bytes.size()))};
}

FileDigest digest_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open", errno);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.get(), 1 << 20);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail(path, "read failed", err);
    }
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buf.get(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return {size, hex(XXH3_64bits_digest(state.get()))};
}

void write_manifest(const std::string& dir, const std::map<std::string, FileDigest>& files) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "format" << YAML::Value << kManifestFormat;
  out << YAML::Key << "hash" << YAML::Value << "xxh3_64";
  out << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, d] : files) {
    out << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "size" << YAML::Value << d.size;
    out << YAML::Key << "xxh3" << YAML::Value << d.xxh3 << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  write_checked(dir + "/" + kManifest, std::string(out.c_str()) + "\n");
}

std::string verify(const std::string& dir, bool checksums) {
  const std::string path = dir + "/" + kManifest;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return str("no ", kManifest, " (incomplete save)");
  YAML::Node m;
  try {
    m = YAML::LoadFile(path);
  } catch (const std::exception&) {
    return str(kManifest, ": not readable YAML (corrupt)");
  }
  if (!m.IsMap() || !m["format"] || m["format"].as<std::string>("") != kManifestFormat ||
      !m["files"] || !m["files"].IsMap() || m["files"].size() == 0)
    return str(kManifest, ": not a herd checkpoint manifest (corrupt)");
  for (const auto& kv : m["files"]) {
    const std::string name = kv.first.as<std::string>("");
    const std::string file = dir + "/" + name;
    if (name.empty() || name.find('/') != std::string::npos || !kv.second.IsMap())
      return str(kManifest, ": bad entry (corrupt)");
    const auto want_size = kv.second["size"].as<uint64_t>(0);
    const auto want_hash = kv.second["xxh3"].as<std::string>("");
    if (::stat(file.c_str(), &st) != 0) return str(name, ": missing");
    if (static_cast<uint64_t>(st.st_size) != want_size)
      return str(name, ": ", st.st_size, " bytes, the manifest says ", want_size, " (truncated)");
    if (!checksums) continue;
    FileDigest d;
    try {
      d = digest_file(file);
    } catch (const Error& e) {
      return e.what();
    }
    if (d.xxh3 != want_hash)
      return str(name, ": checksum ", d.xxh3, " differs from the manifest's ", want_hash,
                 " (corrupt)");
  }
  return "";
}

}  // namespace herd::ckpt
