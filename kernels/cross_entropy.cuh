// Softmax cross-entropy of one row of logits z[0..V) against its target t, fused per row
// (the row is a chunk's logits, x_c W^T + b, just computed by a GEMM):
//   m = max_j z_j (first index of it: the argmax),  s = sum_j exp(z_j - m)
//   loss = log(s) + m - z_t
//   dz_j = scale * (exp(z_j - m) / s - [j == t])     scale: d mean-loss / d row-loss = 1 / n
// A row whose target is the ignore index has loss 0 and dz = 0, and is not counted.
// Values are read from the logits' storage type and computed in Acc (float for float and
// bfloat16, double for double); gradients are written back over the logits.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// The running maximum of a row and the first index where it occurs.
template <typename Acc>
struct RowMax {
  Acc value;
  int64_t index;
};

template <typename Acc>
HERD_HD inline void row_max_update(RowMax<Acc>& m, Acc z, int64_t j) {
  if (z > m.value) {
    m.value = z;
    m.index = j;
  }
}

// Merges two partial maxima (of disjoint index sets): ties go to the lower index.
template <typename Acc>
HERD_HD inline RowMax<Acc> row_max_merge(RowMax<Acc> a, RowMax<Acc> b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

// Float bit patterns as int32: every x in [-inf, -87) lies in (kBitsMinus87, kBitsMinusInf].
constexpr int32_t kBitsMinus87 = -1028784128;  // bits of -87.0f
constexpr int32_t kBitsMinusInf = -8388608;    // bits of -inf

// exp(z - m) for z <= m, the softmax numerator. The host's float version is branch-free
// arithmetic the compiler vectorizes (rows are 50k long; the clamp compares integers, which
// need no floating-point exception semantics); the device and double use the math library.
HERD_HD inline float softmax_exp(float z, float m) {
#if defined(__CUDA_ARCH__)
  return __expf(z - m);
#else
  // exp(x) = 2^k exp(r): k = round(x / ln 2), r = x - k ln 2 in about [-ln2/2, ln2/2] (ln 2
  // in two parts so that k ln 2 is subtracted without rounding), exp(r) by its degree-7
  // Taylor polynomial (relative error < 5e-7 in all). x in [-inf, -87) is taken as -87
  // (exp < 1.7e-38); NaN stays NaN.
  int32_t xb = float_bits(z - m);
  const int32_t low = -static_cast<int32_t>((xb > kBitsMinus87) & (xb <= kBitsMinusInf));
  xb = (xb & ~low) | (kBitsMinus87 & low);  // a mask, not a branch: loops stay vectorizable
  const float x = bits_float(xb);
  const int32_t ki = static_cast<int32_t>(x * 1.44269504088896341f - 0.5f);
  const float k = static_cast<float>(ki);
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
  float p = 1.9841269841269841e-4f;  // 1 / n!, Horner
  p = p * r + 1.3888888888888889e-3f;
  p = p * r + 8.3333333333333333e-3f;
  p = p * r + 4.1666666666666667e-2f;
  p = p * r + 1.6666666666666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * bits_float(static_cast<int32_t>(static_cast<uint32_t>(ki + 127) << 23));
#endif
}

HERD_HD inline double softmax_exp(double z, double m) {
#if defined(__CUDA_ARCH__)
  return exp(z - m);
#else
  return std::exp(z - m);
#endif
}

// loss of a row from its maximum m, exp-sum s and target logit z_t.
template <typename Acc>
HERD_HD inline Acc row_loss(Acc m, Acc s, Acc z_t) {
#if defined(__CUDA_ARCH__)
  return log(s) + m - z_t;
#else
  return std::log(s) + m - z_t;
#endif
}

// dz_j from e = exp(z_j - m), scale / s, and whether j is the target.
template <typename Acc>
HERD_HD inline Acc row_grad(Acc e, Acc scale_over_s, bool is_target, Acc scale) {
  return is_target ? e * scale_over_s - scale : e * scale_over_s;
}

// CUDA launcher (kernels/cross_entropy.cu): one block per row of z [rows, V] (contiguous), T =
// float, double or uint16_t (bfloat16 bits). Writes loss[r] (0 for ignored rows) and
// argmax[r]; with grad, z is overwritten by dz (scale per valid row). loss is float for
// float/bfloat16, double for double. Returns a cudaError_t as int.
template <typename T>
int cross_entropy_rows_cuda(T* z, int64_t rows, int64_t V, const int64_t* targets,
                            int64_t ignore_index, double scale, bool grad, void* loss,
                            int64_t* argmax, void* stream);

}  // namespace herd::kernels
