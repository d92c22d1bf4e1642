#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// evaluate zero-shot, evaluate ablations (after registerImageCommands, which adds `evaluate`).
void registerBenchmarks(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
