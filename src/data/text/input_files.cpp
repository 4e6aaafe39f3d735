#include "data/text/input_files.h"

#include <glob.h>

#include <set>

#include "core/error.h"
#include "data/file_util.h"

namespace herd::data {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Symlinked directories could loop; real corpora are never this deep.
constexpr int kMaxDepth = 32;

void walk(const std::string& dir, int depth, std::vector<std::string>* out) {
  HERD_CHECK(depth < kMaxDepth, dir, ": directories nested deeper than ", kMaxDepth,
             " levels (a symlink loop?)");
  for (const auto& name : list_dir(dir)) {
    if (name[0] == '.') continue;
    const std::string path = join_path(dir, name);
    if (is_directory(path)) {
      walk(path, depth + 1, out);
    } else if (is_regular_file(path) && is_corpus_file_name(name)) {
      out->push_back(path);
    }
  }
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  glob_t g{};
  int rc = ::glob(pattern.c_str(), 0, nullptr, &g);  // sorted by default
  std::vector<std::string> paths;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) paths.push_back(g.gl_pathv[i]);
  ::globfree(&g);
  HERD_CHECK(rc != GLOB_NOSPACE && rc != GLOB_ABORTED, pattern, ": glob failed (",
             rc == GLOB_NOSPACE ? "out of memory" : "read error", ")");
  HERD_CHECK(!paths.empty(), pattern, ": no file matches this pattern");
  for (const auto& p : paths)
    HERD_CHECK(!is_directory(p), pattern, ": matches the directory ", p,
               " (expected files; give the directory itself to read its corpus files)");
  return paths;
}

}  // namespace

bool is_corpus_file_name(const std::string& name) {
  std::string base = name;
  if (ends_with(base, ".zst"))
    base.resize(base.size() - 4);
  else if (ends_with(base, ".gz"))
    base.resize(base.size() - 3);
  return ends_with(base, ".txt") || ends_with(base, ".jsonl") || ends_with(base, ".json");
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (in.find_first_of("*?[") != std::string::npos && !is_regular_file(in)) {
      for (auto& p : glob_paths(in)) files.push_back(std::move(p));
    } else if (is_directory(in)) {
      size_t before = files.size();
      walk(in, 0, &files);
      HERD_CHECK(files.size() > before, in,
                 ": directory holds no *.txt, *.jsonl or *.json file (optionally .zst/.gz)");
    } else {
      files.push_back(in);
    }
  }
  std::set<std::string> seen;
  for (const auto& f : files)
    HERD_CHECK(seen.insert(absolute_path(f)).second, f,
               ": input file given twice (directories and globs included)");
  return files;
}

}  // namespace herd::data
