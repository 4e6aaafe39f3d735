// Tensor memory in use and its peak, for benchmarks: on the CPU a counting wrapper around
// c10's CPU allocator (installed on first use), on CUDA the caching allocator's own counters.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>

namespace herd::mem {

// Starts counting CPU tensor allocations made from now on (idempotent). Memory allocated
// before is not seen, so call it before building what is measured.
void track_cpu();

// Bytes of tensor memory currently allocated on the device (CPU: since track_cpu()).
int64_t allocated_bytes(c10::Device device);
// Highest allocated_bytes since the last reset_peak on that device.
int64_t peak_bytes(c10::Device device);
void reset_peak(c10::Device device);

// Peak resident set size of this process (getrusage), in bytes.
int64_t peak_rss_bytes();

}  // namespace herd::mem
