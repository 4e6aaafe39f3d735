// CUDA half of long_conv: allocates the batched FFT buffers, fills kernels::LongConvCuda and
// runs the steps of kernels/long_conv.cuh through kernels/long_conv.cu on the current stream,
// or those of kernels/monarch_conv.cuh (ops/long_conv_monarch.h says which).
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include <map>
#include <mutex>
#include <type_traits>

#include "core/error.h"
#include "kernels/long_conv.cuh"
#include "kernels/monarch_conv.cuh"
#include "ops/long_conv_impl.h"
#include "ops/long_conv_monarch.h"
#include "ops/monarch_fft.h"

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

// What a pass needs besides the kernel spectrum: the cuFFT path's four batched buffers, or
// for the Monarch path only the two batched spectra of the kernel gradient (or nothing).
enum class Scratch { cufft, monarch_spectra, monarch };

// Inputs, dims and the scratch buffers of a pass.
template <typename T, typename Acc>
K::LongConvCuda<Wire<T>, Acc> setup(const LongConvInputs& in, int64_t n,
                                    std::vector<torch::Tensor>& keep,
                                    Scratch scratch = Scratch::cufft) {
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
  const bool cufft = scratch == Scratch::cufft;
  const int64_t spec_rows = scratch == Scratch::monarch ? 0 : B * C;
  keep = {torch::empty({cufft ? B * C : 0, n}, ro), torch::empty({cufft ? B * C : C, n}, ro),
          torch::empty({spec_rows, a.d.bins}, co), torch::empty({spec_rows, a.d.bins}, co),
          torch::empty({C, a.d.bins}, co)};
  a.real0 = keep[0].data_ptr<Acc>();
  a.real1 = keep[1].data_ptr<Acc>();  // the Monarch path's kernel taps [C, n]
  a.spec0 = reinterpret_cast<K::Cx<Acc>*>(keep[2].data_ptr());
  a.spec1 = reinterpret_cast<K::Cx<Acc>*>(keep[3].data_ptr());
  a.kspec = reinterpret_cast<K::Cx<Acc>*>(keep[4].data_ptr());
  return a;
}

void check(int err, const char* what) {
  HERD_CHECK(err == 0, "long_conv: CUDA ", what, " failed: ", K::cuda_error_string(err), " (", err,
             ")");
}

// The backward's dy and gradient outputs into a (null where not asked for), and the [C, n]
// kernel-gradient scratch when dk or dk_rev is (returned: it must outlive the launch).
template <typename T, typename Acc>
torch::Tensor bind_grads(K::LongConvCuda<Wire<T>, Acc>& a, const LongConvInputs& in,
                         const torch::Tensor& dy, int64_t n, const LongConvGrads& g) {
  a.dy = rows<T>(dy);
  a.dx = out<T>(g.dx);
  a.dpre = out<T>(g.dpre);
  a.dpost = out<T>(g.dpost);
  a.dk = ptr<Acc>(g.dk);
  a.dk_rev = ptr<Acc>(g.dk_rev);
  a.dD = ptr<Acc>(g.dD);
  if (!g.dk.defined() && !g.dk_rev.defined()) return {};
  auto dkc = torch::empty({in.x.size(1), n}, in.k.options());
  a.dkc = dkc.data_ptr<Acc>();
  return dkc;
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

// The Monarch factors of one N on one device, made once: bfloat16 [F1r, F1i, F2r, F2i, -F2i]
// and float32 [Tr, Ti].
K::MonarchTables monarch_tables(int64_t N, const torch::Device& dev) {
  static std::mutex mu;
  struct Slot {
    torch::Tensor bf, tw;
    int64_t N1 = 0;
  };
  static std::map<std::pair<int, int64_t>, Slot> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{dev.index(), N}];
  if (!slot.bf.defined()) {
    const auto p = MonarchFft::plan(N);
    slot.N1 = p.N1;
    auto flat = [](const torch::Tensor& t) { return t.reshape({-1}); };
    slot.bf = torch::cat({flat(p.f1r), flat(p.f1i), flat(p.f2r), flat(p.f2i), flat(-p.f2i)})
                  .to(torch::kBFloat16)
                  .to(dev);
    slot.tw = torch::cat({flat(p.twr), flat(p.twi)}).to(torch::kFloat).to(dev);
  }
  const auto* h = reinterpret_cast<const uint16_t*>(slot.bf.data_ptr());
  const float* tw = slot.tw.data_ptr<float>();
  const int64_t N1 = slot.N1, N2 = N / N1;
  return {N,
          N1,
          N2,
          h,
          h + N1 * N1,
          h + 2 * N1 * N1,
          h + 2 * N1 * N1 + N2 * N2,
          h + 2 * N1 * N1 + 2 * N2 * N2,
          tw,
          tw + N};
}

