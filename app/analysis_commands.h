#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// cache build, textspan, rank, retrieve, heatmap, ablate, evaluate-heatmaps.
void registerAnalysis(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
