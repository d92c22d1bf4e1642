#pragma once
// vitscope-cli second-order: MLP neurons' second-order effects (analysis/second_order.h).
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

void registerNeuronCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
