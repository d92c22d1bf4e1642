// Benchmark: a random CLIP ViT-B/16 (224 px, 12 layers, 12 heads, width 768, embed 512) on this
// machine. Prints ms per image for the plain forward and for the full per-token decomposition
// ([B, 12, 12, 197, 512] head-token terms plus the other terms) at batch 1 and 16, their ratio,
// the sgemm rate measured here and the forward's matmul-FLOP bound at that rate.
// --family siglip: a random SigLIP B/16 (224 px, 196 tokens, width 768, attention-pooled): both
// of its decompositions (every encoder head through the frozen pool, and the pooling heads).
// --family swin-t / swin-b: random Swin-T / Swin-B (224 px, window 7, timm layout): forward,
// per-head decomposition, and what a heatmap needs (per-head terms + token factors, then one
// text's per-token scores over every head). Swin's materialised per-token terms over the first
// stage's patches are not measured (hundreds of MB per image; heatmaps use the factors).
// --family maxvit-t: a random maxvit_tiny_tf_224 (timm layout), the same figures.
// --family clip-l14: a random CLIP ViT-L/14 (224 px, 24 layers, 16 heads, width 1024, embed 768).
// --device cuda: everything on the GPU (timings synchronise it), the GEMM rate measured there.
// --gradients 1: also the gradient heatmaps (Grad-CAM, Chefer, LeGrad; one text per image, the
// whole batch in one backward), per image and as a ratio to the forward.
// Usage: bench_decompose [--repeats R] [--batches 1,16] [--device cpu|cuda] [--gradients 1]
//                        [--family clip|clip-l14|siglip|swin-t|swin-b|maxvit-t]
#include "analysis/gradient_maps.h"
#include "analysis/heatmap.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "runtime.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

using namespace vitscope;
using Clock = std::chrono::steady_clock;

