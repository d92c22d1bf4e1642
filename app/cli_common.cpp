#include "cli_common.h"

#include <ctime>

#include "analysis/session.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/tensor_io.h"
#include "model/loader.h"
#include "model/precision.h"
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

void addInputOptions(CLI::App* sub, InputOptions& o) {
    auto* images = sub->add_option("--image", o.images, "Image files");
    auto* pixels = sub->add_option("--pixels", o.pixels, "Preprocessed pixels .npy [B, 3, H, W] float32");
    images->excludes(pixels);
    sub->add_option("--batch", o.batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
}

Inputs::Inputs(const Model& model, const InputOptions& in) : m_model(model), m_in(in) {
    if (!in.pixels.empty()) {
        m_pixels = readNpyTensor(in.pixels);
        if (m_pixels.dim() != 4 || m_pixels.size(1) != 3)
            throw InputError(in.pixels, "expected pixels [B, 3, H, W], got " + std::to_string(m_pixels.dim()) + "-D array");
        if (!at::isFloatingType(m_pixels.scalar_type())) throw InputError(in.pixels, "expected float pixels");
        m_pixels = m_pixels.to(at::kFloat);
    } else if (in.images.empty()) {
        throw InputError("inputs", "give --image FILE... or --pixels X.npy");
    }
}

int64_t Inputs::count() const { return m_pixels.defined() ? m_pixels.size(0) : static_cast<int64_t>(m_in.images.size()); }

at::Tensor Inputs::batch(int64_t start, int64_t n) const {
    if (m_pixels.defined()) return m_pixels.narrow(0, start, n);
    const std::vector<std::string> paths(m_in.images.begin() + start, m_in.images.begin() + start + n);
    return loadAndPreprocess(paths, m_model.preprocess);
}

void addModelOptions(CLI::App* sub, ModelOptions& o, bool required) {
    auto* opt = sub->add_option("--model", o.model, "Checkpoint file, model directory, hub id (ORG/NAME) or ~/.cache/clip name");
    if (required) opt->required();
    sub->add_option("--tokenizer", o.tokenizer, "BPE merges .gz, a directory with vocab.json + merges.txt, or a SentencePiece .model");
    sub->add_option("--device", o.device, "cpu, cuda or auto")->capture_default_str();
    sub->add_option("--precision", o.precision,
                    "Weights and matmuls: fp32, bf16, fp16, tf32 (CUDA) or auto (the fastest this device has, measured at start-up); "
                    "LayerNorm statistics, softmax and sums stay fp32")
        ->capture_default_str()
        ->check(CLI::IsMember({"fp32", "bf16", "fp16", "tf32", "auto"}))
        ->each([](const std::string& name) { setDefaultPrecision(name); });  // every model the command opens
    sub->add_option("--checkpoint-key", o.checkpointKey,
                    "Training checkpoint: the key holding the weights (e.g. student; default: state_dict, model, "
                    "teacher, model_state_dict, module, state_dict_ema, model_ema, student, the first present)");
}

Model openModel(const ModelOptions& o) { return openModelOn(o.model, o.device, o.tokenizer, o.checkpointKey, o.precision); }

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
    // Where a job reports no rate, the bar measures it from the stage's first report.
    auto rate = std::make_shared<ProgressRate>();
    job.progress = [what, last, rate](const JobProgress& reported) {
        const auto now = std::chrono::steady_clock::now();
        const JobProgress p = rate->fill(reported, now);
        if (p.done < p.total && now - *last < std::chrono::milliseconds(100)) return;
        *last = now;
        const std::string label = p.stage.empty() ? what : what + " (" + p.stage + ")";
        if (p.perSecond > 0)
            std::fprintf(stderr, "\r%s %lld / %lld  %.1f/s  ETA %.0f s   ", label.c_str(),
                         static_cast<long long>(p.done), static_cast<long long>(p.total), p.perSecond, p.etaSeconds);
        else  // (no rate known yet)
            std::fprintf(stderr, "\r%s %lld / %lld   ", label.c_str(), static_cast<long long>(p.done),
                         static_cast<long long>(p.total));
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
