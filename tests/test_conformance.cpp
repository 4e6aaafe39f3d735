// The conformance harness and the safetensors reader/writer: golden files for the blocks this
// suite owns must pass; corrupt, perturbed or mislabelled files must fail with clear messages.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "conformance/conformance.h"
#include "conformance/reference.h"
#include "core/error.h"
#include "io/safetensors.h"

using herd::conformance::CheckResult;
using herd::io::SafeTensors;

namespace {

const std::string kGolden = HERD_GOLDEN_DIR;

std::string golden(const std::string& name) {
  return kGolden + "/" + name + ".safetensors";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A safetensors byte string with a hand-written header (for malformed-file tests).
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

// POSIX, not std::filesystem: torch exports broken copies of those symbols (remove_all
// crashes; pytorch/pytorch#133437).
std::string temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/herd_conf_" + tag + "_XXXXXX";
  const char* d = ::mkdtemp(tmpl.data());
  if (!d) throw std::runtime_error("mkdtemp failed");
  return d;
}

void remove_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const herd::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Writes g (tensors + metadata) to path after edits.
void write(const SafeTensors& g, const std::string& path) {
  herd::io::write_safetensors(path, g.tensors, g.metadata);
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypesAndMetadata) {
  std::map<std::string, torch::Tensor> t = {
      {"a.f64", torch::randn({2, 3}, torch::kFloat64)},
      {"b.f32", torch::randn({5}, torch::kFloat32)},
      {"c.i64", torch::arange(7, torch::kInt64).reshape({7, 1})},
      {"d.i32", torch::arange(3, torch::kInt32)},
      {"e.bf16", torch::randn({4}).to(torch::kBFloat16)},
      {"f.f16", torch::randn({1, 2, 2}).to(torch::kFloat16)},
      {"g.scalar", torch::tensor(1.5, torch::kFloat64)},
      {"h.empty", torch::zeros({0, 3}, torch::kFloat32)},
      {"i.bool", torch::tensor({true, false})},
      {"j.strided", torch::randn({4, 4}, torch::kFloat64).t()},  // non-contiguous source
  };
  std::map<std::string, std::string> meta = {{"config", R"({"a": 1, "q": "x\"y"})"},
                                             {"note", "line1\nline2\ttab \\ back"}};
  auto dir = temp_dir("rt");
  auto path = dir + "/rt.safetensors";
  herd::io::write_safetensors(path, t, meta);
  auto bytes = slurp(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u) << "header padded to keep data aligned";
  auto r = herd::io::read_safetensors(path);
  EXPECT_EQ(r.metadata, meta);
  ASSERT_EQ(r.tensors.size(), t.size());
  for (const auto& [name, v] : t) {
    ASSERT_TRUE(r.has(name)) << name;
    EXPECT_EQ(r.at(name).scalar_type(), v.scalar_type()) << name;
    EXPECT_EQ(r.at(name).sizes(), v.sizes()) << name;
    EXPECT_TRUE(torch::equal(r.at(name), v)) << name;
  }
  remove_dir(dir);
}

