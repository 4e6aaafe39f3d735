#include "ops/implicit_filter.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "ops/fft_conv.h"

namespace herd::ops {

SinImpl::SinImpl(int64_t dim, double w, double w_mod_) : w_mod(w_mod_) {
  freq = register_parameter("freq", torch::full({1, dim}, w));
}

torch::Tensor SinImpl::forward(const torch::Tensor& x) {
  return w_mod == 1.0 ? torch::sin(freq * x) : torch::sin(w_mod * freq * x);
}

FilterMlpImpl::FilterMlpImpl(const ImplicitFilterOptions& o, Sin act_, bool owns_act)
    : act(std::move(act_)) {
  // Reference Sequential: 0 Linear, 1 Sin, (2+2i Linear, 3+2i Sin)..., last Linear without bias.
  const int64_t hidden = 1 + o.num_inner_mlps;
  for (int64_t i = 0; i <= hidden; ++i) {
    const int64_t in = i == 0 ? o.emb_dim : o.order;
    const int64_t out = i == hidden ? o.channels : o.order;
    auto lin = torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(i < hidden));
    linears.push_back(register_module(std::to_string(2 * i), lin));
    if (i == 0 && owns_act) register_module("1", act);
  }
}

torch::Tensor FilterMlpImpl::forward(const torch::Tensor& z) {
  auto h = z;
  for (size_t i = 0; i + 1 < linears.size(); ++i) h = act(linears[i](h));
  return linears.back()(h);
}

torch::Tensor FilterMlpImpl::forward_channels_first(const torch::Tensor& z) {
  auto h = z;
  for (size_t i = 0; i + 1 < linears.size(); ++i) h = act(linears[i](h));
  return torch::mm(linears.back()->weight, h.t());
}

PositionalFeaturesImpl::PositionalFeaturesImpl(int64_t emb_dim, int64_t l_max) {
  // [t, cos(f_j w_n), -sin(f_j w_n)] with t = linspace(0,1,l_max), w_n = 2 pi n / l_max and
  // f = linspace(1e-4, bands-1, bands); computed in double, stored in the default dtype.
  const auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  const int64_t bands = (emb_dim - 1) / 2;
  auto tt = torch::linspace(0, 1, l_max, dbl).view({1, l_max, 1});
  auto w = (2 * M_PI / static_cast<double>(l_max)) * torch::arange(l_max, dbl).view({1, l_max, 1});
  auto f = torch::linspace(1e-4, static_cast<double>(bands - 1), bands, dbl).view({1, 1, bands});
  auto fw = f * w;
  auto zz = torch::cat({tt, torch::cos(fw), -torch::sin(fw)}, -1);
  const auto def = torch::typeMetaToScalarType(torch::get_default_dtype());
  z = register_parameter("z", zz.to(def));
  t = register_buffer("t", tt.to(def));
}

ExponentialModulationImpl::ExponentialModulationImpl(const ImplicitFilterOptions& o)
    : shift(o.shift) {
  const double max_decay = std::log(o.target) / o.fast_decay_pct;
  const double min_decay = std::log(o.target) / o.slow_decay_pct;
  deltas =
      register_buffer("deltas", torch::linspace(min_decay, max_decay, o.channels).view({1, 1, -1}));
}

torch::Tensor ExponentialModulationImpl::forward(const torch::Tensor& t, const torch::Tensor& h) {
  auto decay = torch::exp(-t * deltas.abs());
  return h * (shift == 0.0 ? decay : decay + shift);
}

torch::Tensor ExponentialModulationImpl::forward_channels_first(const torch::Tensor& t,
                                                                const torch::Tensor& k) {
  auto decay = torch::exp(-t.view({1, -1}) * deltas.abs().view({-1, 1}));
  return k * (shift == 0.0 ? decay : decay + shift);
}

ImplicitFilterImpl::ImplicitFilterImpl(const ImplicitFilterOptions& o) : options(o) {
  HERD_CHECK(o.channels > 0, "implicit filter: channels must be positive, got ", o.channels);
  HERD_CHECK(o.l_max > 0, "implicit filter: l_max must be positive, got ", o.l_max);
  HERD_CHECK(o.order > 0, "implicit filter: filter_order must be positive, got ", o.order);
  HERD_CHECK(o.emb_dim >= 3 && o.emb_dim % 2 == 1,
             "implicit filter: emb_dim must be odd and >= 3 (t, cos and sin bands), got ",
             o.emb_dim);
  HERD_CHECK(o.num_inner_mlps >= 0, "implicit filter: num_inner_mlps must be >= 0, got ",
             o.num_inner_mlps);
  // Registration order follows the reference so named_parameters() lists alike.
  bias = register_parameter("bias", torch::randn({o.channels}));
  pos_emb = register_module("pos_emb", PositionalFeatures(o.emb_dim, o.l_max));
  Sin act(o.order, o.w, o.w_mod);
  implicit_filter = register_module("implicit_filter", FilterMlp(o, act, /*owns_act=*/true));
  if (o.bidirectional)
    implicit_filter_rev =
        register_module("implicit_filter_rev", FilterMlp(o, act, /*owns_act=*/false));
  modulation = register_module("modulation", ExponentialModulation(o));
}

torch::Tensor ImplicitFilterImpl::generate(FilterMlp& mlp, int64_t L) {
  HERD_CHECK(L >= 1 && L <= options.l_max, "implicit filter: sequence length must be in [1, ",
             options.l_max, "] (l_max), got ", L);
  AutocastOff fp32(pos_emb->z.device().type());
  auto k = mlp->forward_channels_first(pos_emb->z.select(0, 0).narrow(0, 0, L));
  if (options.modulate)
    k = modulation->forward_channels_first(pos_emb->t.view({-1}).narrow(0, 0, L), k);
  return k;  // (channels, L) contiguous
}

torch::Tensor ImplicitFilterImpl::filter(int64_t L) {
  return generate(implicit_filter, L);
}

torch::Tensor ImplicitFilterImpl::filter_rev(int64_t L) {
  HERD_CHECK(implicit_filter_rev, "implicit filter: filter_rev needs bidirectional=true");
  return generate(implicit_filter_rev, L);
}

}  // namespace herd::ops
