// Benchmarks of the analyses, each printing its figures:
//  1. cache build images/s versus plain forward images/s (the same images, decoded and
//     preprocessed in both) on the bundled shapes-clip model and on a random CLIP ViT-B/16;
//  2. head-restricted retrieval by text over a 100,000-image cache of synthetic ViT-B-sized terms
//     (E 512, 12 heads, last 2 layers cached), 1 and 3 heads, and global retrieval;
//  3. TextSpan for all 144 heads of a 12 x 12 model over 10,000 images, 2,000 texts (10 per head, rank 80).
// Usage: bench_analysis [--skip-vitb] [--work DIR]   (DIR needs ~4 GB free; default /tmp)
#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/retrieval.h"
#include "analysis/textspan.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/npy.h"
#include "model/export.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "runtime.h"
#include "shapes/dataset.h"

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

using namespace vitscope;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Plain forward over image files in batches (decode + preprocess + forward), images/s.
double forwardRate(const Model& model, const std::vector<std::string>& images, int batch) {
    at::NoGradGuard guard;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < images.size(); i += static_cast<std::size_t>(batch)) {
        const std::vector<std::string> chunk(images.begin() + static_cast<long>(i),
                                             images.begin() + static_cast<long>(std::min(images.size(), i + static_cast<std::size_t>(batch))));
        encodeImages(model, loadAndPreprocess(chunk, model.preprocess));
    }
    return static_cast<double>(images.size()) / since(t0);
}

void compareCacheToForward(const std::string& name, const Model& model, const std::vector<std::string>& images, int batch,
                           const std::string& work) {
    forwardRate(model, std::vector<std::string>(images.begin(), images.begin() + std::min<std::size_t>(images.size(), batch)), batch);  // warm-up
    const double fwd = forwardRate(model, images, batch);
    CacheBuildParams p;
    p.outDir = work + "/bench-cache-" + name;
    p.batch = batch;
    fs::remove_all(p.outDir);
    const CacheBuildResult r = buildCache(model, images, p, {});
    fs::remove_all(p.outDir);
    std::cout << name << ": " << images.size() << " images, batch " << batch << ": plain forward " << fwd << " images/s, cache build "
              << r.imagesPerSecond << " images/s (" << r.imagesPerSecond / fwd << "x forward)\n";
}

// A complete cache of random terms, written in the cache format.
std::string syntheticCache(const std::string& dir, int64_t n, int layers, const std::vector<int>& cached, int heads, int e) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    const int64_t lc = static_cast<int64_t>(cached.size());
    auto writeArray = [&](const char* file, DType dtype, std::vector<int64_t> rowShape, bool unit) {
        std::vector<int64_t> shape{n};
        shape.insert(shape.end(), rowShape.begin(), rowShape.end());
        std::ofstream out(dir + "/" + file, std::ios::binary);
        const std::string header = npyHeaderBytes(dtype, shape);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        int64_t row = 1;
        for (int64_t d : rowShape) row *= d;
        for (int64_t start = 0; start < n; start += 4096) {
            const int64_t m = std::min<int64_t>(4096, n - start);
            at::Tensor t = at::randn({m, row}) * (unit ? 1.0 : 0.05);
            t = t.to(dtype == DType::F16 ? at::kHalf : at::kFloat).contiguous();
            out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
        }
    };
    writeArray("heads.npy", DType::F16, {lc, heads, e}, false);
    writeArray("mlps.npy", DType::F16, {layers, e}, false);
    writeArray("other.npy", DType::F16, {4, e}, false);
    writeArray("output.npy", DType::F32, {e}, true);
    std::ofstream paths(dir + "/paths.txt");
    for (int64_t i = 0; i < n; ++i) paths << "synthetic/" << i << ".png\n";
    const nlohmann::json manifest{{"format", "vitscope-cache"},
                                  {"version", 1},
                                  {"complete", true},
                                  {"rows", n},
                                  {"inputs", n},
                                  {"model_name", "synthetic"},
                                  {"settings",
                                   {{"fingerprint", "synthetic"},
                                    {"layers", layers},
                                    {"heads", heads},
                                    {"embed_dim", e},
                                    {"cached_layers", cached},
                                    {"convention", "exact"}}}};
    std::ofstream(dir + "/manifest.json") << manifest.dump(1);
    return dir;
}

