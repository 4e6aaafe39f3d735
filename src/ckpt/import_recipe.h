// The training recipe of an imported run, so that `herd train --init-from` continues it as the
// original code would: the mixers' own learning rates and weight decay (safari's per-layer
// `lr`, `lr_pos_emb`, `wd`; m2's long_conv_kernel_learning_rate, hyena_lr_pos_emb, hyena_wd),
// which untagged parameters decay (safari: train.optimizer_param_grouping; m2's
// create_param_groups: all), the optimizer (name, lr, weight_decay, betas, eps) and the
// gradient clip. What the checkpoint does not say comes from the paper config herd follows for
// that model (configs/hyena-153m.yaml, h3-125m.yaml, m2-bert-base-80m.yaml), and every value
// records where it came from in optimizer.sources.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "ckpt/import.h"

namespace herd::ckpt {

// Adds the recipe to `root` (a herd config whose model section was built from `reference`) and
// returns what it took from where. `reference` is what the checkpoint or --reference-config
// holds: Lightning hyper_parameters (with model/optimizer/trainer/train), a bare safari model
// config, or m2's config.json. `where` names it in errors ("model.ckpt hyper_parameters"); a
// value of the wrong type is a one-line error naming its key.
std::vector<RecipeValue> add_import_recipe(RefSource source, const YAML::Node& reference,
                                           YAML::Node& root, const std::string& where);

}  // namespace herd::ckpt