// The Monarch transform length for this call, or 0 for the cuFFT path.
int64_t monarch_size_for(const LongConvInputs& in) {
  const auto path = long_conv_cuda_path();
  if (path == LongConvCudaPath::cufft) return 0;
  const auto dt = in.x.scalar_type();
  const int64_t N = long_conv_monarch_size(in.x.size(2), in.k.size(1),
                                           in.k_rev.defined() ? in.k_rev.size(1) : -1);
  if (path == LongConvCudaPath::automatic)
    return dt == torch::kBFloat16 && N <= K::monarch_conv_max_fft() ? N : 0;
  HERD_CHECK(dt == torch::kBFloat16 || dt == torch::kFloat,
             "long_conv: the Monarch kernel takes bfloat16 or float32 activations, got ", dt);
  HERD_CHECK(N <= K::monarch_conv_max_fft(), "long_conv: a Monarch transform of ", N,
             " points does not fit this device's shared memory (largest: ",
             K::monarch_conv_max_fft(), "); set HERD_LONG_CONV_CUDA=cufft or auto");
  return N;
}

// A block of the Monarch kernel reads one (b, c) row: rows must have unit t-stride for its
// loads to coalesce (the blocks pass transposed [B, L, C] views), so those are copied.
torch::Tensor unit_rows(const torch::Tensor& t) {
  return t.defined() && t.stride(2) != 1 ? t.contiguous() : t;
}
LongConvInputs unit_rows(LongConvInputs in) {
  in.x = unit_rows(in.x);
  in.pre = unit_rows(in.pre);
  in.post = unit_rows(in.post);
  return in;
}

template <typename scalar_t>
void monarch_forward(const LongConvInputs& in, int64_t N, const torch::Tensor& y) {
  std::vector<torch::Tensor> keep;
  auto a = setup<scalar_t, float>(in, N, keep, Scratch::monarch);
  a.y = out<scalar_t>(y);
  check(K::long_conv_monarch_forward_cuda(a, monarch_tables(N, in.x.device()),
                                          at::cuda::getCurrentCUDAStream().stream()),
        "Monarch forward");
}

template <typename scalar_t>
void monarch_backward(const LongConvInputs& in, const torch::Tensor& dy, int64_t N,
                      const LongConvNeeds& need, LongConvGrads& g) {
  std::vector<torch::Tensor> keep;
  const bool dk = need.dk || need.dk_rev;
  auto a = setup<scalar_t, float>(in, N, keep, dk ? Scratch::monarch_spectra : Scratch::monarch);
  const torch::Tensor dkc = bind_grads<scalar_t, float>(a, in, dy, N, g);
  check(K::long_conv_monarch_backward_cuda(a, monarch_tables(N, in.x.device()),
                                           at::cuda::getCurrentCUDAStream().stream()),
        "Monarch backward");
}

}  // namespace

torch::Tensor long_conv_forward_cuda(const LongConvInputs& in, int64_t n) {
  c10::DeviceGuard guard(in.x.device());
  auto y = torch::empty({in.x.size(0), in.x.size(2), in.x.size(1)}, in.x.options());
  if (const int64_t N = monarch_size_for(in)) {
    auto rows_y = torch::empty(in.x.sizes(), in.x.options());  // [B, C, L] on this path
    const auto ur = unit_rows(in);
    if (in.x.scalar_type() == torch::kBFloat16)
      monarch_forward<c10::BFloat16>(ur, N, rows_y);
    else
      monarch_forward<float>(ur, N, rows_y);
    return rows_y;
  }
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
  if (const int64_t N = monarch_size_for(in)) {
    const auto ur = unit_rows(in);
    const auto dy_rows = unit_rows(dy);
    if (in.x.scalar_type() == torch::kBFloat16)
      monarch_backward<c10::BFloat16>(ur, dy_rows, N, need, g);
    else
      monarch_backward<float>(ur, dy_rows, N, need, g);
    return g;
  }
  AT_DISPATCH_FLOATING_TYPES_AND(
      torch::kBFloat16, in.x.scalar_type(), "long_conv_backward_cuda", [&] {
        using Acc = AccOf<scalar_t>;
        std::vector<torch::Tensor> keep;
        auto a = setup<scalar_t, Acc>(in, n, keep);
        const torch::Tensor dkc = bind_grads<scalar_t, Acc>(a, in, dy, n, g);
        check(K::long_conv_backward_cuda(a, at::cuda::getCurrentCUDAStream().stream()), "backward");
      });
  return g;
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
