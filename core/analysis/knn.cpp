// Nearest-neighbour graphs for the projector: blocked exact search below a size, hnswlib above.
#include "analysis/projection.h"
#include "error.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

namespace vitscope {

namespace {

constexpr int64_t kRowBlock = 256;

using Pair = std::pair<float, int32_t>;  // (squared distance, index), ordered by distance then index

// The k nearest of a row's candidates, self first when it is wanted and excluded otherwise.
void keepNearest(std::vector<Pair>& cand, int64_t self, int k, bool includeSelf, int32_t* index, float* distance) {
    cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const Pair& p) { return p.second == self; }), cand.end());
    int out = 0;
    if (includeSelf) {
        index[0] = static_cast<int32_t>(self);
        distance[0] = 0;
        out = 1;
    }
    const int need = k - out;
    std::partial_sort(cand.begin(), cand.begin() + need, cand.end());
    for (int j = 0; j < need; ++j) {
        index[out + j] = cand[static_cast<std::size_t>(j)].second;
        distance[out + j] = std::sqrt(std::max(0.0f, cand[static_cast<std::size_t>(j)].first));
    }
}

void exactNeighbors(const PointMatrix& x, int k, bool includeSelf, KnnGraph& g, const JobContext& job) {
    const int64_t n = x.rows();
    const Eigen::VectorXf norms = x.rowwise().squaredNorm();
    std::vector<Pair> cand(static_cast<std::size_t>(n));
    for (int64_t start = 0; start < n; start += kRowBlock) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t rows = std::min(kRowBlock, n - start);
        const Eigen::MatrixXf dots = x.middleRows(start, rows) * x.transpose();  // [rows, n]
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = start + r;
            cand.resize(static_cast<std::size_t>(n));
            for (int64_t j = 0; j < n; ++j) cand[static_cast<std::size_t>(j)] = {norms[i] + norms[j] - 2 * dots(r, j), static_cast<int32_t>(j)};
            keepNearest(cand, i, k, includeSelf, &g.index[static_cast<std::size_t>(i * k)], &g.distance[static_cast<std::size_t>(i * k)]);
        }
        job.report({start + rows, n, 0, 0, "nearest neighbours (exact)"});
    }
}

void approximateNeighbors(const PointMatrix& x, int k, const KnnParams& p, KnnGraph& g, const JobContext& job) {
    const int64_t n = x.rows();
    hnswlib::L2Space space(static_cast<std::size_t>(x.cols()));
    hnswlib::HierarchicalNSW<float> index(&space, static_cast<std::size_t>(n), static_cast<std::size_t>(p.hnswM),
                                          static_cast<std::size_t>(p.efConstruction), static_cast<std::size_t>(p.seed % 1000003));
    // One thread inserts, so the graph is the same for the same seed.
    for (int64_t i = 0; i < n; ++i) {
        if (i % 1024 == 0) {
            if (job.cancelled()) throw JobCancelled();
            job.report({i, 2 * n, 0, 0, "nearest neighbours (HNSW index)"});
        }
        index.addPoint(x.row(i).data(), static_cast<std::size_t>(i));
    }
    index.setEf(static_cast<std::size_t>(p.efSearch > 0 ? p.efSearch : std::max(2 * (k + 1), 64)));
    // Queries only read the graph: split over threads, each answer independent of the others.
    auto search = [&](int64_t begin, int64_t end) {
        std::vector<Pair> cand;
        for (int64_t i = begin; i < end; ++i) {
            auto heap = index.searchKnn(x.row(i).data(), static_cast<std::size_t>(k + 1));
            cand.clear();
            for (; !heap.empty(); heap.pop()) cand.push_back({heap.top().first, static_cast<int32_t>(heap.top().second)});
            while (static_cast<int>(cand.size()) < k + 1) cand.push_back({std::numeric_limits<float>::max(), static_cast<int32_t>(i)});
            keepNearest(cand, i, k, p.includeSelf, &g.index[static_cast<std::size_t>(i * k)], &g.distance[static_cast<std::size_t>(i * k)]);
        }
    };
    const int64_t threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
    const int64_t chunk = 4096;
    for (int64_t start = 0; start < n; start += chunk * threads) {
        if (job.cancelled()) throw JobCancelled();
        std::vector<std::thread> pool;
        for (int64_t t = 0; t < threads; ++t) {
            const int64_t b = std::min(n, start + t * chunk), e = std::min(n, b + chunk);
            if (b < e) pool.emplace_back(search, b, e);
        }
        for (std::thread& th : pool) th.join();
        job.report({n + std::min(n, start + chunk * threads), 2 * n, 0, 0, "nearest neighbours (HNSW search)"});
    }
}

}  // namespace

KnnGraph nearestNeighbors(const PointMatrix& x, int k, const KnnParams& params, const JobContext& job) {
    const int64_t n = x.rows();
    if (k < 1 || k >= n + (params.includeSelf ? 1 : 0))
        throw InputError("neighbours", std::to_string(k) + " asked of " + std::to_string(n) + " points");
    if (!x.allFinite()) throw InputError("points", "hold NaN or infinite values");
    KnnGraph g;
    g.n = n;
    g.k = k;
    g.index.assign(static_cast<std::size_t>(n * k), 0);
    g.distance.assign(static_cast<std::size_t>(n * k), 0);
    if (n < params.exactBelow) exactNeighbors(x, k, params.includeSelf, g, job);
    else approximateNeighbors(x, k, params, g, job);
    return g;
}

}  // namespace vitscope
