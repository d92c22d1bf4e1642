#include "cli_common.h"

#include <ctime>

#include "analysis/session.h"
#include "error.h"
#include "model/loader.h"
#include "runtime.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

namespace vitscope::cli {

namespace {

std::atomic<bool> g_interrupted{false};
void onInterrupt(int) { g_interrupted.store(true); }

}  // namespace

void addModelOptions(CLI::App* sub, ModelOptions& o, bool required) {
    auto* opt = sub->add_option("--model", o.model, "Checkpoint file, model directory, hub id (ORG/NAME) or ~/.cache/clip name");
    if (required) opt->required();
    sub->add_option("--tokenizer", o.tokenizer, "BPE merges .gz, a directory with vocab.json + merges.txt, or a SentencePiece .model");
    sub->add_option("--device", o.device, "cpu, cuda or auto")->capture_default_str();
    sub->add_option("--checkpoint-key", o.checkpointKey,
                    "Training checkpoint: the key holding the weights (e.g. student; default: state_dict, model, "
                    "teacher, model_state_dict, module, state_dict_ema, model_ema, student, the first present)");
}

Model openModel(const ModelOptions& o) { return openModelOn(o.model, o.device, o.tokenizer, o.checkpointKey); }

void ensureDir(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (!std::filesystem::is_directory(dir, ec)) throw IoError(dir, "cannot create output directory");
}

const std::atomic<bool>& interruptFlag() { return g_interrupted; }

JobContext interruptibleJob(const std::string& what) {
    std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    JobContext job;
    job.cancel = &g_interrupted;
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    job.progress = [what, last](const JobProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        if (p.done < p.total && now - *last < std::chrono::milliseconds(100)) return;
        *last = now;
        const std::string label = p.stage.empty() ? what : what + " (" + p.stage + ")";
        std::fprintf(stderr, "\r%s %lld / %lld  %.1f/s  ETA %.0f s   ", label.c_str(), static_cast<long long>(p.done),
                     static_cast<long long>(p.total), p.perSecond, p.etaSeconds);
        if (p.done >= p.total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    };
    return job;
}

std::array<uint8_t, 3> vocPaletteRgb(int index) {
    int r = 0, g = 0, b = 0;
    for (int j = 0, c = index; j < 8; ++j, c >>= 3) {
        r |= ((c >> 0) & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
    }
    return {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
}

std::string utcNow() {
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return date;
}

}  // namespace vitscope::cli