TEST(Safetensors, ReadsGoldenFile) {
  auto g = herd::io::read_safetensors(golden("attention__causal"));
  EXPECT_EQ(g.metadata.at("block"), "attention");
  EXPECT_EQ(g.at("param.in_proj_weight").sizes(), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(g.at("input").scalar_type(), torch::kFloat64);
  EXPECT_EQ(g.order.size(), g.tensors.size());
}

TEST(Safetensors, MalformedFilesGiveOneLineErrorsNamingFileAndTensor) {
  auto parse = [](const std::string& bytes) {
    return error_of([&] { herd::io::parse_safetensors(bytes, "bad.safetensors"); });
  };
  EXPECT_NE(parse("abc").find("bad.safetensors: truncated"), std::string::npos);
  std::string big(8, '\0');
  big[0] = '\x40';  // header length 64 > 0 bytes left
  EXPECT_NE(parse(big).find("runs past the end"), std::string::npos);
  EXPECT_NE(parse(raw_file("{not json", 0)).find("not valid JSON"), std::string::npos);
  auto e = parse(raw_file(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 8));
  EXPECT_NE(e.find("tensor \"w\""), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = parse(raw_file(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,16]}})", 16));
  EXPECT_NE(e.find("tensor \"w\""), std::string::npos) << e;
  EXPECT_NE(e.find("unknown safetensors dtype \"Q7\""), std::string::npos) << e;
  e = parse(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16));
  EXPECT_NE(e.find("needs 12 bytes but data_offsets span 16"), std::string::npos) << e;
  e = parse(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 16));
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = parse(raw_file(R"({"w":{"dtype":"F32","shape":3}})", 16));
  EXPECT_NE(e.find("expected {\"dtype\""), std::string::npos) << e;
  for (const auto& msg : {parse("abc"), parse(big)}) {
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([] {
              herd::io::read_safetensors("/nonexistent/x.safetensors");
            }).find("/nonexistent/x.safetensors: cannot open"),
            std::string::npos);
}

// Every golden file of a block this suite owns passes in float64 and float32.
class GoldenOwned : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenOwned, PassesFloat64AndFloat32) {
  auto results = herd::conformance::check_file(golden(GetParam()));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    std::cout << herd::conformance::format_line(r) << "\n";
    EXPECT_TRUE(r.pass) << herd::conformance::format_line(r) << "\n"
                        << herd::conformance::format_detail(r);
    EXPECT_TRUE(r.error.empty()) << r.error;
    // output + grad_input + one gradient per parameter were all compared.
    auto g = herd::io::read_safetensors(golden(GetParam()));
    size_t expected = 1 + g.has("grad_input");
    for (const auto& n : g.order) expected += n.rfind("grad.param.", 0) == 0;
    EXPECT_EQ(r.tensors.size(), expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, GoldenOwned,
                         ::testing::Values("attention__causal", "attention__bidirectional",
                                           "primer__mdha", "primer__squared_relu_ffn",
                                           "m2_blockdiag_linear__nblocks4",
                                           "m2_dimension_mixer__blockdiag"));

TEST(Conformance, StrictF32PerTensorBoundsPassForOwnedBlocks) {
  herd::conformance::Options opt;
  opt.dtypes = {torch::kFloat32};
  opt.strict_f32 = true;
  for (const auto* f : {"attention__causal", "primer__mdha", "m2_dimension_mixer__blockdiag"}) {
    auto r = herd::conformance::check_file(golden(f), opt);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].pass) << herd::conformance::format_detail(r[0]);
  }
}

