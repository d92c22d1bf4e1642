// Benchmark: building a dataset cache (decode + preprocess + per-head decomposition + fp16 files)
// of N JPEG images with a random CLIP ViT-B/16 (or L/14), beside the plain forward at the same
// batch and the decoding alone, so the three rates show which stage bounds the build.
// The images (500 x 375, ImageNet's most common size, smooth seeded noise) are written once into
// WORK/images and reused by later runs.
// Usage: bench_cache [--images N] [--batch B] [--loaders T] [--device cpu|cuda] [--family clip|clip-l14]
//                    [--work DIR] [--save-model DIR] [--precision fp32,bf16]
// --precision: each listed precision in turn (model/precision.h), the same weights and images: its
// forward, decomposition and cache build rates, and the build's images/s against the first's.
// --save-model DIR: write the images and the random model (open_clip layout) into DIR, then stop
// (bench/run-shard-bench.sh builds caches from them with vitscope-cli, sharded and not).
#include "analysis/cache.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "model/forward.h"
#include "model/export.h"
#include "model/loader.h"
#include "model/precision.h"
#include "model/random_weights.h"
#include "runtime.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

using namespace vitscope;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <typename Fn>
void parallelFor(int64_t n, int threads, Fn fn) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (int64_t i = t; i < n; i += threads) fn(i);
        });
    for (std::thread& t : pool) t.join();
}

std::vector<std::string> makeImages(const std::string& dir, int64_t n, int threads) {
    fs::create_directories(dir);
    std::vector<std::string> paths(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) paths[static_cast<std::size_t>(i)] = dir + "/" + std::to_string(100000 + i) + ".jpg";
    parallelFor(n, threads, [&](int64_t i) {
        const std::string& p = paths[static_cast<std::size_t>(i)];
        if (fs::exists(p)) return;
        cv::Mat img(375, 500, CV_8UC3);
        cv::RNG rng(static_cast<uint64_t>(i) + 1);
        rng.fill(img, cv::RNG::UNIFORM, 0, 256);
        cv::GaussianBlur(img, img, {0, 0}, 3.0);
        writeImage(p, img);
    });
    return paths;
}

// The plain forward and the per-head decomposition at the build's batch (no files, no decoding),
// then the cache build itself; returns the build's images/s.
double measureBuild(const Model& model, const std::vector<std::string>& images, const std::string& family, const std::string& work,
                    int batch, int loaders, const at::Device& device) {
    auto t0 = Clock::now();
    {
        at::NoGradGuard guard;
        const at::Tensor pixels = at::randn({batch, 3, 224, 224}).to(device);
        encodeImages(model, pixels);
        decomposeImages(model, pixels);
        const int reps = device.is_cuda() ? 10 : 2;
        synchronizeDevice(device);
        t0 = Clock::now();
        for (int r = 0; r < reps; ++r) encodeImages(model, pixels);
        synchronizeDevice(device);
        const double fwdRate = reps * batch / secondsSince(t0);
        t0 = Clock::now();
        for (int r = 0; r < reps; ++r) decomposeImages(model, pixels);
        synchronizeDevice(device);
        const double decRate = reps * batch / secondsSince(t0);
        std::cout << precisionName(model.precision) << ": forward " << fwdRate << " images/s; per-head decomposition " << decRate << " images/s\n";
    }
    const std::string out = work + "/cache-" + family + "-" + std::to_string(images.size());
    fs::remove_all(out);
    CacheBuildParams params;
    params.outDir = out;
    params.batch = batch;
    params.loaders = loaders;
    const CacheBuildResult r = buildCache(model, images, params, {});
    std::uintmax_t bytes = 0;
    for (const auto& e : fs::directory_iterator(out))
        if (e.is_regular_file()) bytes += e.file_size();
    std::cout << precisionName(model.precision) << ": cache build " << r.rows << " images in " << r.seconds << " s = " << r.imagesPerSecond
              << " images/s (" << bytes / 1e9 << " GB written)\n";
    fs::remove_all(out);
    return r.imagesPerSecond;
}

}  // namespace

int run(int argc, char** argv) {
    int64_t count = 10000;
    int batch = 64, loaders = 0;
    std::string family = "clip", work = "bench-cache-work", saveModel, precisions = "fp32";
    at::Device device(at::kCPU);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--images")) count = std::atoll(argv[i + 1]);
        if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--loaders")) loaders = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--device")) device = pickDevice(argv[i + 1]);
        if (!std::strcmp(argv[i], "--family")) family = argv[i + 1];
        if (!std::strcmp(argv[i], "--work")) work = argv[i + 1];
        if (!std::strcmp(argv[i], "--save-model")) saveModel = argv[i + 1];
        if (!std::strcmp(argv[i], "--precision")) precisions = argv[i + 1];
    }
    configureRuntime();
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::cout << "device: " << device << "; LibTorch: " << deviceSummary() << "; " << cores << " cores; image codecs: " << imageCodecsName() << "\n";

    auto t0 = Clock::now();
    const std::vector<std::string> images = makeImages(work + "/images", count, cores);
    std::cout << count << " JPEG images (500 x 375) ready in " << secondsSince(t0) << " s\n";

    const bool large = family == "clip-l14";
    Model model = buildModel(randomVitStateDict(clipBenchSpec(large)), {{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}},
                             large ? "random ViT-L/14" : "random ViT-B/16");
    model.info.weightsPath.clear();  // in memory only: the cache records it as "unsaved"
    if (!saveModel.empty()) {
        fs::create_directories(saveModel);
        saveOpenClipModel(model, saveModel);
        std::cout << "model saved in " << saveModel << "\n";
        return 0;
    }
    moveModel(model, device);
    std::cout << "model: random CLIP " << (large ? "ViT-L/14" : "ViT-B/16") << ", batch " << batch << "\n";

    // Decoding + preprocessing alone, on every core.
    const int64_t decodeCount = std::min<int64_t>(count, 2000);
    t0 = Clock::now();
    parallelFor(decodeCount, cores, [&](int64_t i) { preprocessImage(loadImageRgb(images[static_cast<std::size_t>(i)]), model.preprocess); });
    const double decodeRate = static_cast<double>(decodeCount) / secondsSince(t0);
    std::cout << "decode + preprocess: " << decodeRate << " images/s on " << cores << " threads (" << decodeCount << " images)\n";

    // Each precision in turn (--precision fp32,bf16): the same weights, the same images.
    double firstRate = 0;
    std::stringstream list(precisions);
    for (std::string item; std::getline(list, item, ',');) {
        Model m = model;
        applyPrecision(m, resolvePrecision(item, device.is_cuda() ? "cuda" : "cpu"));
        const double rate = measureBuild(m, images, family, work, batch, loaders, device);
        if (firstRate == 0) firstRate = rate;
        std::cout << precisionName(m.precision) << ": cache build " << rate << " images/s, " << rate / firstRate << "x the first precision's\n";
    }
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "bench_cache: " << e.what() << "\n";
        return 2;
    }
}
