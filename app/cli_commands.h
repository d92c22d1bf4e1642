#pragma once
// vitscope-cli subcommands. Each registers its flags on a CLI11 app and runs through core.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace vitscope::cli {

// Registers every subcommand; the returned actions run after parsing (the one picked).
void registerCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
