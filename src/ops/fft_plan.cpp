#include "ops/fft_plan.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/error.h"

namespace herd::ops::fft {
namespace {

// FFTW's planner is not thread-safe; executing a finished plan is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

template <typename T>
struct Fftw;

template <>
struct Fftw<float> {
  using Plan = fftwf_plan;
  static Plan r2c(int n, float* in, std::complex<float>* out) {
    return fftwf_plan_dft_r2c_1d(n, in, reinterpret_cast<fftwf_complex*>(out), FFTW_ESTIMATE);
  }
  static Plan c2r(int n, std::complex<float>* in, float* out) {
    return fftwf_plan_dft_c2r_1d(n, reinterpret_cast<fftwf_complex*>(in), out, FFTW_ESTIMATE);
  }
  static void exec_r2c(void* p, const float* in, std::complex<float>* out) {
    fftwf_execute_dft_r2c(static_cast<Plan>(p), const_cast<float*>(in),
                          reinterpret_cast<fftwf_complex*>(out));
  }
  static void exec_c2r(void* p, std::complex<float>* in, float* out) {
    fftwf_execute_dft_c2r(static_cast<Plan>(p), reinterpret_cast<fftwf_complex*>(in), out);
  }
};

template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  static Plan r2c(int n, double* in, std::complex<double>* out) {
    return fftw_plan_dft_r2c_1d(n, in, reinterpret_cast<fftw_complex*>(out), FFTW_ESTIMATE);
  }
  static Plan c2r(int n, std::complex<double>* in, double* out) {
    return fftw_plan_dft_c2r_1d(n, reinterpret_cast<fftw_complex*>(in), out, FFTW_ESTIMATE);
  }
  static void exec_r2c(void* p, const double* in, std::complex<double>* out) {
    fftw_execute_dft_r2c(static_cast<Plan>(p), const_cast<double*>(in),
                         reinterpret_cast<fftw_complex*>(out));
  }
  static void exec_c2r(void* p, std::complex<double>* in, double* out) {
    fftw_execute_dft_c2r(static_cast<Plan>(p), reinterpret_cast<fftw_complex*>(in), out);
  }
};

}  // namespace

// fftw_malloc and fftwf_malloc are the same aligned allocator; one serves every element type.
template <typename T>
Buffer<T>::Buffer(size_t count) : p_(static_cast<T*>(fftw_malloc(count * sizeof(T)))), n_(count) {
  HERD_CHECK(count == 0 || p_, "fft: cannot allocate ", count * sizeof(T), " bytes");
}

template <typename T>
void Buffer<T>::Free::operator()(T* p) const {
  fftw_free(p);
}

int64_t aligned_stride(int64_t count) {
  constexpr int64_t kAlign = 64;   // bytes: covers SSE/AVX/AVX-512 alignment for float and double
  const int64_t per = kAlign / 4;  // in floats; doubles need half as many, rounded up is fine
  return (count + per - 1) / per * per;
}

template <typename T>
RealFft<T>::RealFft(int64_t n) : n_(n) {
  HERD_CHECK(n >= 1 && n <= (int64_t{1} << 30), "fft: unsupported length ", n);
  // Plans live for the whole process (a few per length; lengths are few in a run).
  static std::map<int64_t, std::pair<void*, void*>> plans;
  std::lock_guard<std::mutex> lock(planner_mutex());
  auto it = plans.find(n);
  if (it == plans.end()) {
    Buffer<T> re(static_cast<size_t>(n));
    Buffer<std::complex<T>> cx(static_cast<size_t>(n / 2 + 1));
    void* f = Fftw<T>::r2c(static_cast<int>(n), re.data(), cx.data());
    void* b = Fftw<T>::c2r(static_cast<int>(n), cx.data(), re.data());
    HERD_CHECK(f && b, "fft: FFTW could not plan length ", n);
    it = plans.emplace(n, std::make_pair(f, b)).first;
  }
  r2c_ = it->second.first;
  c2r_ = it->second.second;
}

template <typename T>
void RealFft<T>::forward(const T* in, std::complex<T>* out) const {
  Fftw<T>::exec_r2c(r2c_, in, out);
}

template <typename T>
void RealFft<T>::inverse(std::complex<T>* in, T* out) const {
  Fftw<T>::exec_c2r(c2r_, in, out);
}

template class Buffer<float>;
template class Buffer<double>;
template class Buffer<std::complex<float>>;
template class Buffer<std::complex<double>>;
template class RealFft<float>;
template class RealFft<double>;

}  // namespace herd::ops::fft
