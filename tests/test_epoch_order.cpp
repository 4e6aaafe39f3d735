// The pieces every loader shares (src/data): EpochOrder (the permutation per epoch, the
// position across epoch ends, restore checks), rank_rows (the global batch split over ranks)
// and MappedFile (the shard readers' storage).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "data/epoch_order.h"
#include "data/mapped_file.h"
#include "fixtures.h"

namespace herd::data {
namespace {

TEST(EpochOrder, WalksEachEpochsPermutationAcrossTheBoundary) {
  EpochOrder order(10, 1337);
  const auto e0 = epoch_permutation(10, 1337, 0), e1 = epoch_permutation(10, 1337, 1);
  order.advance(7);
  uint64_t epoch = 99;
  EXPECT_EQ(order.sample_at(0, &epoch), e0[7]);
  EXPECT_EQ(epoch, 0u);
  EXPECT_EQ(order.sample_at(3, &epoch), e1[0]) << "offset past the end: the next epoch";
  EXPECT_EQ(epoch, 1u);
  EXPECT_EQ(order.sample_at(2), e0[9]);
  order.advance(5);
  EXPECT_EQ(order.state().epoch, 1u);
  EXPECT_EQ(order.state().next_sample, 2u);
  EXPECT_EQ(order.sample_at(0), e1[2]);
}

TEST(EpochOrder, RestoreChecksThePositionAndResetsTheCache) {
  EpochOrder order(10, 1);
  LoaderState s{3, 4, 77};
  order.restore(s, "image loader");
  EXPECT_EQ(order.state(), s);
  EXPECT_EQ(order.sample_at(0), epoch_permutation(10, 77, 3)[4]) << "the restored seed";
  try {
    order.restore(LoaderState{0, 10, 1}, "image loader");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image loader state epoch=0 next_sample=10 seed=1: "
                                         "next_sample beyond this dataset's 10 samples"),
              std::string::npos)
        << e.what();
  }
}

TEST(RankRows, SplitEveryRowOnceInRankOrder) {
  for (uint64_t n : {1u, 7u, 8u, 13u})
    for (int64_t world : {1, 2, 3, 8}) {
      uint64_t next = 0;
      for (int64_t r = 0; r < world; ++r) {
        const auto rows = rank_rows(n, r, world);
        EXPECT_EQ(rows.begin, next) << n << " " << world << " " << r;
        EXPECT_LE(rows.size(), (n + static_cast<uint64_t>(world) - 1) / world);
        next = rows.end;
      }
      EXPECT_EQ(next, n);
    }
  EXPECT_THROW(check_even_slice(6, 0, 4), Error);
  EXPECT_THROW(check_slice(4, 4, 4), Error);
  EXPECT_NO_THROW(check_even_slice(8, 3, 4));
}

TEST(MappedFile, MapsMovesAndRefusesShortFiles) {
  const std::string dir = test::temp_dir("mapped");
  test::write_text(dir + "/f.bin", "0123456789");
  MappedFile f(dir + "/f.bin", "shard f.bin", 4, "header");
  ASSERT_EQ(f.size(), 10u);
  EXPECT_EQ(std::string(f.data(), 10), "0123456789");
  MappedFile g(std::move(f));
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.data(), nullptr);
  EXPECT_EQ(std::string(g.data(), 3), "012");
  try {
    MappedFile(dir + "/f.bin", "shard f.bin", 16, "header of 4 int32");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "shard f.bin: truncated: 10 bytes (expected a 16-byte header of 4 int32)");
  }
  EXPECT_THROW(MappedFile(dir + "/missing", "shard missing", 0, ""), Error);
}

}  // namespace
}  // namespace herd::data
