// c10d backends, one file each so Gloo's and NCCL's headers stay out of everything else.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace herd::dist {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout);

// Makes `device` (CUDA, with index) current and binds the group to it. Throws herd::Error in
// a build without NCCL (no CUDA toolkit or nccl.h at configure time).
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    at::Device device);
bool nccl_compiled();

}  // namespace herd::dist