// Layout and convention errors the harness must turn into FAIL, not PASS or a crash.
TEST(Conformance, DetectsLayoutAndValueErrors) {
  const auto base = herd::io::read_safetensors(golden("attention__causal"));
  auto run = [](const SafeTensors& g) {
    return herd::conformance::check_golden(g, torch::kFloat64);
  };
  ASSERT_TRUE(run(base).pass);

  auto g = base;  // a file param with no herd counterpart
  g.tensors["param.extra"] = torch::zeros({2}, torch::kFloat64);
  g.order.push_back("param.extra");
  auto r = run(g);
  EXPECT_FALSE(r.pass);
  EXPECT_NE(r.error.find("param.extra has no herd counterpart"), std::string::npos) << r.error;

  g = base;  // a herd parameter the file does not provide
  g.tensors.erase("param.out_proj.bias");
  g.order.erase(std::find(g.order.begin(), g.order.end(), "param.out_proj.bias"));
  r = run(g);
  EXPECT_FALSE(r.pass);
  EXPECT_NE(r.error.find("not provided by the file: out_proj.bias"), std::string::npos) << r.error;

  g = base;  // wrong shape
  g.tensors["param.out_proj.weight"] = torch::zeros({32, 31}, torch::kFloat64);
  EXPECT_NE(run(g).error.find("has shape"), std::string::npos);

  g = base;  // q and k rows swapped: the forward changes, so outputs must disagree
  auto w = base.at("param.in_proj_weight").clone();
  const int64_t d = w.size(1);
  g.tensors["param.in_proj_weight"] =
      torch::cat({w.narrow(0, d, d), w.narrow(0, 0, d), w.narrow(0, 2 * d, d)});
  r = run(g);
  EXPECT_FALSE(r.pass);
  EXPECT_TRUE(r.error.empty()) << r.error;

  g = base;  // one gradient entry perturbed by far less than its magnitude
  auto gw = base.at("grad.param.out_proj.weight").clone();
  gw[3][5] += 1e-6;
  g.tensors["grad.param.out_proj.weight"] = gw;
  r = run(g);
  EXPECT_FALSE(r.pass);
  ASSERT_NE(r.worst(), nullptr);
  EXPECT_EQ(r.worst()->name, "grad.param.out_proj.weight");

  g = base;  // unknown block: FAIL with the registry's message
  g.metadata["block"] = "no_such_block";
  EXPECT_NE(run(g).error.find("unknown block \"no_such_block\""), std::string::npos);

  g = base;  // unknown variant
  g.metadata["variant"] = "sideways";
  EXPECT_NE(run(g).error.find("unknown variant \"sideways\""), std::string::npos);

  g = base;  // config key herd does not model
  g.metadata["config"] = R"({"embed_dim": 32, "num_heads": 4, "rotary": true})";
  EXPECT_NE(run(g).error.find("unsupported key \"rotary\""), std::string::npos);

  g = base;  // missing tolerance metadata
  g.metadata.erase("rtol");
  EXPECT_NE(run(g).error.find("metadata \"rtol\" missing"), std::string::npos);
}

TEST(Conformance, RegistryListsOwnedBlocks) {
  for (const auto* b : {"attention", "primer", "m2_blockdiag_linear", "m2_dimension_mixer"})
    EXPECT_EQ(herd::find_reference(b).block, b);
  EXPECT_THROW(herd::find_reference("nope"), herd::Error);
}

// The CLI on a folder with one good copy, one corrupt file and one perturbed file.
TEST(ConformanceCli, FailsOnCorruptAndPerturbedFiles) {
  auto dir = temp_dir("cli");
  spit(dir + "/a_good.safetensors", slurp(golden("primer__squared_relu_ffn")));
  auto bytes = slurp(golden("attention__causal"));
  spit(dir + "/b_corrupt.safetensors", bytes.substr(0, bytes.size() / 2));
  auto g = herd::io::read_safetensors(golden("m2_blockdiag_linear__nblocks4"));
  g.tensors["output"] = g.tensors["output"] * (1 + 1e-4);
  write(g, dir + "/c_perturbed.safetensors");
  spit(dir + "/notes.txt", "ignored: not *.safetensors");

  const std::string cmd = std::string(HERD_BINARY) + " conformance " + dir + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_NE(WEXITSTATUS(status), 0) << out;
  for (const auto* dt : {"float64", "float32"}) {
    EXPECT_NE(out.find(std::string("PASS  a_good.safetensors  ") + dt), std::string::npos) << out;
    EXPECT_NE(out.find(std::string("FAIL  b_corrupt.safetensors  ") + dt + "  error: "),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(std::string("FAIL  c_perturbed.safetensors  ") + dt + "  worst: output"),
              std::string::npos)
        << out;
  }
  EXPECT_NE(out.find("out of range"), std::string::npos) << out;  // truncated data section
  EXPECT_NE(out.find("2 of 6 checks passed"), std::string::npos) << out;
  EXPECT_EQ(out.find("notes.txt"), std::string::npos) << out;

  // --filter and --dtype narrow the run; a passing run exits 0.
  const std::string ok = std::string(HERD_BINARY) + " conformance " + dir +
                         " --filter good --dtype float64 >/dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(ok.c_str())), 0);
  const std::string none =
      std::string(HERD_BINARY) + " conformance " + dir + " --filter zzz >/dev/null 2>&1";
  EXPECT_NE(WEXITSTATUS(std::system(none.c_str())), 0);
  remove_dir(dir);
}
