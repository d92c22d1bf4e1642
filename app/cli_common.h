#pragma once
// Flags and helpers shared by the vitscope-cli subcommands.
#include "job.h"
#include "model/model.h"

#include <CLI/CLI.hpp>

#include <array>
#include <atomic>
#include <cstdint>
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

// The current UTC time as ISO 8601 ("2026-12-06T18:00:00Z"), for the benchmarks' records.
std::string utcNow();

// PASCAL VOC's segmentation palette: class index i's colour (R, G, B) from its bits, three at a
// time, high bits first (what its SegmentationClass PNGs decode to).
std::array<uint8_t, 3> vocPaletteRgb(int index);
const std::atomic<bool>& interruptFlag();

}  // namespace vitscope::cli
