// CUDA half of long_conv: allocates the batched FFT buffers, fills kernels::LongConvCuda and
// runs the steps of kernels/long_conv.cuh through kernels/long_conv.cu on the current stream.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include <type_traits>

#include "core/error.h"
#include "kernels/long_conv.cuh"
#include "ops/long_conv_impl.h"

namespace herd::ops::detail {
namespace {

namespace K = kernels;

// The element type at the launcher interface: bfloat16 travels as its uint16_t bits.
template <typename T>
using Wire = std::conditional_t<std::is_same_v<T, c10::BFloat16>, uint16_t, T>;

template <typename T>
K::Rows3<Wire<T>> rows(const torch::Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {reinterpret_cast<const Wire<T>*>(t.data_ptr<T>()), t.stride(0), t.stride(1), t.stride(2)};
}

template <typename Acc>
Acc* ptr(const torch::Tensor& t) {
  return t.defined() ? t.data_ptr<Acc>() : nullptr;
}

template <typename T>
Wire<T>* out(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<Wire<T>*>(t.data_ptr<T>()) : nullptr;
}

// Inputs, dims and the four scratch buffers shared by both passes.
template <typename T, typename Acc>
K::LongConvCuda<Wire<T>, Acc> setup(const LongConvInputs& in, int64_t n,
                                    std::vector<torch::Tensor>& keep) {
  K::LongConvCuda<Wire<T>, Acc> a{};
  const int64_t L = in.x.size(2), B = in.x.size(0), C = in.x.size(1);
  const int64_t Lf = std::min<int64_t>(in.k.size(1), L);
  const int64_t Lr = in.k_rev.defined() ? std::min<int64_t>(in.k_rev.size(1), L - 1) : 0;
  a.d = {B, C, L, Lf, Lr, n, n / 2 + 1};
  a.x = rows<T>(in.x);
  a.pre = rows<T>(in.pre);
  a.post = rows<T>(in.post);
  a.kf = in.k.data_ptr<Acc>();
  a.kf_stride = in.k.stride(0);
  a.kr = ptr<Acc>(in.k_rev);
  a.kr_stride = in.k_rev.defined() ? in.k_rev.stride(0) : 0;
  a.D = ptr<Acc>(in.D);
  a.D_stride = in.D.defined() ? in.D.stride(0) : 0;
  a.Lk = in.k.size(1);
  a.Lk_rev = in.k_rev.defined() ? in.k_rev.size(1) : 0;
  const auto ro = in.x.options().dtype(c10::CppTypeToScalarType<Acc>::value);
  const auto co = in.x.options().dtype(std::is_same_v<Acc, double> ? torch::kComplexDouble
                                                                   : torch::kComplexFloat);
  keep = {torch::empty({B * C, n}, ro), torch::empty({B * C, n}, ro),
          torch::empty({B * C, a.d.bins}, co), torch::empty({B * C, a.d.bins}, co),
          torch::empty({C, a.d.bins}, co)};
  a.real0 = keep[0].data_ptr<Acc>();
  a.real1 = keep[1].data_ptr<Acc>();
  a.spec0 = reinterpret_cast<K::Cx<Acc>*>(keep[2].data_ptr());
  a.spec1 = reinterpret_cast<K::Cx<Acc>*>(keep[3].data_ptr());
  a.kspec = reinterpret_cast<K::Cx<Acc>*>(keep[4].data_ptr());
  return a;
}

void check(int err, const char* what) {
  HERD_CHECK(err == 0, "long_conv: CUDA ", what, " failed: ", K::cuda_error_string(err), " (", err,
             ")");
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

torch::Tensor long_conv_forward_cuda(const LongConvInputs& in, int64_t n) {
  c10::DeviceGuard guard(in.x.device());
  auto y = torch::empty({in.x.size(0), in.x.size(2), in.x.size(1)}, in.x.options());
  AT_DISPATCH_FLOATING_TYPES_AND(
      torch::kBFloat16, in.x.scalar_type(), "long_conv_forward_cuda", [&] {
        using Acc = AccOf<scalar_t>;
        std::vector<torch::Tensor> keep;
        auto a = setup<scalar_t, Acc>(in, n, keep);
        a.y = out<scalar_t>(y);
        check(K::long_conv_forward_cuda(a, at::cuda::getCurrentCUDAStream().stream()), "forward");
      });
  return y.transpose(1, 2);
}

LongConvGrads long_conv_backward_cuda(const LongConvInputs& in, const torch::Tensor& dy, int64_t n,
                                      const LongConvNeeds& need) {
  c10::DeviceGuard guard(in.x.device());
  const int64_t B = in.x.size(0), C = in.x.size(1), L = in.x.size(2);
  LongConvGrads g;
  const auto xo = in.x.options();
  if (need.dx) g.dx = torch::empty({B, C, L}, xo);
  if (need.dpre) g.dpre = torch::empty({B, C, L}, xo);
  if (need.dpost) g.dpost = torch::empty({B, C, L}, xo);
  if (need.dk) g.dk = torch::empty({C, in.k.size(1)}, in.k.options());
  if (need.dk_rev) g.dk_rev = torch::empty({C, in.k_rev.size(1)}, in.k_rev.options());
  if (need.dD) g.dD = torch::empty({C}, in.D.options());
  AT_DISPATCH_FLOATING_TYPES_AND(
      torch::kBFloat16, in.x.scalar_type(), "long_conv_backward_cuda", [&] {
        using Acc = AccOf<scalar_t>;
        std::vector<torch::Tensor> keep;
        auto a = setup<scalar_t, Acc>(in, n, keep);
        a.dy = rows<scalar_t>(dy);
        a.dx = out<scalar_t>(g.dx);
        a.dpre = out<scalar_t>(g.dpre);
        a.dpost = out<scalar_t>(g.dpost);
        a.dk = ptr<Acc>(g.dk);
        a.dk_rev = ptr<Acc>(g.dk_rev);
        a.dD = ptr<Acc>(g.dD);
        torch::Tensor dkc;
        if (need.dk || need.dk_rev) {
          dkc = torch::empty({C, n}, in.k.options());
          a.dkc = dkc.data_ptr<Acc>();
        }
        check(K::long_conv_backward_cuda(a, at::cuda::getCurrentCUDAStream().stream()), "backward");
      });
  return g;
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
