// The input list of `herd prepare text`: paths, directories and shell-style globs expanded
// into the ordered list of files to read.
#pragma once

#include <string>
#include <vector>

namespace herd::data {

// Expands `inputs` into the files to read, in order:
//   - a path with a glob character (* ? [) is matched with glob(3), sorted; no match is an
//     error (so is a match that is a directory: name its files or the directory itself)
//   - a directory contributes, recursively and sorted by path, its files named *.txt, *.jsonl
//     or *.json, each optionally compressed (.zst, .gz); hidden entries are skipped; a
//     directory without such files is an error
//   - anything else is taken as it is (check_inputs_exist reports a missing file)
// The same file reached twice is an error: it would be tokenized twice.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);

// Whether a file name (not a path) is one a directory input contributes.
bool is_corpus_file_name(const std::string& name);

}  // namespace herd::data
