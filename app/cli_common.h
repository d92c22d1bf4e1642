#pragma once
// Flags and helpers shared by the vitscope-cli subcommands.
#include "job.h"
#include "model/model.h"

#include <CLI/CLI.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace vitscope::cli {

struct ModelOptions {
    std::string model;
    std::string tokenizer;
    std::string device = "auto";
    std::string checkpointKey;
    // fp32, bf16, fp16, tf32 or auto (model/precision.h); every model the command opens uses it.
    std::string precision = "fp32";
};

void addModelOptions(CLI::App* sub, ModelOptions& o, bool required = true);

// --image FILE... or --pixels X.npy, and --batch.
struct InputOptions {
    std::vector<std::string> images;
    std::string pixels;
    int batch = 16;
};
void addInputOptions(CLI::App* sub, InputOptions& o);

// The inputs, read one batch at a time so that memory stays bounded for long image lists.
class Inputs {
public:
    Inputs(const Model& model, const InputOptions& in);  // reads --pixels; InputError when neither is given
    int64_t count() const;
    at::Tensor batch(int64_t start, int64_t n) const;  // [n, 3, H, W] on the CPU

private:
    const Model& m_model;
    const InputOptions& m_in;
    at::Tensor m_pixels;
};
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
