#include "core/mem_stats.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace herd::mem {
namespace {

// Wraps the CPU allocator in place: each allocation carries its size in a small context so
// the deleter can subtract it, whichever thread frees it.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr inner = inner_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Context{std::move(inner), n, this};
    const int64_t now = current_.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return {data, ctx, &CountingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(current_.load()); }

 private:
  struct Context {
    c10::DataPtr inner;
    size_t bytes;
    CountingCpuAllocator* owner;
  };
  static void release(void* p) {
    auto* ctx = static_cast<Context*>(p);
    ctx->owner->current_.fetch_sub(static_cast<int64_t>(ctx->bytes));
    delete ctx;  // frees the inner allocation through its own deleter
  }

  c10::Allocator* inner_;
  std::atomic<int64_t> current_{0}, peak_{0};
};

CountingCpuAllocator* counter = nullptr;

c10::DeviceAllocator* device_allocator(c10::Device d) {
  return c10::getDeviceAllocator(d.type());
}

}  // namespace

void track_cpu() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never freed: tensors allocated through it may outlive any scope.
    counter = new CountingCpuAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(counter, /*priority=*/100);
  });
}

int64_t allocated_bytes(c10::Device device) {
  if (device.is_cpu()) return counter ? counter->current() : 0;
  const auto s = device_allocator(device)->getDeviceStats(device.index());
  return s.allocated_bytes[0].current;  // [0]: the aggregate over pool kinds
}

int64_t peak_bytes(c10::Device device) {
  if (device.is_cpu()) return counter ? counter->peak() : 0;
  const auto s = device_allocator(device)->getDeviceStats(device.index());
  return s.allocated_bytes[0].peak;
}

void reset_peak(c10::Device device) {
  if (device.is_cpu()) {
    if (counter) counter->reset_peak();
    return;
  }
  device_allocator(device)->resetPeakStats(device.index());
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace herd::mem
