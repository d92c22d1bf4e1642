#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// `vitscope-cli shapes ...`: the bundled shapes world.
void registerShapes(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
