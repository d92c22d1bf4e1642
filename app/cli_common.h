#pragma once
// Flags and helpers shared by the vitscope-cli subcommands.
#include "job.h"
#include "model/model.h"

#include <CLI/CLI.hpp>

#include <atomic>
#include <string>

namespace vitscope::cli {

struct ModelOptions {
    std::string model;
    std::string tokenizer;
    std::string device = "auto";
    std::string checkpointKey;
};

void addModelOptions(CLI::App* sub, ModelOptions& o, bool required = true);
Model openModel(const ModelOptions& o);
void ensureDir(const std::string& dir);

// A job context whose cancel flag is set by Ctrl-C / SIGTERM and whose progress is a one-line
// bar on stderr (done / total, items/s, ETA), redrawn at most ~10 times a second.
JobContext interruptibleJob(const std::string& what);
const std::atomic<bool>& interruptFlag();

}  // namespace vitscope::cli
