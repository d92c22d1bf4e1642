#pragma once
// vitscope-cli splice (SpLiCE sparse text decompositions of the output or of a component:
// analysis/splice.h) and splice-mean (the image / component mean it centres with).
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

void registerSpliceCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
