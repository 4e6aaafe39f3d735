#include "io/safetensors.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace herd::io {
namespace {

struct DtypeName {
  const char* name;
  torch::Dtype dtype;
};
const DtypeName kDtypes[] = {
    {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
    {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

bool little_endian_host() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

uint64_t read_u64_le(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return n;
}

}  // namespace

torch::Dtype dtype_from_safetensors(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.dtype;
  throw Error(str("unknown safetensors dtype \"", name,
                  "\" (expected F64|F32|F16|BF16|I64|I32|I16|I8|U8|BOOL)"));
}

std::string dtype_to_safetensors(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.dtype) return d.name;
  throw Error(str("safetensors: cannot store dtype ", c10::toString(dtype)));
}

const torch::Tensor& SafeTensors::at(const std::string& name) const {
  auto it = tensors.find(name);
  HERD_CHECK(it != tensors.end(), file, ": tensor \"", name, "\" not found");
  return it->second;
}

SafeTensors parse_safetensors(const std::string& bytes, const std::string& name) {
  HERD_CHECK(little_endian_host(), name, ": safetensors needs a little-endian host");
  HERD_CHECK(bytes.size() >= 8, name, ": truncated safetensors file (", bytes.size(),
             " bytes, expected at least an 8-byte header length)");
  const uint64_t n = read_u64_le(bytes);
  HERD_CHECK(n <= bytes.size() - 8, name, ": header length ", n, " runs past the end of the file (",
             bytes.size(), " bytes)");
  YAML::Node header;
  try {
    header = YAML::Load(bytes.substr(8, n));  // JSON is valid YAML flow syntax
  } catch (const YAML::Exception& e) {
    throw Error(str(name, ": header is not valid JSON (", e.msg, ")"));
  }
  HERD_CHECK(header.IsMap(), name, ": header is not a JSON object");
  const uint64_t data_begin = 8 + n, data_size = bytes.size() - data_begin;

  SafeTensors out;
  out.file = name;
  // Anything yaml-cpp still throws on a malformed header (a form not checked above) is the
  // same one-line error, never an escaping YAML exception.
  try {
    for (const auto& kv : header) {
      // JSON object keys are strings; YAML would also take a mapping or a list as a key.
      HERD_CHECK(kv.first.IsScalar(), name, ": header keys must be strings");
      const auto key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "__metadata__") {
        HERD_CHECK(v.IsMap(), name, ": __metadata__ must be an object of strings");
        for (const auto& m : v) {
          HERD_CHECK(m.first.IsScalar() && m.second.IsScalar(), name,
                     ": __metadata__ must be an object of strings");
          out.metadata[m.first.as<std::string>()] = m.second.as<std::string>();
        }
        continue;
      }
      const std::string where = str(name, ": tensor \"", key, "\"");
      // Presence first: yaml-cpp throws its own InvalidNode when asked the type of a missing key.
      HERD_CHECK(
          v.IsMap() && v["dtype"] && v["shape"] && v["data_offsets"] && v["dtype"].IsScalar() &&
              v["shape"].IsSequence() && v["data_offsets"].IsSequence() &&
              v["data_offsets"].size() == 2,
          where,
          ": expected {\"dtype\": str, \"shape\": [int...], \"data_offsets\": [begin, end]}");
      torch::Dtype dtype;
      try {
        dtype = dtype_from_safetensors(v["dtype"].as<std::string>());
      } catch (const Error& e) {
        throw Error(str(where, ": ", e.what()));
      }
      std::vector<int64_t> shape;
      uint64_t begin = 0, end = 0, numel = 1;
      try {
        for (const auto& s : v["shape"]) {
          shape.push_back(s.as<int64_t>());
          HERD_CHECK(shape.back() >= 0, where, ": negative dimension in shape");
          numel *= static_cast<uint64_t>(shape.back());
        }
        begin = v["data_offsets"][0].as<uint64_t>();
        end = v["data_offsets"][1].as<uint64_t>();
      } catch (const YAML::Exception&) {
        throw Error(str(where, ": shape and data_offsets must be non-negative integers"));
      }
      HERD_CHECK(begin <= end && end <= data_size, where, ": data_offsets [", begin, ", ", end,
                 "] out of range (data section is ", data_size, " bytes)");
      const uint64_t esize = c10::elementSize(dtype);
      HERD_CHECK(numel * esize == end - begin, where, ": shape ", c10::IntArrayRef(shape), " of ",
                 v["dtype"].as<std::string>(), " needs ", numel * esize,
                 " bytes but data_offsets span ", end - begin);
      auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      if (numel) std::memcpy(t.data_ptr(), bytes.data() + data_begin + begin, end - begin);
      out.tensors[key] = t;
      out.order.push_back(key);
    }
  } catch (const YAML::Exception& e) {
    throw Error(str(name, ": header is not in the safetensors form (", e.msg, ")"));
  }
  return out;
}

SafeTensors read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HERD_CHECK(in, path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  HERD_CHECK(!in.bad(), path, ": read error");
  return parse_safetensors(ss.str(), path);
}

std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  HERD_CHECK(little_endian_host(), "safetensors needs a little-endian host");
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += str(first ? "" : ",", "\"", json_escape(k), "\":\"", json_escape(v), "\"");
      first = false;
    }
    header += "}";
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    HERD_CHECK(name != "__metadata__", "safetensors: a tensor cannot be named __metadata__");
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = t.numel() * t.element_size();
    std::string shape;
    for (auto s : t.sizes()) shape += str(shape.empty() ? "" : ",", s);
    header += str(header.size() > 1 ? "," : "", "\"", json_escape(name), "\":{\"dtype\":\"",
                  dtype_to_safetensors(t.scalar_type()), "\",\"shape\":[", shape,
                  "],\"data_offsets\":[", offset, ",", offset + nbytes, "]}");
    offset += nbytes;
    data.push_back(t);
  }
  header += "}";
  while (header.size() % 8) header += ' ';  // keeps the data section 8-byte aligned
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  for (const auto& t : data)
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const auto bytes = serialize_safetensors(tensors, metadata);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    HERD_CHECK(out, tmp, ": cannot open for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    HERD_CHECK(out.good(), tmp, ": write failed");
  }
  HERD_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename ", tmp);
}

}  // namespace herd::io
