// CPU fast path of the AdamW step: every parameter's elements cut into pieces of about
// kPiece, all pieces of all parameters in one at::parallel_for, each piece one loop over
// kernels/adamw.cuh's adamw_point (p, g, m, v read once and written once).
#include <ATen/Parallel.h>

#include <algorithm>

#include "kernels/adamw.cuh"
#include "ops/adamw_impl.h"

namespace herd::ops::detail {
namespace {

constexpr int64_t kPiece = 1 << 16;

// x86-64: the loop compiled for AVX2+FMA when the CPU has them, so that the moment updates'
// fused multiply-adds are instructions (as in ATen's kernels) rather than libm calls; no other
// multiply-add is contracted (ATen rounds p * decay before adding the update).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HERD_ADAMW_FMA_TARGET __attribute__((target("avx2,fma"), optimize("fp-contract=off")))
bool cpu_has_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#else
#define HERD_ADAMW_FMA_TARGET
bool cpu_has_fma() {
  return false;
}
#endif

template <typename T>
void update_plain(T* p, const T* g, T* m, T* v, int64_t n, const kernels::AdamWScalars<T>& s) {
  for (int64_t i = 0; i < n; ++i) kernels::adamw_point(p[i], g[i], m[i], v[i], s);
}

template <typename T>
HERD_ADAMW_FMA_TARGET void update_fma(T* p, const T* g, T* m, T* v, int64_t n,
                                      const kernels::AdamWScalars<T>& s) {
  for (int64_t i = 0; i < n; ++i) kernels::adamw_point(p[i], g[i], m[i], v[i], s);
}

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
  const bool fma = cpu_has_fma();
  at::parallel_for(0, static_cast<int64_t>(pieces.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const auto& pc = pieces[i];
      const auto& j = jobs[pc.job];
      const int64_t n = pc.end - pc.begin, o = pc.begin;
      if (fma)
        update_fma(j.p + o, j.g + o, j.m + o, j.v + o, n, j.s);
      else
        update_plain(j.p + o, j.g + o, j.m + o, j.v + o, n, j.s);
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
                                   o.weight_decay(), st.step())});
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
