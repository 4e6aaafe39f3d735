#include "ckpt/export.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "config/config.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/stack.h"

namespace herd::ckpt {
namespace fs = std::filesystem;
namespace {

std::string quote(const std::string& s) {
  std::ostringstream o;
  o << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      o << '\\' << c;
    else if (c == '\n')
      o << "\\n";
    else if (c == '\t')
      o << "\\t";
    else if (c < 0x20)
      o << "\\u" << std::hex << std::setw(4) << std::setfill('0') << int(c) << std::dec;
    else
      o << c;
  }
  o << '"';
  return o.str();
}

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  // JSON has no leading '+', no bare '.5', no hex or inf/nan.
  return end == s.c_str() + s.size() && s[0] != '+' && s[0] != '.' &&
         s.find_first_of("xXnN") == std::string::npos;
}

void emit(const YAML::Node& n, std::ostringstream& o, int indent) {
  const std::string pad(indent + 2, ' ');
  if (n.IsMap()) {
    o << "{";
    bool first = true;
    for (const auto& kv : n) {
      o << (first ? "\n" : ",\n") << pad << quote(kv.first.Scalar()) << ": ";
      emit(kv.second, o, indent + 2);
      first = false;
    }
    o << (first ? "" : "\n" + std::string(indent, ' ')) << "}";
  } else if (n.IsSequence()) {
    o << "[";
    for (size_t i = 0; i < n.size(); ++i) {
      o << (i ? ", " : "");
      emit(n[i], o, indent + 2);
    }
    o << "]";
  } else if (!n || n.IsNull()) {
    o << "null";
  } else {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!")
      o << quote(s);  // explicitly quoted in the YAML
    else if (s == "true" || s == "false")
      o << s;
    else if (is_number(s))
      o << s;
    else
      o << quote(s);
  }
}

}  // namespace

std::string to_json(const YAML::Node& node) {
  std::ostringstream o;
  emit(node, o, 0);
  o << "\n";
  return o.str();
}

int64_t export_checkpoint(const std::string& checkpoint, const std::string& out) {
  const auto ck = open(checkpoint);
  const Config cfg = parse_config(ck.config, ck.file("config.yaml"));
  auto model = build_model(cfg.model);
  load_model(ck, *model);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& kv : model->named_parameters()) tensors[kv.key()] = kv.value().detach();
  for (const auto& kv : model->named_buffers()) tensors[kv.key()] = kv.value();
  fs::create_directories(out);
  io::write_safetensors((fs::path(out) / "model.safetensors").string(), tensors,
                        {{"format", "herd-export"},
                         {"herd_version", HERD_VERSION},
                         {"stack", cfg.model.stack},
                         {"step", std::to_string(ck.state.step)}});
  {
    std::ofstream f(fs::path(out) / "config.json");
    f << to_json(ck.config);
    HERD_CHECK(f.good(), out, "/config.json: cannot write");
  }
  if (!ck.state.tokenizer_file.empty())
    fs::copy_file(ck.file(ck.state.tokenizer_file), fs::path(out) / "tokenizer.model",
                  fs::copy_options::overwrite_existing);
  return static_cast<int64_t>(tensors.size());
}

}  // namespace herd::ckpt
