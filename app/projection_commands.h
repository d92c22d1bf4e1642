#pragma once
// vitscope-cli project (the projector's layouts: analysis/projection.h, projection_points.h) and
// compare (head matching of two models: analysis/head_matching.h).
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

void registerProjectionCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
