#include "core/mem_stats.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <sys/resource.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace herd::mem {
namespace {

// Wraps the CPU allocator: sizes are kept per pointer so that the data pointer stays its own
// context, as torch's raw_allocate/raw_deallocate users require.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t n) override {
    void* data = inner_->raw_allocate(n);
    {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[data] = n;
      current_ += static_cast<int64_t>(n);
      peak_ = std::max(peak_, current_);
    }
    return {data, data, &CountingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CountingCpuAllocator::release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t current() {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  int64_t peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = current_;
  }

 private:
  static void release(void* p);

  c10::Allocator* inner_;
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  int64_t current_ = 0, peak_ = 0;
};

CountingCpuAllocator* counter = nullptr;

void CountingCpuAllocator::release(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(counter->mu_);
    auto it = counter->sizes_.find(p);
    if (it != counter->sizes_.end()) {
      counter->current_ -= static_cast<int64_t>(it->second);
      counter->sizes_.erase(it);
    }
  }
  counter->inner_->raw_deallocate(p);
}

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
