#pragma once
// vitscope-cli sae train / sae purity: sparse autoencoders trained on a dataset cache
// (analysis/sae_train.h) and their latents' ground-truth purity (analysis/sae_train_purity.h).
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// Adds `sae train` and `sae purity` under the `sae` subcommand (created here when absent).
void registerSaeTrainCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
