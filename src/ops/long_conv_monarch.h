// The CUDA path of long_conv has two ways to transform the activations: batched cuFFT plans
// (any length, float32 compute: kernels/long_conv.cu) and the Monarch kernel
// (kernels/monarch_conv.cuh: the DFTs as bfloat16 tensor-core GEMMs, one block per row with
// the row in shared memory, FlashFFTConv's scheme) for power-of-two transforms of 256 to
// 32768 points (L up to 16384) that fit the device's shared memory (all of them on H100/H200;
// up to 16384 on A100). `auto` takes the Monarch kernel for bfloat16 activations where it
// fits and cuFFT otherwise; HERD_LONG_CONV_CUDA=auto|cufft|monarch (read once) or
// set_long_conv_cuda_path() choose. `monarch` also runs float32 activations (rounded to
// bfloat16 inside) and fails with a one-line error where the transform does not fit. A
// Monarch block reads and writes one (b, c) row, so that path copies transposed inputs to
// unit-stride rows first and returns y as contiguous [B, C, L] rows.
#pragma once

#include <cstdint>
#include <string>

namespace herd::ops {

enum class LongConvCudaPath { automatic, cufft, monarch };

LongConvCudaPath long_conv_cuda_path();
// Returns the previous choice.
LongConvCudaPath set_long_conv_cuda_path(LongConvCudaPath p);
// "auto", "cufft", "monarch"; parse throws herd::Error naming the accepted values.
const char* long_conv_cuda_path_name(LongConvCudaPath p);
LongConvCudaPath parse_long_conv_cuda_path(const std::string& s);

// One line for herd info: the choice and, with a device, the largest Monarch N it takes.
std::string long_conv_cuda_path_summary();

// The Monarch transform length: the smallest power of two >= 256 with no wrap into [0, L)
// (lengths as long_conv_fft_size).
int64_t long_conv_monarch_size(int64_t L, int64_t Lk, int64_t Lk_rev);

}  // namespace herd::ops
