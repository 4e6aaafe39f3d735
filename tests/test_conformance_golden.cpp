// Every file in the shipped golden folder passes in float64 and float32, whatever its block.
#include <gtest/gtest.h>

#include <filesystem>

#include "conformance/conformance.h"

namespace herd {
namespace {

TEST(ConformanceGolden, EveryShippedFilePassesBothDtypes) {
  conformance::Options opt;
  auto results = conformance::check_dir(HERD_GOLDEN_DIR, opt);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(HERD_GOLDEN_DIR))
    files += e.path().extension() == ".safetensors";
  ASSERT_GE(files, 12u);
  EXPECT_EQ(results.size(), 2 * files);
  for (const auto& r : results)
    EXPECT_TRUE(r.pass) << conformance::format_line(r) << "\n" << conformance::format_detail(r);
}

}  // namespace
}  // namespace herd
