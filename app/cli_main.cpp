// vitscope-cli: every analysis headless. Exit 0 on success, 2 with a one-line error otherwise.
#include "cli_commands.h"
#include "runtime.h"

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

namespace {

std::string oneLine(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    auto logger = spdlog::stderr_color_mt("vitscope");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::warn);

    CLI::App app{"vitscope-cli: decompose and interpret vision transformers through text"};
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Log progress to stderr");
    std::vector<std::function<void()>> actions;
    vitscope::cli::registerCommands(app, actions);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vitscope-cli: " << oneLine(e.what()) << "\n";
        return 2;
    }
    if (verbose) spdlog::set_level(spdlog::level::info);
    try {
        vitscope::configureRuntime();
        for (auto& action : actions) action();
    } catch (const c10::Error& e) {
        std::cerr << "vitscope-cli: " << oneLine(e.what_without_backtrace()) << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "vitscope-cli: " << oneLine(e.what()) << "\n";
        return 2;
    }
    return 0;
}
