// herd bench ops: every fused op's ATen reference against herd's kernel, forward (no grad) and
// forward + backward, on the CPU and on CUDA when a device is present. One case table per op.
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/bench_cmds.h"
#include "cli/bench_common.h"
#include "core/error.h"
#include "ops/adamw.h"
#include "ops/add_layer_norm.h"
#include "ops/blockdiag_linear.h"
#include "ops/cross_entropy.h"
#include "ops/long_conv.h"
#include "ops/long_conv_monarch.h"
#include "ops/monarch_fft.h"
#include "ops/registry.h"
#include "ops/short_conv.h"
#include "ops/squared_relu.h"
#include "ops/ssm_kernel.h"

namespace herd::cli::bench {
namespace {

using Inputs = std::vector<torch::Tensor>;
using Fn = std::function<torch::Tensor(const Inputs&)>;

struct OpCase {
  std::string op, shape;
  std::function<Inputs(torch::Device)> inputs;  // leaves that require grad, and constants
  Fn reference, fused;
  bool has_backward = true;  // false: an in-place update (the optimizer step), timed once
  bool cuda_only = false;    // a CUDA path's variant: nothing to compare on the CPU
  // long_conv's CUDA transforms while the case runs (its forward and its backward).
  std::optional<ops::LongConvCudaPath> long_conv_path = std::nullopt;
};

torch::TensorOptions on(torch::Device dev) {
  return torch::TensorOptions().device(dev);
}

// (B, C, L, K) with x a transposed [B, L, C] activation, as Hyena/M2/Primer pass it.
OpCase short_conv_case(int64_t B, int64_t C, int64_t L, int64_t K) {
  return {
      "short_conv", str("B", B, " C", C, " L", L, " K", K, " x^T"),
      [=](torch::Device dev) {
        return Inputs{torch::randn({B, L, C}, on(dev)).requires_grad_(true),
                      torch::randn({C, 1, K}, on(dev)).requires_grad_(true),
                      torch::randn({C}, on(dev)).requires_grad_(true)};
      },
      [](const Inputs& in) {
        return ops::short_conv_reference(in[0].transpose(1, 2), in[1], in[2]);
      },
      [](const Inputs& in) { return ops::short_conv_fused(in[0].transpose(1, 2), in[1], in[2]); }};
}

// An FFN activation [tokens, hidden].
OpCase squared_relu_case(int64_t rows, int64_t cols) {
  return {"squared_relu", str(rows, " x ", cols),
          [=](torch::Device dev) {
            return Inputs{torch::randn({rows, cols}, on(dev)).requires_grad_(true)};
          },
          [](const Inputs& in) { return ops::squared_relu_reference(in[0]); },
          [](const Inputs& in) { return ops::squared_relu_fused(in[0]); }};
}

// An FFN activation with fc1's bias folded in (what the MLP calls).
OpCase bias_squared_relu_case(int64_t rows, int64_t cols) {
  return {"squared_relu", str(rows, " x ", cols, " +bias"),
          [=](torch::Device dev) {
            return Inputs{torch::randn({rows, cols}, on(dev)).requires_grad_(true),
                          torch::randn({cols}, on(dev)).requires_grad_(true)};
          },
          [](const Inputs& in) { return ops::squared_relu_reference(in[0], in[1]); },
          [](const Inputs& in) { return ops::squared_relu_fused(in[0], in[1]); }};
}

// The LM head: N tokens of width D against V classes, mean loss (the reference holds the
// [N, V] fp32 logits, the fused op chunks them).
OpCase cross_entropy_case(int64_t N, int64_t D, int64_t V) {
  return {
      "cross_entropy", str("N", N, " D", D, " V", V),
      [=](torch::Device dev) {
        return Inputs{torch::randn({N, D}, on(dev)).requires_grad_(true),
                      (torch::randn({V, D}, on(dev)) / 30).requires_grad_(true),
                      torch::randint(V, {N}, on(dev).dtype(torch::kLong))};
      },
      [](const Inputs& in) { return ops::linear_cross_entropy_reference(in[0], in[1], {}, in[2]); },
      [](const Inputs& in) { return ops::linear_cross_entropy_fused(in[0], in[1], {}, in[2]); }};
}

// A pre-norm block boundary: residual h plus a branch output, then LayerNorm; the loss sees
// both outputs (the sum continues the stream, the normed feeds the next branch).
OpCase add_layer_norm_case(int64_t rows, int64_t D) {
  auto both = [](const ops::AddNorm& r) { return torch::stack({r.sum, r.normed}); };
  return {"add_layer_norm", str(rows, " x ", D),
          [=](torch::Device dev) {
            return Inputs{torch::randn({rows, D}, on(dev)).requires_grad_(true),
                          torch::randn({rows, D}, on(dev)).requires_grad_(true),
                          torch::randn({D}, on(dev)).requires_grad_(true),
                          torch::randn({D}, on(dev)).requires_grad_(true)};
          },
          [=](const Inputs& in) {
            return both(ops::add_layer_norm_reference(in[0], in[1], in[2], in[3], 1e-5));
          },
          [=](const Inputs& in) {
            return both(ops::add_layer_norm_fused(in[0], in[1], in[2], in[3], 1e-5));
          }};
}

// One AdamW step over GPT-style parameters (a few matrices and vectors, n_params in all).
OpCase adamw_case(int64_t d, int64_t layers) {
  struct Params {
    std::vector<torch::Tensor> grads;
    std::vector<torch::optim::AdamWParamState> states;
    torch::optim::AdamWOptions options{1e-4};
  };
  auto held = std::make_shared<Params>();
  held->options.weight_decay(0.1);
  auto step = [held](const Inputs& in, bool fused) {
    std::vector<ops::AdamWParam> ps;
    for (size_t i = 0; i < in.size(); ++i)
      ps.push_back({in[i], held->grads[i], &held->states[i], &held->options});
    fused ? ops::adamw_step_fused(ps) : ops::adamw_step_reference(ps);
    return torch::Tensor();
  };
  int64_t n = 0;
  for (int64_t l = 0; l < layers; ++l) n += 12 * d * d + 13 * d;
  OpCase c{"adamw", str(layers, " layers d", d, " (", n / 1000000, "M params)"),
           [=](torch::Device dev) {
             Inputs in;
             held->grads.clear();
             held->states.clear();
             for (int64_t l = 0; l < layers; ++l)
               for (auto shape : std::vector<std::vector<int64_t>>{{3 * d, d},
                                                                   {3 * d},
                                                                   {d, d},
                                                                   {d},
                                                                   {4 * d, d},
                                                                   {4 * d},
                                                                   {d, 4 * d},
                                                                   {d},
                                                                   {d},
                                                                   {d},
                                                                   {d},
                                                                   {d}})
                 in.push_back(torch::randn(shape, on(dev)));
             held->states.resize(in.size());
             for (size_t i = 0; i < in.size(); ++i) {
               held->grads.push_back(torch::randn_like(in[i]));
               held->states[i].exp_avg(torch::zeros_like(in[i]));
               held->states[i].exp_avg_sq(torch::zeros_like(in[i]));
             }
             return in;
           },
           [=](const Inputs& in) { return step(in, false); },
           [=](const Inputs& in) { return step(in, true); }};
  c.has_backward = false;
  return c;
}

// Hyena/M2's gated long conv: x, pre and post are channel chunks of one [B, 3C, L] short-conv
// output, the kernel a [C, L] filter, D the skip; bidirectional adds M2's reverse taps.
OpCase long_conv_case(int64_t B, int64_t C, int64_t L, bool bidirectional) {
  return {"long_conv",
          str("B", B, " C", C, " L", L, bidirectional ? " bidir" : " causal", " gated"),
          [=](torch::Device dev) {
            Inputs in{torch::randn({B, 3 * C, L}, on(dev)).requires_grad_(true),
                      (torch::randn({C, L}, on(dev)) / 100).requires_grad_(true),
                      torch::randn({C}, on(dev)).requires_grad_(true)};
            if (bidirectional)
              in.push_back((torch::randn({C, L}, on(dev)) / 100).requires_grad_(true));
            return in;
          },
          [=](const Inputs& in) {
            auto z = in[0].chunk(3, 1);
            return ops::long_conv_reference(
                {z[2], in[1], in[2], z[0], z[1], bidirectional ? in[3] : torch::Tensor()});
          },
          [=](const Inputs& in) {
            auto z = in[0].chunk(3, 1);
            return ops::long_conv_fused(
                {z[2], in[1], in[2], z[0], z[1], bidirectional ? in[3] : torch::Tensor()});
          }};
}

// The gated long conv in bfloat16 (Hyena under autocast) on one CUDA path
// (ops/long_conv_monarch.h): the Monarch tensor-core kernel or cuFFT, each against the ATen
// reference (cuFFT in float32).
OpCase long_conv_bf16_case(int64_t B, int64_t C, int64_t L, ops::LongConvCudaPath path) {
  OpCase c = long_conv_case(B, C, L, false);
  c.op = str("long_conv_", ops::long_conv_cuda_path_name(path));
  c.shape = str("B", B, " C", C, " L", L, " bf16 gated");
  c.cuda_only = true;
  c.long_conv_path = path;
  c.inputs = [=](torch::Device dev) {
    return Inputs{torch::randn({B, 3 * C, L}, on(dev).dtype(torch::kBFloat16)).requires_grad_(true),
                  (torch::randn({C, L}, on(dev)) / 100).requires_grad_(true),
                  torch::randn({C}, on(dev)).requires_grad_(true)};
  };
  return c;
}

// The long conv as Monarch-decomposed GEMMs (ops/monarch_fft.h; bfloat16 GEMMs on CUDA, the
// tensor-core form, float32 on the CPU) against the FFT reference, ungated.
OpCase monarch_fft_conv_case(int64_t B, int64_t C, int64_t L) {
  return {"monarch_fft_conv", str("B", B, " C", C, " L", L),
          [=](torch::Device dev) {
            return Inputs{torch::randn({B, C, L}, on(dev)).requires_grad_(true),
                          (torch::randn({C, L}, on(dev)) / 100).requires_grad_(true),
                          torch::randn({C}, on(dev)).requires_grad_(true)};
          },
          [](const Inputs& in) {
            return ops::long_conv_reference({in[0], in[1], in[2]});
          },
          [](const Inputs& in) {
            return ops::monarch_fft_conv(in[0], in[1], in[2],
                                         in[0].is_cuda() ? torch::kBFloat16 : torch::kFloat32);
          }};
}

// M2's GLU linears: [tokens, in] through nb blocks to out features.
OpCase blockdiag_case(int64_t rows, int64_t in, int64_t out, int64_t nb) {
  return {
      "blockdiag_linear", str(rows, " x ", in, " -> ", out, " nb", nb),
      [=](torch::Device dev) {
        return Inputs{torch::randn({rows, in}, on(dev)).requires_grad_(true),
                      torch::randn({nb, out / nb, in / nb}, on(dev)).requires_grad_(true),
                      torch::randn({out}, on(dev)).requires_grad_(true)};
      },
      [=](const Inputs& in) { return ops::blockdiag_linear_reference(in[0], in[1], out, in[2]); },
      [=](const Inputs& in) { return ops::blockdiag_linear_fused(in[0], in[1], out, in[2]); }};
}

// H3's diagonal SSM kernel: H channels, N/2 complex modes, L positions (S4D-Lin modes).
OpCase ssm_kernel_case(int64_t H, int64_t N2, int64_t L) {
  return {
      "ssm_kernel", str("H", H, " N/2 ", N2, " L", L),
      [=](torch::Device dev) {
        auto o = on(dev);
        auto re = -0.5 * torch::rand({H, N2}, o) * 0.1;
        auto im = M_PI * torch::arange(N2, o).unsqueeze(0).expand({H, N2}) * 0.01;
        return Inputs{
            torch::complex(torch::randn({H, N2}, o), torch::randn({H, N2}, o)).requires_grad_(true),
            torch::complex(re, im).requires_grad_(true)};
      },
      [=](const Inputs& in) { return ops::ssm_vandermonde_reference(in[0], in[1], L); },
      [=](const Inputs& in) { return ops::ssm_vandermonde_fused(in[0], in[1], L); }};
}

std::vector<OpCase> op_cases() {
  return {ssm_kernel_case(768, 32, 2048),
          blockdiag_case(4096, 768, 6144, 4),
          blockdiag_case(4096, 3072, 768, 4),
          long_conv_case(1, 768, 8192, false),
          long_conv_case(1, 768, 8192, true),
          long_conv_case(4, 768, 1024, false),
          long_conv_bf16_case(1, 768, 8192, ops::LongConvCudaPath::monarch),
          long_conv_bf16_case(1, 768, 8192, ops::LongConvCudaPath::cufft),
          long_conv_bf16_case(1, 768, 16384, ops::LongConvCudaPath::monarch),
          long_conv_bf16_case(1, 768, 16384, ops::LongConvCudaPath::cufft),
          monarch_fft_conv_case(1, 768, 8192),
          short_conv_case(4, 384, 256, 3),
          short_conv_case(1, 2304, 1024, 3),
          short_conv_case(2, 768, 1024, 7),
          squared_relu_case(1024, 3072),
          squared_relu_case(4096, 3072),
          bias_squared_relu_case(4096, 3072),
          add_layer_norm_case(4096, 768),
          cross_entropy_case(2048, 768, 50257),
          adamw_case(768, 4)};
}

}  // namespace

void run_ops_bench(const OpsArgs& a) {
  std::vector<torch::Device> devices;
  if (a.device != "cuda") devices.push_back(torch::kCPU);
  if (a.device != "cpu") {
    if (torch::cuda::is_available() && ops::cuda_kernels_compiled())
      devices.push_back(torch::kCUDA);
    else if (a.device == "cuda")
      throw Error("bench ops: --device cuda needs a CUDA device and a build with nvcc");
  }
  auto cases = op_cases();
  for (const auto& name : a.ops) {
    const bool known =
        std::any_of(cases.begin(), cases.end(), [&](const OpCase& c) { return c.op == name; });
    HERD_CHECK(known, "--ops: no benchmark for op \"", name, "\"");
  }
  print_machine(std::cout);
  std::printf("\n%-16s %-5s %-30s %-8s %12s %10s %8s\n", "op", "dev", "shape (float32)", "pass",
              "reference ms", "fused ms", "speedup");
  std::vector<JsonObject> json;
  for (const auto dev : devices)
    for (const auto& c : cases) {
      if (!a.ops.empty() && std::find(a.ops.begin(), a.ops.end(), c.op) == a.ops.end()) continue;
      if (c.cuda_only && !dev.is_cuda()) continue;
      struct PathScope {  // the case's long_conv path, the user's again after it
        ops::LongConvCudaPath before;
        explicit PathScope(std::optional<ops::LongConvCudaPath> p)
            : before(ops::set_long_conv_cuda_path(p.value_or(ops::long_conv_cuda_path()))) {}
        ~PathScope() { ops::set_long_conv_cuda_path(before); }
      } path_scope(c.long_conv_path);
      torch::manual_seed(0);
      const auto in = c.inputs(dev);
      const auto g = c.has_backward ? torch::randn_like(c.reference(in)) : torch::Tensor();
      for (const bool backward : {false, true}) {
        if (backward && !c.has_backward) continue;
        auto timed = [&](const Fn& f) {
          return time_ms(
              [&] {
                if (!backward) {
                  torch::NoGradGuard no_grad;
                  f(in);
                  return;
                }
                for (const auto& t : in) t.mutable_grad() = torch::Tensor();
                f(in).backward(g);
              },
              dev, a.warmup, a.iters);
        };
        const double ref = timed(c.reference), fused = timed(c.fused);
        const char* pass = !c.has_backward ? "step" : backward ? "fwd+bwd" : "fwd";
        std::printf("%-16s %-5s %-30s %-8s %12.3f %10.3f %7.2fx\n", c.op.c_str(),
                    dev.is_cuda() ? "cuda" : "cpu", c.shape.c_str(), pass, ref, fused, ref / fused);
        std::fflush(stdout);
        json.push_back(JsonObject()
                           .text("op", c.op)
                           .text("shape", c.shape)
                           .text("device", dev.is_cuda() ? "cuda" : "cpu")
                           .text("pass", pass)
                           .num("reference_ms", ref)
                           .num("fused_ms", fused)
                           .num("speedup", ref / fused));
      }
    }
  if (!a.json.empty()) {
    write_json_list(a.json, json);
    std::cout << "wrote " << a.json << "\n";
  }
}

}  // namespace herd::cli::bench
