#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace vitscope::cli {

// `vitscope-cli demo`: the engine end to end with no downloaded file (see demo.cpp).
void registerDemo(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
