// Long filters distilled into a few complex modes, for O(1)-per-token generation (the idea of
// Massaroli et al. 2023, "Laughing Hyena Distillery"; herd's own fit): a causal filter
// k[c, l], l = 0..L-1, is approximated by k[c, l] ~ 2 Re(sum_n Ct[c, n] dA[c, n]^l), the
// kernel of a diagonal SSM that DiagSSMStream runs as a recurrence.
// The fit is the eigensystem realization (Ho-Kalman): the Hankel matrix of k, its rank-`order`
// truncated SVD gives a state-space (A, b, c) with k[l] ~ c A^l b; diagonalising A gives the
// modes dA = eig(A) and the residues Ct = (c W)(W^-1 b) / 2. Exact for a filter that is a sum
// of `order` damped exponentials; for a learned filter the error is measured and reported.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace herd {

struct ModalFilter {
  torch::Tensor Ct, dA;       // complex [C, order]
  double relative_error = 0;  // ||k - k_modal|| / ||k|| over all L taps, worst channel
};

// k: [C, L] real; 1 <= order. The Hankel matrix is min((L + 1) / 2, 256) wide (taps beyond
// twice that are extrapolated by the modes); order is capped at its width.
ModalFilter distill_filter(const torch::Tensor& k, int64_t order);

// The modal kernel 2 Re(sum_n Ct dA^l), l < L: [C, L] real (float64).
torch::Tensor modal_kernel(const ModalFilter& f, int64_t L);

}  // namespace herd
