// Cached (incremental) evaluation of causal mixers for generation. A layer's MixerCache holds
// what its mixer needs to produce the next positions without recomputing the prefix:
//   attention / primer: keys and values (primer also the last K-1 projected rows for its dconv)
//   hyena / m2 (causal): the short-conv tail and every long convolution's input stream; a new
//     position is one direct dot product per channel over the stream (O(L)), a prompt is
//     prefilled by FFT
//     (or, distilled, O(order): FilterStream and blocks/distill.h)
//   h3: the shift SSM's last N inputs and the diagonal SSM's complex state (O(1) per position,
//     the reference's step())
// SequenceMixerImpl::step's default keeps the input history and reruns forward() on it, so a
// mixer without its own cache still generates correctly.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>

namespace herd {

struct MixerCache {
  virtual ~MixerCache() = default;
  int64_t length = 0;   // positions consumed so far
  int64_t max_len = 0;  // capacity
};

// The default cache: the mixer's input so far, [B, max_len, D].
struct HistoryCache : MixerCache {
  torch::Tensor x;
};

// y = k * u + D u along the sequence, fed T >= 1 positions at a time: T == 1 is a direct sum
// over the stored stream, T > 1 (a prompt) one FFT convolution of the whole stream.
class ConvStream {
 public:
  ConvStream() = default;
  // k: [C, Lk] causal taps (Lk may be < max_len: later taps are zero); D: [C] or undefined.
  ConvStream(torch::Tensor k, torch::Tensor D, int64_t batch, int64_t max_len);
  torch::Tensor push(const torch::Tensor& u);  // [B, C, T] -> [B, C, T]

 private:
  torch::Tensor k_, k_flipped_, D_, stream_;  // stream_: [B, C, max_len]
  int64_t length_ = 0;
};

// A causal depthwise convolution (weight [C, 1, K], bias [C] or undefined) fed T positions at a
// time: it keeps the last K-1 inputs (zeros before the first, as the causal padding).
class ShortConvStream {
 public:
  ShortConvStream() = default;
  ShortConvStream(torch::Tensor weight, torch::Tensor bias, int64_t batch);
  torch::Tensor push(const torch::Tensor& z);  // [B, C, T] -> [B, C, T]

 private:
  torch::Tensor weight_, bias_, tail_;  // tail_: [B, C, K-1]
};

// The diagonal SSM as a recurrence: s[t] = dA s[t-1] + u[t], y[t] = 2 Re(sum_n Ct_n s_n[t]) + D
// u[t] (the same sum as the kernel K[l] = 2 Re(sum_n Ct_n dA_n^l)).
class DiagSSMStream {
 public:
  DiagSSMStream() = default;
  // Ct, dA: complex [C, N2]; D: [C] or undefined.
  DiagSSMStream(torch::Tensor Ct, torch::Tensor dA, torch::Tensor D, int64_t batch);
  torch::Tensor push(const torch::Tensor& u);  // [B, C, T] -> [B, C, T]

 private:
  torch::Tensor Ct_, dA_, D_, state_;  // state_: complex [B, C, N2]
};

// An implicit long filter's stream in generation (hyena, causal m2): exact (ConvStream, O(L)
// per position) or, under a DistillScope with order > 0, its filter distilled into that many
// complex modes (blocks/distill.h) and run as a DiagSSMStream (O(order) per position,
// approximate: the fit's error is kept in relative_error).
class FilterStream {
 public:
  FilterStream() = default;
  FilterStream(torch::Tensor k, torch::Tensor D, int64_t batch, int64_t max_len);
  torch::Tensor push(const torch::Tensor& u);  // [B, C, T] -> [B, C, T]
  double relative_error = 0;

 private:
  std::optional<ConvStream> exact_;
  std::optional<DiagSSMStream> modal_;
};

// The distillation order of the FilterStreams built while it lives (0: exact; the default).
class DistillScope {
 public:
  explicit DistillScope(int64_t order);
  ~DistillScope();
  DistillScope(const DistillScope&) = delete;
  DistillScope& operator=(const DistillScope&) = delete;
  static int64_t order();
  // The worst relative filter error of the streams distilled in this scope so far.
  static double worst_error();

 private:
  int64_t previous_order_;
  double previous_error_;
};

}  // namespace herd