template <typename Fn>
double bestMs(int repeats, Fn fn) {
    double best = 1e30;
    for (int i = 0; i < repeats; ++i) {
        const auto t0 = Clock::now();
        fn();
        best = std::min(best, since(t0) * 1000.0);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    bool skipVitb = false, onlyCache = false;
    int vitbImages = 64;
    std::string work = "/tmp";
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--skip-vitb")) skipVitb = true;
        if (!std::strcmp(argv[i], "--only-cache")) onlyCache = true;
        if (!std::strcmp(argv[i], "--vitb-images") && i + 1 < argc) vitbImages = std::atoi(argv[++i]);
        if (!std::strcmp(argv[i], "--work") && i + 1 < argc) work = argv[++i];
    }
    configureRuntime();
    std::cout << "threads: ATen intra-op " << atenThreads() << "\n";

    // 1. Cache build versus forward.
    shapes::GenerateParams gen;
    gen.outDir = work + "/bench-world";
    gen.count = 2000;
    gen.seed = 77;
    shapes::generateDataset(gen, {});
    const std::vector<std::string> shapesImages = listImages(gen.outDir + "/images");
    const Model shapesClip = loadModel(std::string(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip");
    compareCacheToForward("shapes-clip", shapesClip, shapesImages, 64, work);
    if (!skipVitb) {
        RandomVitSpec spec;
        spec.imageSize = 224, spec.patchSize = 16, spec.width = 768, spec.layers = 12, spec.embedDim = 512;
        spec.textWidth = 64, spec.textLayers = 1, spec.seed = 1;
        const Model vitb = buildModel(randomVitStateDict(spec), {{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}}, "random ViT-B/16");
        const std::string modelDir = work + "/bench-vitb";
        fs::create_directories(modelDir);
        saveOpenClipModel(vitb, modelDir);
        const Model saved = loadModel(modelDir);
        std::vector<std::string> big;
        for (int i = 0; i < vitbImages; ++i) {
            cv::Mat img(256, 320, CV_8UC3);
            cv::randu(img, 0, 255);
            big.push_back(work + "/bench-vitb/img" + std::to_string(i) + ".png");
            writeImage(big.back(), img);
        }
        compareCacheToForward("random ViT-B/16", saved, big, 16, work);
        fs::remove_all(modelDir);
    }
    fs::remove_all(gen.outDir);

    if (onlyCache) return 0;
    // 2. Retrieval over 100,000 images.
    {
        const std::string dir = syntheticCache(work + "/bench-cache-100k", 100000, 12, {10, 11}, 12, 512);
        const DatasetCache cache(dir);
        const CacheView view(cache, nullptr);
        at::Tensor t = at::randn({512});
        t = t / t.norm();
        const std::vector<Component> one{{Component::Kind::Head, 11, 3}};
        const std::vector<Component> three{{Component::Kind::Head, 11, 3}, {Component::Kind::Head, 11, 7}, {Component::Kind::Head, 10, 0}};
        retrieveByText(view, t, three, 20);  // page the arrays in
        std::cout << "retrieval over 100,000 cached images (E 512), top 20: 1 head " << bestMs(5, [&] { retrieveByText(view, t, one, 20); })
                  << " ms, 3 heads " << bestMs(5, [&] { retrieveByText(view, t, three, 20); }) << " ms, global "
                  << bestMs(5, [&] { retrieveByText(view, t, {}, 20); }) << " ms\n";
        fs::remove_all(dir);
    }

    // 3. TextSpan for a 12 x 12 model over 10,000 images.
    {
        std::vector<int> all;
        for (int l = 0; l < 12; ++l) all.push_back(l);
        const std::string dir = syntheticCache(work + "/bench-cache-10k", 10000, 12, all, 12, 512);
        const DatasetCache cache(dir);
        const CacheView view(cache, nullptr);
        at::Tensor texts = at::randn({2000, 512});
        texts = texts / texts.norm(2, 1, true);
        TextSpanParams p;  // the reference's defaults: 10 texts per head, texts projected at rank 80
        runTextSpan(view, texts, p, {{Component::Kind::Head, 0, 0}}, {});  // page in one head
        const auto t0 = Clock::now();
        const auto result = runTextSpan(view, texts, p, {}, {});
        std::cout << "TextSpan: " << result.size() << " heads x 10,000 images x 2,000 texts, " << p.perHead << " per head, rank "
                  << p.rank << ": " << since(t0) << " s\n";
        fs::remove_all(dir);
    }
    return 0;
}
