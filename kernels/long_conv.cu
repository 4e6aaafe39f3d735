// CUDA launchers for the gated long convolution's cuFFT path: the steps of
// kernels/long_conv.cuh run by the executor of kernels/long_conv_exec.cuh.
#include "kernels/long_conv_exec.cuh"

namespace herd::kernels {
using detail::CudaExec;
using detail::on_device;

template <typename T, typename Acc>
int long_conv_forward_cuda(const LongConvCuda<T, Acc>& a, void* stream) {
  CudaExec<Acc> ex{static_cast<cudaStream_t>(stream)};
  return long_conv_forward_steps(ex, on_device(a));
}

template <typename T, typename Acc>
int long_conv_backward_cuda(const LongConvCuda<T, Acc>& a, void* stream) {
  CudaExec<Acc> ex{static_cast<cudaStream_t>(stream)};
  return long_conv_backward_steps(ex, on_device(a));
}

#define HERD_INSTANTIATE(T, Acc)                                                   \
  template int long_conv_forward_cuda<T, Acc>(const LongConvCuda<T, Acc>&, void*); \
  template int long_conv_backward_cuda<T, Acc>(const LongConvCuda<T, Acc>&, void*);
HERD_INSTANTIATE(float, float)
HERD_INSTANTIATE(double, double)
HERD_INSTANTIATE(uint16_t, float)

}  // namespace herd::kernels
