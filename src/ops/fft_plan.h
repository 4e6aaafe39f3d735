// Real FFTs of one row over raw buffers, for the CPU fast paths (FFTW from Debian). Plans are
// made once per (length, precision) with FFTW_ESTIMATE, so the algorithm and hence the
// rounding never depend on timing: the same inputs give the same bits in every process.
// Transforms are unnormalised (inverse(forward(x)) = n x), as FFTW's.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace herd::ops::fft {

// Memory with FFTW's SIMD alignment; plans may only be executed on such buffers.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t count);
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(T* p) const;
  };
  std::unique_ptr<T, Free> p_;
  size_t n_ = 0;
};

// Row stride (in elements) that keeps every row of a buffer at FFTW's alignment.
int64_t aligned_stride(int64_t count);

// T = float or double. Thread-safe: plans are shared, executed on the caller's buffers.
template <typename T>
class RealFft {
 public:
  explicit RealFft(int64_t n);  // finds or makes the plans for length n
  int64_t size() const { return n_; }
  int64_t bins() const { return n_ / 2 + 1; }
  // in: n reals; out: n/2+1 complex. `in` is preserved.
  void forward(const T* in, std::complex<T>* out) const;
  // in: n/2+1 complex (overwritten: FFTW's c2r destroys its input); out: n reals.
  void inverse(std::complex<T>* in, T* out) const;

 private:
  int64_t n_;
  void* r2c_;
  void* c2r_;
};

}  // namespace herd::ops::fft
