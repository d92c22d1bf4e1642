#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// evaluate waterbirds (under `evaluate`).
void registerWaterbirds(CLI::App* evaluate, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
