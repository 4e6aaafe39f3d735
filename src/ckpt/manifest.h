// Checked writes and the per-checkpoint manifest. Every file of a checkpoint is written with
// write() results checked (a full disk is a clear error, never a silently short file), and
// `manifest.yaml`, written last, records each file's size and XXH3-64 checksum; a checkpoint
// without a manifest, or whose files do not match it, is incomplete or corrupt.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace herd::ckpt {

constexpr const char* kManifest = "manifest.yaml";

struct FileDigest {
  uint64_t size = 0;
  std::string xxh3;  // 16 lowercase hex digits of XXH3_64bits
  bool operator==(const FileDigest& o) const { return size == o.size && xxh3 == o.xxh3; }
};

// Creates `path` (O_EXCL: never over an existing file), writes `bytes`, fsyncs, closes; every
// step checked. Throws herd::Error naming the file and the system's reason (e.g. "File too
// large", "No space left on device").
FileDigest write_checked(const std::string& path, const std::string& bytes);
// Size and checksum of an existing file; throws when unreadable.
FileDigest digest_file(const std::string& path);

// Writes dir/manifest.yaml for `files` (names relative to dir).
void write_manifest(const std::string& dir, const std::map<std::string, FileDigest>& files);
// "" when dir's manifest exists and every file it lists has its size and checksum; else the
// reason, e.g. "model.pt: checksum 0123... differs from the manifest's 4567... (corrupt)".
// `checksums` false checks presence and sizes only (cheap).
std::string verify(const std::string& dir, bool checksums = true);

}  // namespace herd::ckpt
