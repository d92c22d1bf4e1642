// Benchmark of the projector's layouts, printing its figures: PCA, UMAP and t-SNE of N points
// (default 100,000) of CLIP-like dimension (default 512): a mixture of 100 clusters of different
// sizes and spreads in a 64-dimensional subspace plus isotropic noise, rows scaled to unit norm
// (as CLIP embeddings are). For each layout: wall time by stage (the kNN graph included) and the
// trustworthiness (k = 10) of the layout over a 5,000-point subsample (the points and their
// layout positions restricted to it; the exact O(N^2) figure over all points is out of reach).
// Times are wall clock with the process's CPU time (all threads) beside them.
// Usage: bench_projection [--points N] [--dim D] [--methods pca,umap,tsne[,knn]] [--seed S]
#include "analysis/projection.h"

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>

using namespace vitscope;
using Clock = std::chrono::steady_clock;

namespace {

PointMatrix clusteredPoints(int64_t n, int64_t dim, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uniform(0.3f, 1.5f);
    const int clusters = 100, latent = 64;
    Eigen::MatrixXf basis(latent, dim), centres(clusters, latent);
    for (int64_t i = 0; i < basis.size(); ++i) basis.data()[i] = normal(gen) / std::sqrt(static_cast<float>(latent));
    for (int64_t i = 0; i < centres.size(); ++i) centres.data()[i] = 3 * normal(gen);
    std::vector<float> spread(clusters), weight(clusters);
    for (int c = 0; c < clusters; ++c) spread[static_cast<std::size_t>(c)] = uniform(gen), weight[static_cast<std::size_t>(c)] = uniform(gen);
    std::discrete_distribution<int> pick(weight.begin(), weight.end());
    PointMatrix x(n, dim);
    Eigen::RowVectorXf z(latent);
    for (int64_t i = 0; i < n; ++i) {
        const int c = pick(gen);
        for (int j = 0; j < latent; ++j) z[j] = centres(c, j) + spread[static_cast<std::size_t>(c)] * normal(gen);
        x.row(i) = z * basis;
        for (int64_t j = 0; j < dim; ++j) x(i, j) += 0.3f * normal(gen) / std::sqrt(static_cast<float>(dim)) * 8;
        x.row(i).normalize();
    }
    return x;
}

// The process's CPU time (all threads) in seconds: on a shared machine the wall time depends on
// the load, the CPU time much less.
double cpuSeconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// A job whose progress records each stage's wall and CPU time when the stage changes.
struct StageClock {
    std::string stage;
    Clock::time_point start = Clock::now();
    double cpuStart = cpuSeconds();
    std::map<std::string, std::pair<double, double>> seconds;  // stage -> (wall, CPU)
    JobContext job() {
        JobContext j;
        j.progress = [this](const JobProgress& p) {
            if (p.stage == stage) return;
            lap();
            stage = p.stage;
        };
        return j;
    }
    void lap() {
        const auto now = Clock::now();
        const double cpu = cpuSeconds();
        if (!stage.empty()) {
            seconds[stage].first += std::chrono::duration<double>(now - start).count();
            seconds[stage].second += cpu - cpuStart;
        }
        start = now;
        cpuStart = cpu;
    }
};

double subsampleTrust(const PointMatrix& x, const Layout& y, uint64_t seed) {
    const int64_t m = std::min<int64_t>(5000, x.rows());
    std::vector<int64_t> rows(static_cast<std::size_t>(x.rows()));
    for (int64_t i = 0; i < x.rows(); ++i) rows[static_cast<std::size_t>(i)] = i;
    std::shuffle(rows.begin(), rows.end(), std::mt19937_64(seed + 1));
    PointMatrix xs(m, x.cols()), ys(m, 2);
    for (int64_t i = 0; i < m; ++i) xs.row(i) = x.row(rows[static_cast<std::size_t>(i)]), ys.row(i) = y.row(rows[static_cast<std::size_t>(i)]);
    return trustworthiness(xs, ys, 10);
}

}  // namespace

int main(int argc, char** argv) {
    int64_t n = 100000, dim = 512;
    uint64_t seed = 0;
    std::string methods = "pca,umap,tsne";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--points")) n = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dim")) dim = std::stoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--methods")) methods = argv[i + 1];
        else if (!std::strcmp(argv[i], "--seed")) seed = std::stoull(argv[i + 1]);
    }
    std::printf("bench_projection: %lld points x %lld dims (100 clusters in a 64-d subspace + noise, unit rows), %u hardware threads\n",
                static_cast<long long>(n), static_cast<long long>(dim), std::thread::hardware_concurrency());
    const PointMatrix x = clusteredPoints(n, dim, seed);
    std::stringstream list(methods);
    for (std::string m; std::getline(list, m, ',');) {
        StageClock clock;
        const auto t0 = Clock::now();
        const double cpu0 = cpuSeconds();
        if (m == "knn") {  // the UMAP graph's neighbour search alone (k 15, self included)
            KnnParams p;
            p.includeSelf = true;
            nearestNeighbors(x, 15, p, {});
            std::printf("knn   %8.1f s (CPU %.1f s)\n", std::chrono::duration<double>(Clock::now() - t0).count(), cpuSeconds() - cpu0);
            continue;
        }
        TsneReport ran;  // t-SNE: how many iterations sklearn's stopping rule let run
        TsneParams tp;
        tp.seed = seed;
        const Layout y = m == "tsne" ? tsneLayout(x, tp, clock.job(), &ran) : layoutPoints(x, parseLayoutMethod(m), seed, clock.job());
        clock.lap();
        if (m == "tsne") std::printf("tsne  %d iterations run, KL %.4f at the last check\n", ran.iterations, ran.kl);
        const double total = std::chrono::duration<double>(Clock::now() - t0).count();
        std::printf("%-5s %8.1f s in all (CPU %.1f s)", m.c_str(), total, cpuSeconds() - cpu0);
        for (const auto& [stage, s] : clock.seconds) std::printf("; %s %.1f s (CPU %.1f s)", stage.c_str(), s.first, s.second);
        std::printf("; trustworthiness (k 10, 5,000-point subsample) %.4f\n", subsampleTrust(x, y, seed));
        std::fflush(stdout);
    }
    return 0;
}
