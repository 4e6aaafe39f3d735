// herd info: versions and what this machine can run.
#include <torch/torch.h>

#include <iostream>

#include "cli/commands.h"
#include "dist/backends.h"
#include "ops/long_conv_monarch.h"
#include "ops/registry.h"

namespace herd::cli {

void add_info(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("info", "Print herd, torch, CUDA/cuDNN/NCCL availability and threads");
  cmd->footer("Example:\n  herd info");
  cmd->callback([] {
    std::cout << "herd        " << HERD_VERSION << "\n"
              << "torch       " << TORCH_VERSION << "\n"
              << "cuda        " << (torch::cuda::is_available() ? "available" : "not available")
              << " (devices: " << static_cast<int>(torch::cuda::device_count()) << ")\n"
              << "cudnn       "
              << (torch::cuda::cudnn_is_available() ? "available" : "not available") << "\n"
              << "dist        gloo"
              << (dist::nccl_compiled()
                      ? ", nccl"
                      : " (nccl not compiled: no CUDA toolkit or nccl.h at build)")
              << "\n"
#ifdef HERD_HAVE_CUDA_KERNELS
              << "kernels     CUDA kernels compiled (sm_80, sm_90)\n"
#else
              << "kernels     CUDA kernels not compiled (no nvcc at build time)\n"
#endif
              << "threads     " << torch::get_num_threads() << " intra-op, "
              << torch::get_num_interop_threads() << " inter-op; herd's parallel loops run on "
              << ops::parallel_loop_threads() << "\n";
    std::cout << "fused ops   path per target, from each op's supports() (HERD_KERNELS=reference: "
                 "all reference)\n";
    for (const auto& line : ops::fused_op_lines()) std::cout << "  " << line << "\n";
    const std::string long_conv = ops::long_conv_cuda_path_summary();  // may throw: bad env
    std::cout << "long conv   CUDA transforms: " << long_conv << "\n";
  });
}

}  // namespace herd::cli
