// The CPU executor of long_conv's CUDA steps (kernels/long_conv.cuh): loops for the kernels,
// torch's FFT for cuFFT (the inverse destroys its input, as cuFFT's C2R may).
#pragma once

#include <torch/torch.h>

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/long_conv.cuh"
#include "kernels/monarch_conv.cuh"
#include "ops/monarch_fft.h"

namespace herd::test {

namespace K = herd::kernels;

template <typename Acc>
torch::ScalarType real_type() {
  return std::is_same_v<Acc, double> ? torch::kDouble : torch::kFloat;
}
template <typename Acc>
torch::ScalarType complex_type() {
  return std::is_same_v<Acc, double> ? torch::kComplexDouble : torch::kComplexFloat;
}

template <typename Acc>
struct CpuExec {
  int launches = 0;
  template <typename F>
  int for_each(int64_t n, F f) {
    ++launches;
    for (int64_t i = 0; i < n; ++i) f(i);
    return 0;
  }
  template <typename F>
  int channel_sum(int64_t C, int64_t count, F f, Acc* out) {
    for (int64_t c = 0; c < C; ++c) {
      Acc s = 0;
      for (int64_t k = 0; k < count; ++k) s += f(c, k);
      out[c] = s;
    }
    return 0;
  }
  int copy(K::Cx<Acc>* dst, const K::Cx<Acc>* src, int64_t count) {
    std::memcpy(static_cast<void*>(dst), static_cast<const void*>(src), count * sizeof(*src));
    return 0;
  }
  int r2c(const Acc* in, K::Cx<Acc>* out, int64_t n, int64_t rows) {
    auto x = torch::from_blob(const_cast<Acc*>(in), {rows, n}, real_type<Acc>());
    auto y = torch::from_blob(out, {rows, n / 2 + 1}, complex_type<Acc>());
    y.copy_(torch::fft::rfft(x, n, -1));
    return 0;
  }
  int c2r(K::Cx<Acc>* in, Acc* out, int64_t n, int64_t rows) {
    auto x = torch::from_blob(in, {rows, n / 2 + 1}, complex_type<Acc>());
    auto y = torch::from_blob(out, {rows, n}, real_type<Acc>());
    y.copy_(torch::fft::irfft(x, n, -1, "forward"));  // unnormalised, as cuFFT
    x.fill_(std::numeric_limits<Acc>::quiet_NaN());   // cuFFT's C2R may destroy its input
    return 0;
  }
};

// The Monarch factors of N on the CPU, as ops/long_conv_cuda.cpp builds them for a device.
struct HostMonarchTables {
  torch::Tensor bf, tw;
  K::MonarchTables tb{};
  explicit HostMonarchTables(int64_t N) {
    const auto p = herd::ops::MonarchFft::plan(N);
    auto flat = [](const torch::Tensor& t) { return t.reshape({-1}); };
    bf = torch::cat({flat(p.f1r), flat(p.f1i), flat(p.f2r), flat(p.f2i), flat(-p.f2i)})
             .to(torch::kBFloat16);
    tw = torch::cat({flat(p.twr), flat(p.twi)}).to(torch::kFloat);
    const auto* h = reinterpret_cast<const uint16_t*>(bf.data_ptr());
    const int64_t N1 = p.N1, N2 = p.N2, s1 = N1 * N1, s2 = N2 * N2;
    const float* t = tw.data_ptr<float>();
    tb = {N, N1, N2, h, h + s1, h + 2 * s1, h + 2 * s1 + s2, h + 2 * s1 + 2 * s2, t, t + N};
  }
};

// CpuExec plus the Monarch row programs, one row after another through HostMonarchBlock (its
// warps in reverse order when `reversed`), each row's shared memory poisoned first.
struct MonarchCpuExec : CpuExec<float> {
  bool reversed = false;
  std::vector<float> smem;  // float-aligned backing for the row's shared memory
  K::MonarchSmem row_smem(int64_t N) {
    smem.assign(static_cast<size_t>(K::monarch_smem_bytes(N, K::kMonarchWarps) / 4 + 1),
                std::numeric_limits<float>::quiet_NaN());
    return K::monarch_smem(smem.data(), N);
  }
  template <typename Load, typename Spec, typename Out>
  int monarch_conv_rows(const K::MonarchTables& tb, int64_t rows, int64_t L, Load load, Spec spec,
                        Out out) {
    K::HostMonarchBlock blk{reversed};
    for (int64_t r = 0; r < rows; ++r)
      K::monarch_conv_row(
          blk, tb, row_smem(tb.N), L, [&](int64_t t) { return load(r, t); },
          [&](int64_t f) { return spec(r, f); }, [&](int64_t t, float z) { out(r, t, z); });
    return 0;
  }
  template <typename Load, typename Emit>
  int monarch_dft_rows(const K::MonarchTables& tb, int64_t rows, int64_t L, Load load, Emit emit) {
    K::HostMonarchBlock blk{reversed};
    for (int64_t r = 0; r < rows; ++r)
      K::monarch_dft_row(
          blk, tb, row_smem(tb.N), L, [&](int64_t t) { return load(r, t); },
          [&](int64_t f, float re, float im) { emit(r, f, re, im); });
    return 0;
  }
};

}  // namespace herd::test
