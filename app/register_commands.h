#pragma once
// vitscope-cli registers find / norms, and the --test-time-registers options of embed, decompose
// and heatmap (analysis/registers.h).
#include "model/model.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace vitscope::cli {

// The test-time-register model's flags. Unset ones take the reference's config for the model
// (testTimeRegisterDefaults).
struct TestTimeRegisterOptions {
    int count = 0;  // --test-time-registers K; 0: the plain model
    std::string neurons;
    int topK = 0, highestLayer = -2;  // 0 / -2: unset
    double scale = 1.0;
    std::string normalValues = "zero";
};
void addTestTimeRegisterOptions(CLI::App* sub, TestTimeRegisterOptions& o);
// Makes `model` the intervened one when --test-time-registers is given (refuses the other flags
// without it); returns the number of register tokens appended.
int applyTestTimeRegisterOptions(Model& model, const TestTimeRegisterOptions& o);

void registerRegisterCommands(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