namespace {

at::Device g_device(at::kCPU);  // --device

template <typename Fn>
double bestSeconds(int repeats, Fn fn) {
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
        synchronizeDevice(g_device);
        const auto t0 = Clock::now();
        fn();
        synchronizeDevice(g_device);
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
}

at::Tensor randomOnDevice(at::IntArrayRef sizes) { return at::randn(sizes).to(g_device); }

double sgemmGflops() {
    const int64_t n = g_device.is_cuda() ? 8192 : 2048;
    const at::Tensor a = randomOnDevice({n, n}), b = randomOnDevice({n, n});
    at::Tensor c = at::matmul(a, b);
    const double s = bestSeconds(3, [&] { c = at::matmul(a, b); });
    return 2.0 * n * n * n / s / 1e9;
}

// Multiply-add FLOPs of the ViT forward's matmuls (patch embedding, qkv, attention, out, MLP).
double forwardGflop(int64_t n, int64_t d, int64_t layers, int64_t mlp, int64_t patchIn, int64_t patches) {
    const double perLayer = 2.0 * n * d * 3 * d + 2.0 * 2 * n * n * d + 2.0 * n * d * d + 2.0 * 2 * n * d * mlp;
    return (perLayer * layers + 2.0 * patches * patchIn * d) / 1e9;
}

double maxRssMb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

int benchSwin(const std::string& family, int repeats, const std::vector<int>& batches) {
    const bool base = family == "swin-b", maxvit = family == "maxvit-t";
    RandomVitSpec spec;
    spec.layout = maxvit ? RandomLayout::TimmMaxVit : RandomLayout::TimmSwin;
    spec.patchSize = 4;
    spec.width = base ? 128 : 96;
    spec.swinDepths = base ? std::vector<int>{2, 2, 18, 2} : std::vector<int>{2, 2, 6, 2};
    spec.swinHeads = base ? std::vector<int>{4, 8, 16, 32} : std::vector<int>{3, 6, 12, 24};
    spec.window = 7;
    // maxvit_tiny_tf_224: stem 64, widths 64..512, blocks 2, 2, 5, 2, head width 32, partition 7.
    spec.stemWidth = 64;
    spec.maxvitWidths = {64, 128, 256, 512};
    spec.maxvitDepths = {2, 2, 5, 2};
    spec.headDim = 32;
    spec.partition = 7;
    spec.numClasses = 1000;
    spec.seed = 1;
    Model model = buildModel(randomVitStateDict(spec), {{"img_size", 224}}, family);
    moveModel(model, g_device);
    const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
    std::cout << "random " << (maxvit ? "MaxViT-T (tf)" : base ? "Swin-B" : "Swin-T") << " (224 px, window / partition 7): "
              << model.vision.layers() << " attention layers, heads " << model.vision.headsIn(0) << ".."
              << model.vision.headsIn(model.vision.layers() - 1) << ", output dim " << model.vision.embedDim() << "\n"
              << "threads: ATen intra-op " << atenThreads() << ", OPENBLAS_NUM_THREADS=" << (blas ? blas : "(unset)") << "\n";
    for (int b : batches) {
        const at::Tensor pixels = randomOnDevice({b, 3, 224, 224});
        encodeImages(model, pixels);  // warm-up
        decomposeImages(model, pixels);
        const double fwd = bestSeconds(repeats, [&] { encodeImages(model, pixels); }) / b * 1000.0;
        double err = 0;
        const double heads = bestSeconds(repeats, [&] { err = decomposeImages(model, pixels).maxAbsError; }) / b * 1000.0;
        DecomposeOptions lazy;
        lazy.tokenFactors = true;
        const double factors = bestSeconds(repeats, [&] { decomposeImages(model, pixels, lazy); }) / b * 1000.0;
        const at::Tensor t = randomOnDevice({model.vision.embedDim()});
        const Decomposition d = decomposeImages(model, pixels, lazy);
        HeatmapParams every;  // every head, as the GUI's map
        const double scores = bestSeconds(repeats, [&] { hierarchicalDecompositionTokenScores(model, d, t, every); }) * 1000.0;
        std::cout << "batch " << b << ": forward " << fwd << " ms/image; per-head decomposition " << heads << " ms/image ("
                  << heads / fwd << "x forward); with token factors " << factors << " ms/image (" << factors / fwd
                  << "x forward); one text's per-token scores over every head of one image " << scores << " ms; sum error " << err << "\n";
    }
    std::cout << "peak RSS " << maxRssMb() << " MB\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int repeats = 3;
    std::vector<int> batches{1, 16};
    std::string family = "clip";
    bool gradients = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--gradients")) gradients = std::atoi(argv[i + 1]) != 0;
        if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--family")) family = argv[i + 1];
        if (!std::strcmp(argv[i], "--device")) g_device = pickDevice(argv[i + 1]);
        if (!std::strcmp(argv[i], "--batches")) {
            batches.clear();
            std::stringstream ss(argv[i + 1]);
            std::string item;
            while (std::getline(ss, item, ',')) batches.push_back(std::atoi(item.c_str()));
        }
    }
    configureRuntime();
    at::NoGradGuard guard;
    std::cout << "device: " << g_device << "; LibTorch: " << deviceSummary() << "\n";
    if (family == "swin-t" || family == "swin-b" || family == "maxvit-t") return benchSwin(family, repeats, batches);
    if (family != "clip" && family != "clip-l14" && family != "siglip") {
        std::cerr << "bench_decompose: --family is clip, clip-l14, siglip, swin-t, swin-b or maxvit-t\n";
        return 2;
    }
    const bool siglip = family == "siglip", large = family == "clip-l14";
    RandomVitSpec spec = clipBenchSpec(large);
    if (siglip) spec.layout = RandomLayout::TimmSiglip;
    const nlohmann::json config = siglip ? nlohmann::json{{"model_args", {{"num_heads", 12}}}}
                                         : nlohmann::json{{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}};
    Model model = buildModel(randomVitStateDict(spec), config, large ? "random ViT-L/14" : "random ViT-B/16");
    moveModel(model, g_device);
    const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
    std::cout << (siglip ? "random SigLIP B/16: " : large ? "random CLIP ViT-L/14: " : "random CLIP ViT-B/16: ") << model.vision.layers() << " layers x " << model.vision.heads() << " heads, width "
              << model.vision.width << ", " << model.vision.tokensFor(224) << " tokens\n"
              << "threads: ATen intra-op " << atenThreads() << ", OPENBLAS_NUM_THREADS=" << (blas ? blas : "(unset)") << "\n";
    const double gflops = sgemmGflops();
    const int64_t tokens = model.vision.tokensFor(224);
    const int64_t w = spec.width, patch = spec.patchSize, grid = 224 / patch;
    const double gflop = forwardGflop(tokens, w, spec.layers, 4 * w, 3 * patch * patch, grid * grid);
    const double boundMs = gflop / gflops * 1000.0;
    std::cout << "sgemm " << (g_device.is_cuda() ? 8192 : 2048) << "^2: " << gflops << " GFLOP/s; forward matmul work " << gflop << " GFLOP -> bound " << boundMs
              << " ms/image\n";
    for (int b : batches) {
        const at::Tensor pixels = randomOnDevice({b, 3, 224, 224});
        encodeImages(model, pixels);  // warm-up
        const double fwd = bestSeconds(repeats, [&] { encodeImages(model, pixels); }) / b * 1000.0;
        double err = 0;
        DecomposeOptions opts;
        opts.tokens = true;
        const double dec = bestSeconds(repeats, [&] { err = decomposeImages(model, pixels, opts).maxAbsError; }) / b * 1000.0;
        opts.tokens = false;
        const double pooled = bestSeconds(repeats, [&] { decomposeImages(model, pixels, opts); }) / b * 1000.0;
        if (siglip) {
            // What the GUI computes for a dropped image: per-head terms + token factors, then one
            // text's per-token scores over every encoder head.
            DecomposeOptions lazy;
            lazy.tokenFactors = true;
            const at::Tensor t = randomOnDevice({model.vision.width});
            const double ms = bestSeconds(repeats, [&] {
                const Decomposition d = decomposeImages(model, pixels, lazy);
                for (int l = 0; l < model.vision.layers(); ++l)
                    for (int h = 0; h < model.vision.heads(); ++h) pooledTokenScores(model, d, 0, l, h, t);
            }) / b * 1000.0;
            std::cout << "batch " << b << ": per-head decomposition + token factors + one text's per-token scores " << ms
                      << " ms/image (" << ms / fwd << "x forward)\n";
        }
        if (gradients) {
            at::Tensor texts = randomOnDevice({b, model.vision.embedDim()});
            texts = texts / texts.norm(2, 1, true);
            GradientTarget target;
            target.texts = texts;
            const double cam = bestSeconds(repeats, [&] { gradCamScores(model, pixels, target); }) / b * 1000.0;
            const double chefer = bestSeconds(repeats, [&] { cheferScores(model, pixels, target); }) / b * 1000.0;
            const double legrad = bestSeconds(repeats, [&] { legradScores(model, pixels, target); }) / b * 1000.0;
            std::cout << "batch " << b << ": Grad-CAM " << cam << " ms/image (" << cam / fwd << "x forward); Chefer " << chefer << " ("
                      << chefer / fwd << "x); LeGrad (last 2 layers) " << legrad << " (" << legrad / fwd << "x)\n";
        }
        std::cout << "batch " << b << ": forward " << fwd << " ms/image (" << fwd / boundMs << "x bound); per-token decomposition "
                  << dec << " ms/image (" << dec / fwd << "x forward); per-head decomposition " << pooled << " ms/image ("
                  << pooled / fwd << "x forward); sum error " << err << "\n";
    }
    std::cout << "peak RSS " << maxRssMb() << " MB\n";
    return 0;
}
