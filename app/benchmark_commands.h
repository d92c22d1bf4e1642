#pragma once
#include "io/imagenet_val.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include <functional>
#include <vector>

namespace vitscope::cli {

// The evaluated images, their labels and the classes in label order with their default names:
// class folders (`groundTruth` empty), or a flat folder labelled by --ground-truth (the devkit or
// Kaggle's CSV; the wnids sorted, as the class folders' names are). perClass > 0: the first N
// images of each class. InputError / IoError naming the folder or file.
struct LabelledImages {
    std::vector<std::string> images, classes, defaultNames;
    std::vector<int64_t> labels;
    ImagenetGroundTruth truth;  // with --ground-truth
};
LabelledImages labelledImages(const std::string& data, const std::string& groundTruth, int64_t perClass);

// evaluate zero-shot, evaluate ablations (after registerImageCommands, which adds `evaluate`).
void registerBenchmarks(CLI::App& app, std::vector<std::function<void()>>& actions);

}  // namespace vitscope::cli
