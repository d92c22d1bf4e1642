// What a reduced precision changes (analysis/precision_agreement.h): for each model, the same
// weights in fp32 and in --precision (bf16 by default), on held-out shapes-world scenes; one
// markdown table row per model (README, "Reduced precision").
// Models: the bundled shapes-clip, shapes-vit, shapes-swin (models/), and random released-size
// vit-b16 (CLIP ViT-B/16), vit-l14 (CLIP ViT-L/14), siglip (SigLIP B/16), swin-b (Swin-B).
// Usage: precision_agreement [--precision bf16] [--models shapes-clip,vit-b16,...] [--images 128]
//                            [--device cpu|cuda] [--zero-shot-images 500]
#include "analysis/precision_agreement.h"
#include "analysis/session.h"
#include "error.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "resources.h"
#include "runtime.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

using namespace vitscope;

namespace {

Model randomModel(const std::string& name) {
    RandomVitSpec spec = clipBenchSpec(name == "vit-l14");
    nlohmann::json config = nlohmann::json::object();
    if (name == "siglip") {
        spec.layout = RandomLayout::TimmSiglip;
        config = {{"model_args", {{"num_heads", 12}}}};
    } else if (name == "swin-b") {
        spec.layout = RandomLayout::TimmSwin;
        spec.patchSize = 4;
        spec.width = 128;
        spec.swinDepths = {2, 2, 18, 2};
        spec.swinHeads = {4, 8, 16, 32};
        spec.window = 7;
        spec.numClasses = 1000;
        config = {{"img_size", 224}};
    } else if (name != "vit-b16" && name != "vit-l14") {
        throw InputError("--models " + name,
                         "unknown model (shapes-clip, shapes-vit, shapes-swin, vit-b16, vit-l14, siglip, swin-b)");
    }
    spec.seed = 1;
    return buildModel(randomVitStateDict(spec), config, "random " + name);
}

// The model `name` in `precision` on `device`: a bundled model through openModelOn, a random
// one built from the same seed each time.
Model openNamed(const std::string& name, const std::string& precision, const std::string& device) {
    if (name.rfind("shapes-", 0) == 0) {
        const std::string dir = dataFile("models/" + name);
        return openModelOn(dir.empty() ? "models/" + name : dir, device, {}, {}, precision);
    }
    Model m = randomModel(name);
    moveModel(m, pickDevice(device));
    applyPrecision(m, resolvePrecision(precision, device));
    return m;
}

std::string fig(double v, int digits = 3) {
    if (v < 0) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string sci(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1e", v);
    return buf;
}

void printRow(const std::string& name, const AgreementResult& a, double seconds) {
    std::cout << "| " << name << " | " << sci(a.identityFp32) << " / " << sci(a.identityReduced) << " | "
              << fig(a.cosineMean, 5) << " (" << fig(a.cosineMin, 5) << ") | " << fig(a.firstPick, 2) << " / "
              << fig(a.sameList, 2) << " (" << a.textspanHeads << ") | " << fig(a.rankCorrelation) << " | "
              << fig(a.retrievalOverlap) << " | " << fig(a.heatmapCorrelation) << " | " << fig(a.pointingFp32, 2)
              << " / " << fig(a.pointingReduced, 2) << " | " << fig(a.zeroShotFp32) << " / " << fig(a.zeroShotReduced)
              << " |" << std::endl;
    std::cerr << name << ": " << seconds << " s\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::string precision = "bf16", device = "cpu",
                models = "shapes-clip,shapes-vit,shapes-swin,vit-b16,vit-l14,siglip,swin-b";
    AgreementParams params;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--precision")) precision = argv[i + 1];
        if (!std::strcmp(argv[i], "--models")) models = argv[i + 1];
        if (!std::strcmp(argv[i], "--device")) device = argv[i + 1];
        if (!std::strcmp(argv[i], "--images")) params.images = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--zero-shot-images")) params.zeroShotImages = std::atoi(argv[i + 1]);
    }
    configureRuntime();
    try {
        std::cout << "precision " << precision << " vs fp32 on " << deviceDescription(device) << ", " << params.images
                  << " held-out shapes-world scenes\n\n"
                  << "| model | sum identity fp32 / reduced | feature cosine mean (min) | TextSpan first pick / same "
                     "list (heads) | "
                     "property rank corr. | retrieval top-10 overlap | heatmap corr. | pointing fp32 / reduced | "
                     "zero-shot fp32 / reduced |\n"
                  << "|---|---|---|---|---|---|---|---|---|\n";
        std::stringstream list(models);
        std::string name;
        while (std::getline(list, name, ',')) {
            const auto t0 = std::chrono::steady_clock::now();
            const Model f = openNamed(name, "fp32", device), r = openNamed(name, precision, device);
            const AgreementResult a = measureAgreement(f, r, params);
            printRow(name, a, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    } catch (const std::exception& e) {
        std::cerr << "precision_agreement: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
