// The prefetching loader thread: same batches in the same order, each with the loader state
// right after it; production runs ahead on its own thread with parallel_for inline; errors
// surface at the batch that failed; the thread is joined on every exit. Through train(): the
// checkpoint records the state after the last consumed batch, not the prefetched one.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "data/text/loader.h"
#include "fixtures.h"
#include "train/prefetch.h"
#include "train/trainer.h"

namespace herd {
namespace {

// A loader whose batch i holds the value i and whose state after it is "i+1".
struct CountingLoader {
  std::atomic<int64_t> produced{0};
  std::atomic<int> loader_threads{0};  // intra-op threads on the loader thread
  int64_t fail_at = -1;

  TaskBatch produce() {
    const int64_t i = produced.load();
    if (i == fail_at) throw Error(str("batch ", i, " is corrupt"));
    loader_threads = at::get_num_threads();
    produced = i + 1;
    return {{torch::full({2}, i, torch::kLong)}};
  }
  std::string state() const { return std::to_string(produced.load()); }
};

// Waits (guarding against a hang, timing nothing) for a condition set by the loader thread.
bool eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 20000 && !cond(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return cond();
}

TEST(Prefetch, SameBatchesInOrderWithTheStateAfterEach) {
  CountingLoader l;
  at::set_num_threads(2);
  {
    BatchPrefetcher p([&l] { return l.produce(); }, [&l] { return l.state(); }, 5);
    for (int64_t i = 0; i < 5; ++i) {
      auto item = p.next();
      EXPECT_EQ(item.batch.parts[0][0].item<int64_t>(), i);
      EXPECT_EQ(item.loader_state, std::to_string(i + 1)) << "the state after batch " << i;
      // The next batch is produced while this one is used (except after the last).
      if (i + 1 < 5) {
        EXPECT_TRUE(eventually([&] { return l.produced.load() == i + 2; })) << i;
      }
    }
    EXPECT_THROW(p.next(), Error);  // only `count` batches
    EXPECT_EQ(l.produced.load(), 5) << "produced past the count";
  }
  EXPECT_EQ(l.loader_threads.load(), 1) << "parallel_for would start threads on the loader thread";
  EXPECT_EQ(at::get_num_threads(), 2) << "the caller's thread count changed";
  int later = 0;
  std::thread([&] { later = at::get_num_threads(); }).join();
  EXPECT_EQ(later, 2) << "threads started after the prefetcher get its single thread";
}

TEST(Prefetch, LoaderErrorsSurfaceAtTheirBatch) {
  CountingLoader l;
  l.fail_at = 2;
  BatchPrefetcher p([&l] { return l.produce(); }, [&l] { return l.state(); }, 5);
  EXPECT_EQ(p.next().loader_state, "1");
  EXPECT_EQ(p.next().loader_state, "2");
  try {
    p.next();
    FAIL() << "the loader's error was lost";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch 2 is corrupt"), std::string::npos) << e.what();
  }
}

// Destroyed with a batch ready and the thread waiting for room, or never consumed, or while
// the caller unwinds an exception: the thread stops and is joined (a hang would fail here).
TEST(Prefetch, ThreadIsJoinedOnEveryExit) {
  CountingLoader l;
  {
    BatchPrefetcher p([&l] { return l.produce(); }, [&l] { return l.state(); }, 100);
    p.next();
    EXPECT_TRUE(eventually([&] { return l.produced.load() == 2; }));
  }
  EXPECT_LE(l.produced.load(), 3) << "kept producing after destruction";
  CountingLoader m;
  try {
    BatchPrefetcher p([&m] { return m.produce(); }, [&m] { return m.state(); }, 100);
    throw std::runtime_error("step failed");
  } catch (const std::runtime_error&) {
  }
  {
    BatchPrefetcher p([&m] { return m.produce(); }, [&m] { return m.state(); }, 0);
  }
}

// A run stopped after 2 steps records the loader after 2 batches (the 3rd is prefetched);
// resuming continues on exactly the batches of an uninterrupted run.
TEST(Prefetch, CheckpointHoldsTheConsumedLoaderState) {
  const std::string dir = test::temp_dir("prefetch_ckpt");
  const std::string path = dir + "/c.yaml";
  test::write_text(path, str("model:\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n  max_seq_len: 16\n"
                             "data:\n  dir: ",
                             test::fortunes_dataset(),
                             "\ntrain:\n  steps: 4\n  batch_size: 4\n  device: cpu\n"
                             "  eval_batches: 1\n  sample_tokens: 0\n  seed: 7\n"));
  auto stopped = train(load_config(path), {dir + "/a", "", 2, true});
  ASSERT_EQ(stopped.steps, 2);
  const auto ck = ckpt::open(stopped.last_checkpoint);
  data::LoaderState expected;
  expected.next_sample = 8;  // 2 batches of 4
  expected.seed = 7;
  EXPECT_EQ(ck.state.loader_state, expected.to_string());
  auto resumed = train(load_config(path), {dir + "/a", "auto", 0, true});
  auto straight = train(load_config(path), {dir + "/b", "", 0, true});
  ASSERT_EQ(resumed.losses.size(), 2u);
  EXPECT_EQ(resumed.losses[0], straight.losses[2]);
  EXPECT_EQ(resumed.losses[1], straight.losses[3]);
}

}  // namespace
}  // namespace herd
