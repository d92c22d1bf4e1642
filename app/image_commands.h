#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// heatmap, evaluate-heatmaps, align.
void registerImageCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
