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
// --second-order 0,10 [--maps-budget GB]: also every neuron's second-order effect for those MLP layers
// (analysis/second_order.h, reference convention): ms per image, the extra time over the forward as
// a ratio of the forward, the image-independent maps' build time and size, and memory per image.
// --precision fp32,bf16 (clip / clip-l14): each precision's forward and per-head decomposition
// against its own GEMM bound and the images/s ratios, in one run (benchPrecision below).
// Usage: bench_decompose [--repeats R] [--batches 1,16] [--device cpu|cuda] [--gradients 1]
//                        [--family clip|clip-l14|siglip|swin-t|swin-b|maxvit-t] [--second-order LAYERS]
//                        [--precision fp32,bf16,auto]
#include "analysis/gradient_maps.h"
#include "analysis/heatmap.h"
#include "analysis/second_order.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/precision.h"
#include "model/random_weights.h"
#include "parallel.h"
#include "runtime.h"

#include <ATen/record_function.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
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

// The best rate of the four linear layers of a block on the model's own shapes (tokens x width at
// this batch): the matrix unit's bound for this forward, as the forward itself sees it.
double blockLinearGflops(int64_t tokens, int64_t width, int64_t mlp, std::ostream& out) {
    const std::pair<int64_t, int64_t> shapes[] = {{width, 3 * width}, {width, width}, {width, mlp}, {mlp, width}};
    const char* names[] = {"qkv", "out-proj", "mlp up", "mlp down"};
    double best = 0;
    out << "GEMM rate on the block's shapes at " << tokens << " tokens:";
    for (int i = 0; i < 4; ++i) {
        const auto [in, o] = shapes[i];
        const at::Tensor x = randomOnDevice({tokens, in}), wt = randomOnDevice({o, in}), bias = randomOnDevice({o});
        at::Tensor y = at::linear(x, wt, bias);
        const double sec = bestSeconds(3, [&] { y = at::linear(x, wt, bias); });
        const double rate = 2.0 * tokens * in * o / sec / 1e9;
        best = std::max(best, rate);
        out << " " << names[i] << " " << static_cast<int>(rate) << ",";
    }
    out << " best " << static_cast<int>(best) << " GFLOP/s\n";
    return best;
}

// Where a forward's time goes, by operation: a thread-local RecordFunction observer times every
// top-level ATen call and names it from its operator and operand shapes.
struct OpClock : at::ObserverContext {
    Clock::time_point t0;
    std::string key;
    bool top = false;
};
thread_local int t_depth = 0;
thread_local std::map<std::string, double>* t_ops = nullptr;
thread_local int64_t t_width = 0, t_headDim = 0;

std::string classify(const at::RecordFunction& fn) {
    const std::string name = fn.name();
    const auto in = fn.inputs();
    auto sizes = [&](std::size_t i) { return in.size() > i && in[i].isTensor() ? in[i].toTensor().sizes().vec() : std::vector<int64_t>{}; };
    if (name == "aten::linear") {
        const std::vector<int64_t> w = sizes(1);
        if (w.size() == 2 && w[0] == 3 * t_width && w[1] == t_width) return "qkv";
        if (w.size() == 2 && w[0] == t_width && w[1] == t_width) return "out-proj";
        if (w.size() == 2 && w[1] == t_width && w[0] > t_width) return "mlp up";
        if (w.size() == 2 && w[0] == t_width && w[1] > t_width) return "mlp down";
        return "linear (other)";
    }
    if (name == "aten::addmm") {  // the MLP's products where QuickGELU runs as one SiLU pass (windows::mlp)
        const std::vector<int64_t> w = sizes(2);  // the weight, transposed: [in, out]
        if (w.size() == 2 && w[0] == t_width && w[1] > t_width) return "mlp up";
        if (w.size() == 2 && w[1] == t_width && w[0] > t_width) return "mlp down";
        return "linear (other)";
    }
    if (name == "aten::matmul") {
        const std::vector<int64_t> a = sizes(0), b = sizes(1);
        if (a.size() == 4 && b.size() == 4 && a.back() == t_headDim) return "attention scores (QK^T)";
        if (a.size() == 4 && b.size() == 4) return "attention x values";
        return "matmul (other)";
    }
    if (name == "vitscope::attention") return "attention: layouts, scores, softmax, x values (split over cores)";
    if (name == "vitscope::activation") return "GELU (split over cores)";
    if (name == "aten::softmax" || name == "aten::_softmax") return "softmax";
    if (name == "aten::layer_norm") return "layer norms";
    if (name == "aten::gelu" || name == "aten::sigmoid" || name == "aten::sigmoid_" || name == "aten::mul" || name == "aten::mul_")
        return "GELU / scaling (elementwise)";
    if (name == "aten::add") return "residual adds";
    if (name == "aten::to" || name == "aten::_to_copy") return "type conversions (reduced precision)";
    if (name == "aten::conv2d" || name == "aten::_convolution") return "patch embedding";
    return "other (" + name + ")";
}

