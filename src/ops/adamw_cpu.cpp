// CPU fast path of the AdamW step: every parameter's elements cut into pieces of about
// kPiece, all pieces of all parameters in one at::parallel_for, each piece one loop of
// kernels/adamw.cuh's adamw_point (p, g, m, v read once and written once).
#include <ATen/Parallel.h>

#include <algorithm>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERD_ADAMW_X86 1
#include <immintrin.h>
#else
#define HERD_ADAMW_X86 0
#endif

#include "kernels/adamw.cuh"
#include "ops/adamw_impl.h"

namespace herd::ops::detail {
namespace {

constexpr int64_t kPiece = 1 << 16;

template <typename T>
void update_plain(T* p, const T* g, T* m, T* v, int64_t n, const kernels::AdamWScalars<T>& s) {
  for (int64_t i = 0; i < n; ++i) kernels::adamw_point(p[i], g[i], m[i], v[i], s);
}

// x86-64 with AVX2+FMA: adamw_point's operations, in its order, on 8 floats / 4 doubles at a
// time. Written with intrinsics because the compiler does not vectorize sqrt under the default
// errno semantics. The rest of a piece (and other CPUs) runs adamw_point itself; the tests
// hold both to torch's AdamW.
#if HERD_ADAMW_X86
#define HERD_AVX2 __attribute__((target("avx2,fma")))

bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

HERD_AVX2 void update_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                           const kernels::AdamWScalars<float>& s) {
  const __m256 decay = _mm256_set1_ps(s.decay), b1 = _mm256_set1_ps(s.beta1),
               omb1 = _mm256_set1_ps(s.one_minus_beta1), b2 = _mm256_set1_ps(s.beta2),
               omb2 = _mm256_set1_ps(s.one_minus_beta2), step = _mm256_set1_ps(s.neg_step_size),
               c = _mm256_set1_ps(s.sqrt_bc2), eps = _mm256_set1_ps(s.eps);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 pv = _mm256_loadu_ps(p + i);
    if (s.decayed) pv = _mm256_mul_ps(pv, decay);
    const __m256 gv = _mm256_loadu_ps(g + i);
    const __m256 mv = _mm256_fmadd_ps(gv, omb1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
    const __m256 vv =
        _mm256_fmadd_ps(_mm256_mul_ps(omb2, gv), gv, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
    const __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vv), c), eps);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pv, _mm256_div_ps(_mm256_mul_ps(step, mv), den)));
    _mm256_storeu_ps(m + i, mv);
    _mm256_storeu_ps(v + i, vv);
  }
  for (; i < n; ++i) kernels::adamw_point(p[i], g[i], m[i], v[i], s);
}

HERD_AVX2 void update_avx2(double* p, const double* g, double* m, double* v, int64_t n,
                           const kernels::AdamWScalars<double>& s) {
  const __m256d decay = _mm256_set1_pd(s.decay), b1 = _mm256_set1_pd(s.beta1),
                omb1 = _mm256_set1_pd(s.one_minus_beta1), b2 = _mm256_set1_pd(s.beta2),
                omb2 = _mm256_set1_pd(s.one_minus_beta2), step = _mm256_set1_pd(s.neg_step_size),
                c = _mm256_set1_pd(s.sqrt_bc2), eps = _mm256_set1_pd(s.eps);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d pv = _mm256_loadu_pd(p + i);
    if (s.decayed) pv = _mm256_mul_pd(pv, decay);
    const __m256d gv = _mm256_loadu_pd(g + i);
    const __m256d mv = _mm256_fmadd_pd(gv, omb1, _mm256_mul_pd(_mm256_loadu_pd(m + i), b1));
    const __m256d vv =
        _mm256_fmadd_pd(_mm256_mul_pd(omb2, gv), gv, _mm256_mul_pd(_mm256_loadu_pd(v + i), b2));
    const __m256d den = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(vv), c), eps);
    _mm256_storeu_pd(p + i, _mm256_add_pd(pv, _mm256_div_pd(_mm256_mul_pd(step, mv), den)));
    _mm256_storeu_pd(m + i, mv);
    _mm256_storeu_pd(v + i, vv);
  }
  for (; i < n; ++i) kernels::adamw_point(p[i], g[i], m[i], v[i], s);
}

template <typename T>
void update(T* p, const T* g, T* m, T* v, int64_t n, const kernels::AdamWScalars<T>& s) {
  if (cpu_has_avx2())
    update_avx2(p, g, m, v, n, s);
  else
    update_plain(p, g, m, v, n, s);
}
#else
template <typename T>
void update(T* p, const T* g, T* m, T* v, int64_t n, const kernels::AdamWScalars<T>& s) {
  update_plain(p, g, m, v, n, s);
}
#endif

template <typename T>
struct Job {
  T *p, *m, *v;
  const T* g;
  kernels::AdamWScalars<T> s;
};

struct Piece {
  size_t job;
  int64_t begin, end;
};

template <typename T>
void run(const std::vector<Job<T>>& jobs, const std::vector<int64_t>& sizes) {
  std::vector<Piece> pieces;
  for (size_t j = 0; j < jobs.size(); ++j)
    for (int64_t b = 0; b < sizes[j]; b += kPiece)
      pieces.push_back({j, b, std::min(sizes[j], b + kPiece)});
  at::parallel_for(0, static_cast<int64_t>(pieces.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const auto& pc = pieces[i];
      const auto& j = jobs[pc.job];
      const int64_t n = pc.end - pc.begin, o = pc.begin;
      update(j.p + o, j.g + o, j.m + o, j.v + o, n, j.s);
    }
  });
}

template <typename T>
void step_dtype(const std::vector<const AdamWParam*>& params) {
  std::vector<Job<T>> jobs;
  std::vector<int64_t> sizes;
  for (const auto* a : params) {
    const auto& o = *a->options;
    auto& st = *a->state;
    st.step(st.step() + 1);
    jobs.push_back(
        {a->param.data_ptr<T>(), st.exp_avg().data_ptr<T>(), st.exp_avg_sq().data_ptr<T>(),
         a->grad.data_ptr<T>(),
         kernels::adamw_scalars<T>(o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(),
                                   adamw_decay_rate(*a), st.step())});
    sizes.push_back(a->param.numel());
  }
  run(jobs, sizes);
}

}  // namespace

void adamw_step_cpu(const std::vector<AdamWParam>& params) {
  std::vector<const AdamWParam*> f32, f64;
  for (const auto& a : params) (a.param.scalar_type() == torch::kDouble ? f64 : f32).push_back(&a);
  if (!f32.empty()) step_dtype<float>(f32);
  if (!f64.empty()) step_dtype<double>(f64);
}

}  // namespace herd::ops::detail
