// CUDA-only (include from .cu files): bfloat16 travels as uint16_t through the torch-free
// launcher interface; device code sees the real type through DeviceType<T>.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace herd::kernels {

template <typename T>
struct DeviceTypeOf {
  using type = T;
};
template <>
struct DeviceTypeOf<uint16_t> {
  using type = __nv_bfloat16;
};
template <typename T>
using DeviceType = typename DeviceTypeOf<T>::type;

}  // namespace herd::kernels
