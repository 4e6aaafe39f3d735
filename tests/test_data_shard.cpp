// Token shards: both llm.c layouts round-trip; damaged headers and files are one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "data/text/shard.h"
#include "test_data_util.h"

namespace {

using namespace herd::data::testing_util;

using namespace herd::data;

std::string error_of(const std::string& path) {
  try {
    ShardReader r(path);
  } catch (const herd::Error& e) {
    return e.what();
  }
  return "";
}

void set_header(std::string& bytes, int index, int32_t value) {
  std::memcpy(bytes.data() + index * 4, &value, 4);
}

TEST(Shard, U16RoundTripAndLayout) {
  ScratchDir dir_scratch("u16");
  const std::string dir = dir_scratch.path();
  std::vector<int> ids = {0, 1, 65535, 300, 3, 42};
  write_shard(dir + "/a.bin", TokenDtype::u16, ids);
  std::string raw = bytes_of(dir + "/a.bin");
  ASSERT_EQ(raw.size(), 1024u + ids.size() * 2);
  int32_t header[256];
  std::memcpy(header, raw.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 6);
  for (int i = 3; i < 256; ++i) EXPECT_EQ(header[i], 0);
  uint16_t third;
  std::memcpy(&third, raw.data() + 1024 + 4, 2);
  EXPECT_EQ(third, 65535);

  ShardReader r(dir + "/a.bin");
  EXPECT_EQ(r.dtype(), TokenDtype::u16);
  EXPECT_EQ(r.size(), ids.size());
  EXPECT_EQ(r.read_all(), ids);
  std::vector<int64_t> part(3);
  r.copy(2, 3, part.data());
  EXPECT_EQ(part, (std::vector<int64_t>{65535, 300, 3}));
  EXPECT_THROW(r.copy(4, 3, part.data()), herd::Error);
}

TEST(Shard, U32RoundTripStreamingWriter) {
  ScratchDir dir_scratch("u32");
  const std::string dir = dir_scratch.path();
  std::vector<int> ids;
  for (int i = 0; i < 1500000; ++i) ids.push_back(static_cast<int>((int64_t{i} * 7919) % 200000));
  {
    ShardWriter w(dir + "/b.bin", TokenDtype::u32);
    for (size_t i = 0; i < ids.size(); i += 100000)
      w.append(ids.data() + i, std::min<size_t>(100000, ids.size() - i));
    EXPECT_FALSE(herd::data::is_regular_file(dir + "/b.bin"));  // only the temp file so far
    w.finish();
  }
  std::string raw = bytes_of(dir + "/b.bin");
  int32_t header[3];
  std::memcpy(header, raw.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240801);
  EXPECT_EQ(header[1], 7);
  EXPECT_EQ(header[2], 1500000);
  ShardReader r(dir + "/b.bin");
  EXPECT_EQ(r.dtype(), TokenDtype::u32);
  EXPECT_EQ(r.read_all(), ids);
}

TEST(Shard, EmptyShardAndDtypeChoice) {
  ScratchDir dir_scratch("empty");
  const std::string dir = dir_scratch.path();
  write_shard(dir + "/e.bin", TokenDtype::u16, {});
  EXPECT_EQ(ShardReader(dir + "/e.bin").size(), 0u);
  EXPECT_EQ(dtype_for_vocab(50257), TokenDtype::u16);
  EXPECT_EQ(dtype_for_vocab(65536), TokenDtype::u16);
  EXPECT_EQ(dtype_for_vocab(65537), TokenDtype::u32);
  EXPECT_EQ(dtype_for_vocab(128256), TokenDtype::u32);
}

TEST(Shard, WriterRejectsOutOfRangeAndLeavesNoFile) {
  ScratchDir dir_scratch("range");
  const std::string dir = dir_scratch.path();
  EXPECT_THROW(write_shard(dir + "/x.bin", TokenDtype::u16, {1, 65536}), herd::Error);
  EXPECT_THROW(write_shard(dir + "/y.bin", TokenDtype::u32, {-1}), herd::Error);
  EXPECT_TRUE(herd::data::list_dir(dir).empty());  // no shard, no temp file left behind
  {
    ShardWriter abandoned(dir + "/z.bin", TokenDtype::u16);
    abandoned.append({1, 2, 3});
  }
  EXPECT_TRUE(herd::data::list_dir(dir).empty());
}

TEST(Shard, HeaderValidation) {
  ScratchDir dir_scratch("bad");
  const std::string dir = dir_scratch.path();
  write_shard(dir + "/good.bin", TokenDtype::u16, {5, 6, 7, 8});
  const std::string good = bytes_of(dir + "/good.bin");

  std::string b = good;
  set_header(b, 0, 123);
  put_file(dir + "/train_000001.bin", b);
  EXPECT_EQ(error_of(dir + "/train_000001.bin"),
            "shard train_000001.bin: bad magic 123 (expected 20240520 or 20240801)");

  b = good;
  set_header(b, 1, 7);  // the u32 version under the u16 magic
  put_file(dir + "/v.bin", b);
  EXPECT_EQ(error_of(dir + "/v.bin"), "shard v.bin: version 7 for magic 20240520 (expected 1)");

  put_file(dir + "/t.bin", good.substr(0, good.size() - 1));
  auto msg = error_of(dir + "/t.bin");
  EXPECT_NE(msg.find("truncated file"), std::string::npos) << msg;

  put_file(dir + "/h.bin", good.substr(0, 100));
  msg = error_of(dir + "/h.bin");
  EXPECT_NE(msg.find("shard h.bin: truncated: 100 bytes"), std::string::npos) << msg;

  b = good;
  set_header(b, 2, 3);  // count says 3, file holds 4
  put_file(dir + "/c.bin", b);
  msg = error_of(dir + "/c.bin");
  EXPECT_NE(msg.find("header counts 3 uint16 tokens"), std::string::npos) << msg;

  b = good;
  set_header(b, 2, -4);
  put_file(dir + "/n.bin", b);
  EXPECT_NE(error_of(dir + "/n.bin").find("negative token count"), std::string::npos);

  msg = error_of(dir + "/missing.bin");
  EXPECT_NE(msg.find("shard missing.bin: cannot open"), std::string::npos) << msg;
  for (const auto& m : {msg, error_of(dir + "/c.bin"), error_of(dir + "/t.bin")})
    EXPECT_EQ(m.find('\n'), std::string::npos);
}

}  // namespace
