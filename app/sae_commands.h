#pragma once
// vitscope-cli sae: sparse autoencoders on a model's activations (analysis/sae.h).
//   sae attribute   active latents of images, each pre-activation split over the model's components
//   sae describe    latents named by their decoder direction's nearest texts (MSAE's naming)
// `sae train` (app/sae_train_command.h) joins the same family: registerSaeCommands finds the
// `sae` subcommand when it already exists, so either registration order works.
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// The `sae` subcommand of app, created if absent.
CLI::App* saeCommandFamily(CLI::App& app);
void registerSaeCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