std::unique_ptr<at::ObserverContext> opStart(const at::RecordFunction& fn) {
    auto c = std::make_unique<OpClock>();
    c->top = t_depth++ == 0;
    if (c->top) {
        c->key = classify(fn);
        c->t0 = Clock::now();
    }
    return c;
}

void opEnd(const at::RecordFunction&, at::ObserverContext* ctx) {
    auto* c = static_cast<OpClock*>(ctx);
    --t_depth;
    if (c->top && t_ops) (*t_ops)[c->key] += std::chrono::duration<double>(Clock::now() - c->t0).count();
}

void printBreakdown(const Model& model, const at::Tensor& pixels, int repeats) {
    std::map<std::string, double> ops;
    t_ops = &ops;
    t_width = model.vision.width;
    t_headDim = model.vision.width / model.vision.heads();
    const at::CallbackHandle handle = at::addThreadLocalCallback(at::RecordFunctionCallback(opStart, opEnd).needsInputs(true));
    const auto t0 = Clock::now();
    for (int r = 0; r < repeats; ++r) encodeImages(model, pixels);
    const double total = std::chrono::duration<double>(Clock::now() - t0).count();
    at::removeCallback(handle);
    t_ops = nullptr;
    std::vector<std::pair<double, std::string>> rows;
    double timed = 0;
    for (const auto& [k, v] : ops) {
        rows.emplace_back(v, k);
        timed += v;
    }
    std::sort(rows.rbegin(), rows.rend());
    const double per = 1000.0 / repeats / static_cast<double>(pixels.size(0));
    std::cout << "  forward by operation (batch " << pixels.size(0) << ", observed, ms/image): total " << total * per << " (ops "
              << timed * per << ")\n";
    for (const auto& [v, k] : rows)
        if (v / timed >= 0.002) std::cout << "    " << k << ": " << v * per << " (" << static_cast<int>(1000 * v / timed) / 10.0 << "%)\n";
}

