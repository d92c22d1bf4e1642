// Benchmark: the cost of an SAE's exact attribution per image (analysis/sae.h, attributeSaeImages:
// the decomposition of the site, the encoding, and every active latent's split over the
// components) as a ratio of the plain forward (encodeImages), for the bundled shapes-clip and a
// random CLIP ViT-B/16 (224 px), with random TopK SAEs (8x wide, k 32, layer_norm) at the output
// and at the residual after the second-to-last block.
//
//   build/bin/bench_sae [--batch 1,8] [--repeats 5] [--device cpu|cuda]
#include "analysis/sae.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "runtime.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace vitscope;
using Clock = std::chrono::steady_clock;

namespace {

at::Device g_device(at::kCPU);

template <typename Fn>
double seconds(Fn fn) {
    synchronizeDevice(g_device);
    const auto t0 = Clock::now();
    fn();
    synchronizeDevice(g_device);
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

SparseAutoencoder randomSae(int64_t dIn, int layer) {
    SparseAutoencoder sae;
    sae.path = "random";
    sae.layout = "vitscope";
    sae.layer = layer;
    const int64_t s = 8 * dIn;
    sae.W_enc = (at::randn({dIn, s}) / std::sqrt(static_cast<double>(dIn))).to(g_device);
    sae.b_enc = (at::randn({s}) * 0.1).to(g_device);
    sae.W_dec = sae.W_enc.t().contiguous();
    sae.b_dec = (at::randn({dIn}) * 0.1).to(g_device);
    sae.activation = SaeActivation::TopKReLU;
    sae.k = 32;
    sae.normalize = SaeNormalize::LayerNorm;
    return sae;
}

// The forward and both attributions interleaved, `repeats` rounds, the best time of each: the
// shared machine's load then weighs on all three alike.
void benchModel(const std::string& name, const Model& model, int size, const std::vector<int>& batches, int repeats) {
    const VisionTower& v = model.vision;
    const SparseAutoencoder atOutput = randomSae(v.embedDim(), -1), atLayer = randomSae(v.width, v.layers() - 2);
    for (int b : batches) {
        const at::Tensor px = at::randn({b, 3, size, size}).to(g_device);
        encodeImages(model, px);  // warm-up
        double forward = 1e30, output = 1e30, layer = 1e30;
        for (int r = 0; r < repeats; ++r) {
            forward = std::min(forward, seconds([&] { encodeImages(model, px); }));
            output = std::min(output, seconds([&] { attributeSaeImages(model, atOutput, px); }));
            layer = std::min(layer, seconds([&] { attributeSaeImages(model, atLayer, px); }));
        }
        for (const auto& [sae, t] : {std::make_pair(&atOutput, output), std::make_pair(&atLayer, layer)})
            std::cout << name << "  batch " << b << "  site " << sae->site() << " (" << sae->dIn() << " -> "
                      << sae->dSae() << ", k " << sae->k << "): forward " << forward * 1e3 / b
                      << " ms/image, attribution " << t * 1e3 / b << " ms/image, ratio " << t / forward << "\n";
    }
}

std::vector<int> parseList(const std::string& text) {
    std::vector<int> out;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');) out.push_back(std::stoi(part));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> batches{1, 8};
    int repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--batch"))
            batches = parseList(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeats"))
            repeats = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--device"))
            g_device = at::Device(argv[i + 1]);
    }
    at::NoGradGuard noGrad;
    at::manual_seed(0);
    std::cout << "threads: ATen intra-op " << atenThreads() << ", device " << g_device.str() << "\n";
    Model clip = loadModel(std::string(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip");
    moveModel(clip, g_device);
    benchModel("shapes-clip (64 px)", clip, 64, batches, repeats);
    Model vitb = buildModel(randomVitStateDict(clipBenchSpec(false)), {{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}},
                            "random ViT-B/16");
    moveModel(vitb, g_device);
    benchModel("random CLIP ViT-B/16 (224 px)", vitb, 224, batches, repeats);
    return 0;
}