// The text tower: one text (what the GUI encodes as you type) and a batch of 64, split and not.
void printTextTower(const Model& model, int repeats) {
    for (int count : {1, 64}) {
        const at::Tensor tokens = at::randint(1, model.text->tokenEmbedding.size(0), {count, model.text->contextLength}, at::kLong);
        const double split = bestSeconds(repeats, [&] { encodeTexts(model, tokens); }) / count * 1000.0;
        setSplitEnabled(false);
        const double one = bestSeconds(repeats, [&] { encodeTexts(model, tokens); }) / count * 1000.0;
        setSplitEnabled(true);
        std::cout << "text tower, " << count << (count == 1 ? " text: " : " texts: ") << split << " ms/text; nothing split " << one
                  << " ms/text\n";
    }
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


// --precision fp32,bf16: the same random ViT-B/16 (clip) or ViT-L/14 (clip-l14) in each precision
// (model/precision.h), in one run: each precision's GEMM bound measured the same way (the block's
// four linear shapes, best rate, in that precision's type), its forward and per-head decomposition
// (what a cache build computes) against that bound, and the images/s ratios to the first precision.
// For bf16 the attention products are timed both ways (reduced and fp32 attention). On the CPU also
// fp32's matmul through oneDNN (at::mkldnn_linear) beside ATen's own path (OpenBLAS).
at::ScalarType gemmType(Precision p) { return p == Precision::Bf16 ? at::kBFloat16 : p == Precision::Fp16 ? at::kHalf : at::kFloat; }

double precisionBound(Precision p, int64_t tokens, int64_t width, int64_t mlp) {
    if (g_device.is_cuda()) at::globalContext().setAllowTF32CuBLAS(p == Precision::Tf32);
    std::optional<ReducedPrecisionThreads> team;  // the reduced products' own thread team (runtime.h), as in the forward
    if (gemmType(p) != at::kFloat) team.emplace();
    const std::pair<int64_t, int64_t> shapes[] = {{width, 3 * width}, {width, width}, {width, mlp}, {mlp, width}};
    double best = 0;
    for (const auto& [in, o] : shapes) {
        const auto opt = at::TensorOptions().device(g_device).dtype(gemmType(p));
        const at::Tensor x = at::randn({tokens, in}, opt), wt = at::randn({o, in}, opt), bias = at::randn({o}, opt);
        at::Tensor y = at::linear(x, wt, bias);
        best = std::max(best, 2.0 * tokens * in * o / bestSeconds(3, [&] { y = at::linear(x, wt, bias); }) / 1e9);
    }
    return best;
}

void printOneDnnFp32(int64_t tokens, int64_t width) {
    const at::Tensor x = at::randn({tokens, width}), w = at::randn({3 * width, width}), b = at::randn({3 * width});
    const double flop = 2.0 * tokens * width * 3 * width;
    at::Tensor y = at::linear(x, w, b);
    const double blas = flop / bestSeconds(5, [&] { y = at::linear(x, w, b); }) / 1e9;
    try {
        const at::Tensor wm = w.to_mkldnn(), bm = b.to_mkldnn();
        y = at::mkldnn_linear(x.to_mkldnn(), wm, bm).to_dense();
        const double dnnl = flop / bestSeconds(5, [&] { y = at::mkldnn_linear(x.to_mkldnn(), wm, bm).to_dense(); }) / 1e9;
        std::cout << "fp32 qkv product [" << tokens << ", " << width << "] x [" << width << ", " << 3 * width << "]: ATen's path (BLAS) "
                  << blas << " GFLOP/s, oneDNN (at::mkldnn_linear, layouts converted per call) " << dnnl << " GFLOP/s (" << dnnl / blas
                  << "x)\n";
    } catch (const c10::Error& e) {
        std::cout << "fp32 qkv product: ATen's path (BLAS) " << blas << " GFLOP/s; oneDNN's fp32 linear unavailable: "
                  << std::string(e.what()).substr(0, 120) << "\n";
    }
}

struct PrecisionTiming {
    double forward = 0, decompose = 0, bound = 0, error = 0;
};

PrecisionTiming timePrecision(const Model& model, Precision p, const at::Tensor& pixels, double gflop, int64_t tokens, int repeats) {
    const int64_t b = pixels.size(0), w = model.vision.width;
    PrecisionTiming t;
    t.bound = gflop / precisionBound(p, b * tokens, w, 4 * w) * 1000.0;
    if (g_device.is_cuda()) at::globalContext().setAllowTF32CuBLAS(p == Precision::Tf32);
    encodeImages(model, pixels);  // warm-up
    t.forward = bestSeconds(repeats, [&] { encodeImages(model, pixels); }) / b * 1000.0;
    t.decompose = bestSeconds(repeats, [&] {
        const Decomposition d = decomposeImages(model, pixels);
        t.error = d.maxAbsError / d.output.abs().max().item<double>();
    }) / b * 1000.0;
    return t;
}

void printPrecision(const std::string& name, int b, const PrecisionTiming& t, const PrecisionTiming& first) {
    std::cout << "batch " << b << " " << name << ": forward " << t.forward << " ms/image (" << 1000.0 / t.forward << " images/s, "
              << t.forward / t.bound << "x its own GEMM bound of " << t.bound << " ms/image); per-head decomposition " << t.decompose
              << " ms/image (" << 1000.0 / t.decompose << " images/s); sum error " << t.error << " of max |output|; images/s vs the first: forward "
              << first.forward / t.forward << "x, decomposition " << first.decompose / t.decompose << "x\n";
}

int benchPrecision(const std::string& family, const std::string& list, int repeats, const std::vector<int>& batches) {
    const bool large = family == "clip-l14";
    const RandomVitSpec spec = clipBenchSpec(large);
    const Model base = buildModel(randomVitStateDict(spec), nlohmann::json::object(), large ? "random ViT-L/14" : "random ViT-B/16");
    std::vector<std::pair<std::string, Model>> models;
    std::stringstream ss(list);
    for (std::string item; std::getline(ss, item, ',');) {
        Model m = base;
        moveModel(m, g_device);
        applyPrecision(m, resolvePrecision(item, g_device.is_cuda() ? "cuda" : "cpu"));
        models.emplace_back(item == "auto" ? std::string("auto=") + precisionName(m.precision) : item, std::move(m));
    }
    const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
    std::cout << (large ? "random CLIP ViT-L/14" : "random CLIP ViT-B/16") << " on " << deviceDescription(g_device.is_cuda() ? "cuda" : "cpu")
              << "; threads: ATen intra-op " << atenThreads() << ", OPENBLAS_NUM_THREADS=" << (blas ? blas : "(unset)") << "\n";
    const int64_t tokens = base.vision.tokensFor(224), w = spec.width, grid = 224 / spec.patchSize;
    const double gflop = forwardGflop(tokens, w, spec.layers, 4 * w, 3 * spec.patchSize * spec.patchSize, grid * grid);
    for (int b : batches) {
        const at::Tensor pixels = randomOnDevice({b, 3, 224, 224});
        PrecisionTiming first;
        for (auto& [name, m] : models) {
            const PrecisionTiming t = timePrecision(m, m.precision, pixels, gflop, tokens, repeats);
            if (&m == &models.front().second) first = t;
            printPrecision(name, b, t, first);
            if (!g_device.is_cuda()) printBreakdown(m, pixels, repeats);
            if (!m.vision.encoder.blocks.front().reduced()) continue;
            Encoder& enc = m.vision.encoder;
            enc.reducedAttention = !enc.reducedAttention;
            const PrecisionTiming other = timePrecision(m, m.precision, pixels, gflop, tokens, repeats);
            enc.reducedAttention = !enc.reducedAttention;
            printPrecision(name + (enc.reducedAttention ? " (attention in fp32)" : " (attention in the reduced type)"), b, other, first);
        }
        if (!g_device.is_cuda()) printOneDnnFp32(b * tokens, w);
    }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    int repeats = 3;
    std::vector<int> batches{1, 16};
    std::string family = "clip";
    bool gradients = false;
    std::vector<int> neuronLayers;
    std::string precisions;  // --precision fp32,bf16
    double mapsBudget = 1.073741824;  // GB (SecondOrderSettings' default, 1 GiB)
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--maps-budget")) mapsBudget = std::atof(argv[i + 1]);
        if (!std::strcmp(argv[i], "--second-order")) {
            std::stringstream ss(argv[i + 1]);
            std::string item;
            while (std::getline(ss, item, ',')) neuronLayers.push_back(std::atoi(item.c_str()));
        }
        if (!std::strcmp(argv[i], "--precision")) precisions = argv[i + 1];
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
    if (!precisions.empty()) return benchPrecision(family, precisions, repeats, batches);
    if (family != "clip" && family != "clip-l14" && family != "siglip") {
        std::cerr << "bench_decompose: --family is clip, clip-l14, siglip, swin-t, swin-b or maxvit-t\n";
        return 2;
    }
    const bool siglip = family == "siglip", large = family == "clip-l14";
    RandomVitSpec spec = clipBenchSpec(large);
    if (siglip) spec.layout = RandomLayout::TimmSiglip;
    if (!siglip) {  // CLIP's own text tower for the text timings: width 512 (L/14: 768), 12 layers, heads of 64
        spec.textWidth = large ? 768 : 512;
        spec.textLayers = 12;
    }
    const nlohmann::json config = siglip ? nlohmann::json{{"model_args", {{"num_heads", 12}}}}
                                         : nlohmann::json{{"model_cfg", {{"text_cfg", {{"heads", spec.textWidth / 64}}}}}};
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
    std::cout << "sgemm " << (g_device.is_cuda() ? 8192 : 2048) << "^2: " << gflops << " GFLOP/s (square; not the bound below); forward matmul work "
              << gflop << " GFLOP\n";
    for (int b : batches) {
        const at::Tensor pixels = randomOnDevice({b, 3, 224, 224});
        encodeImages(model, pixels);  // warm-up
        const double boundMs = gflop / blockLinearGflops(b * tokens, w, 4 * w, std::cout) * 1000.0;
        std::cout << "batch " << b << ": bound at that rate " << boundMs << " ms/image\n";
        const double fwd = bestSeconds(repeats, [&] { encodeImages(model, pixels); }) / b * 1000.0;
        if (!g_device.is_cuda()) printBreakdown(model, pixels, repeats);
        if (!g_device.is_cuda() && splitParts() > 1) {  // the same forward on one thread (parallel.h)
            setSplitEnabled(false);
            const double one = bestSeconds(repeats, [&] { encodeImages(model, pixels); }) / b * 1000.0;
            setSplitEnabled(true);
            std::cout << "batch " << b << ": forward with attention and GELU on one core (VITSCOPE_SPLIT=0) " << one << " ms/image ("
                      << one / fwd << "x the split forward)\n";
        }
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
            GradientMapParams everyLayer;
            everyLayer.cheferStartLayer = 0;
            const double chefer = bestSeconds(repeats, [&] { cheferScores(model, pixels, target, everyLayer); }) / b * 1000.0;
            const double cheferLast = bestSeconds(repeats, [&] { cheferScores(model, pixels, target); }) / b * 1000.0;
            const double legrad = bestSeconds(repeats, [&] { legradScores(model, pixels, target); }) / b * 1000.0;
            std::cout << "batch " << b << ": Grad-CAM " << cam << " ms/image (" << cam / fwd << "x forward); Chefer every layer " << chefer
                      << " (" << chefer / fwd << "x), from its default start layer " << cheferLast << " (" << cheferLast / fwd
                      << "x); LeGrad (last 2 layers) " << legrad << " (" << legrad / fwd << "x)\n";
        }
        std::cout << "batch " << b << ": forward " << fwd << " ms/image (" << fwd / boundMs << "x bound); per-token decomposition "
                  << dec << " ms/image (" << dec / fwd << "x forward); per-head decomposition " << pooled << " ms/image ("
                  << pooled / fwd << "x forward); sum error " << err << "\n";
        for (int layer : neuronLayers) {
            SecondOrderSettings s;
            s.layer = layer;
            s.cacheBytes = static_cast<int64_t>(mapsBudget * 1e9);
            const auto t0 = Clock::now();
            const SecondOrderLens lens(model, s);
            synchronizeDevice(g_device);
            const double buildMs = std::chrono::duration<double>(Clock::now() - t0).count() * 1000.0;
            const double ms = bestSeconds(repeats, [&] { lens.compute(pixels); }) / b * 1000.0;
            // What one image holds: the layer's activations [N, M], the effects [M, E] and the
            // attention-weighted activations per later head [M, H] (float32).
            const int64_t M = lens.neurons(), E = model.vision.embedDim(), later = model.vision.layers() - 1 - layer;
            const double perImageMb = 4.0 * (tokens * M + 2 * M * E + later * model.vision.heads() * M) / 1e6;
            std::cout << "batch " << b << ": second-order effects of layer " << layer << " (" << M << " neurons through " << later << " x "
                      << model.vision.heads() << " heads) " << ms << " ms/image (" << ms / fwd << "x forward; " << (ms - fwd) / fwd
                      << "x forward beyond it); maps built once in " << buildMs << " ms, " << lens.keptBytes() / 1e6 << " MB kept; ~"
                      << perImageMb << " MB per image\n";
        }
    }
    if (model.text && !g_device.is_cuda()) printTextTower(model, repeats);
    std::cout << "peak RSS " << maxRssMb() << " MB\n";
    return 0;
}
