// Nearest-neighbour graphs for the projector: blocked exact search below a size, hnswlib above.
#include "analysis/projection.h"
#include "error.h"

#include <ATen/ATen.h>
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>

namespace vitscope {

namespace {

constexpr int64_t kRowBlock = 2048;

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

// The k nearest of each row seen so far: a max-heap of (squared distance, index) per row, and the
// row's current worst as a quick filter. The kept set is the k smallest in that total order,
// whatever order the candidates come in, so threads and blocks cannot change it.
struct RowHeaps {
    int cap = 0;
    std::vector<Pair> heap;     // [n, cap]
    std::vector<int> size;      // [n]
    std::vector<float> worst;   // [n], +inf until the heap is full
    RowHeaps(int64_t n, int c)
        : cap(c), heap(static_cast<std::size_t>(n * c)), size(static_cast<std::size_t>(n), 0),
          worst(static_cast<std::size_t>(n), c > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity()) {}
    void offer(int64_t row, float d, int32_t j) {
        Pair* h = &heap[static_cast<std::size_t>(row * cap)];
        int& s = size[static_cast<std::size_t>(row)];
        const Pair p{d, j};
        if (s < cap) {
            h[s++] = p;
            std::push_heap(h, h + s);
        } else if (p < h[0]) {
            std::pop_heap(h, h + s);
            h[s - 1] = p;
            std::push_heap(h, h + s);
        } else {
            return;
        }
        if (s == cap) worst[static_cast<std::size_t>(row)] = h[0].first;
    }
};

// One block of dot products [rows of I, rows of J]: offers each J point to the I rows (rowSide)
// or each I point to the J rows (the other side of the symmetric distance), never a point to itself.
struct DotBlock {
    const float* dots;
    int64_t i0, rows, j0, cols;
    const float* norms;
};

void offerRowSide(const DotBlock& b, RowHeaps& h) {
    for (int64_t r = 0; r < b.rows; ++r) {
        const int64_t i = b.i0 + r;
        const float* g = b.dots + r * b.cols;
        const float ni = b.norms[i], *nj = b.norms + b.j0;
        for (int64_t c = 0; c < b.cols; ++c) {
            const float d = ni + nj[c] - 2 * g[c];
            if (d <= h.worst[static_cast<std::size_t>(i)] && b.j0 + c != i) h.offer(i, d, static_cast<int32_t>(b.j0 + c));
        }
    }
}

void offerColumnSide(const DotBlock& b, RowHeaps& h) {
    const float* worst = h.worst.data() + b.j0;
    for (int64_t r = 0; r < b.rows; ++r) {
        const int64_t i = b.i0 + r;
        const float* g = b.dots + r * b.cols;
        const float ni = b.norms[i], *nj = b.norms + b.j0;
        for (int64_t c = 0; c < b.cols; ++c) {
            const float d = ni + nj[c] - 2 * g[c];
            if (d <= worst[c] && b.j0 + c != i) h.offer(b.j0 + c, d, static_cast<int32_t>(i));
        }
    }
}

// One block pair [I, J] (I <= J): its dot products through BLAS (ATen's mm), offered to I's rows
// and, when J is another block, to J's rows. A row block's lock keeps two workers off its heaps
// at once; the heaps keep the same neighbours whatever order the blocks come in.
void blockPair(const at::Tensor& all, const float* norms, int64_t i0, int64_t j0, RowHeaps& heaps, std::vector<std::mutex>& locks) {
    const int64_t n = all.size(0), rows = std::min(kRowBlock, n - i0), cols = std::min(kRowBlock, n - j0);
    const at::Tensor dots = at::mm(all.narrow(0, i0, rows), all.narrow(0, j0, cols).t()).contiguous();
    const DotBlock b{dots.data_ptr<float>(), i0, rows, j0, cols, norms};
    {
        const std::lock_guard<std::mutex> hold(locks[static_cast<std::size_t>(i0 / kRowBlock)]);
        offerRowSide(b, heaps);
    }
    if (j0 != i0) {
        const std::lock_guard<std::mutex> hold(locks[static_cast<std::size_t>(j0 / kRowBlock)]);
        offerColumnSide(b, heaps);
    }
}

// Exact neighbours from blocked dot products, each pair of blocks once (the distance is
// symmetric), the pairs shared among the hardware threads (each GEMM on one). Progress and the
// cancel check on the calling thread, which works too.
void exactNeighbors(const PointMatrix& x, int k, bool includeSelf, KnnGraph& g, const JobContext& job) {
    const int64_t n = x.rows(), blocks = (n + kRowBlock - 1) / kRowBlock;
    const Eigen::VectorXf norms = x.rowwise().squaredNorm();
    RowHeaps heaps(n, k - (includeSelf ? 1 : 0));
    const at::Tensor all = at::from_blob(const_cast<float*>(x.data()), {n, x.cols()}, at::kFloat);
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (int64_t i = 0; i < blocks; ++i)
        for (int64_t j = i; j < blocks; ++j) pairs.push_back({i * kRowBlock, j * kRowBlock});
    std::vector<std::mutex> locks(static_cast<std::size_t>(blocks));
    std::atomic<std::size_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    std::exception_ptr failed;  // a helper's error (out of memory), rethrown here
    std::mutex failedLock;
    auto work = [&] {
        try {
            for (std::size_t p; !stop && (p = next++) < pairs.size(); ++done) blockPair(all, norms.data(), pairs[p].first, pairs[p].second, heaps, locks);
        } catch (...) {
            const std::lock_guard<std::mutex> hold(failedLock);
            failed = std::current_exception();
            stop = true;
        }
    };
    const auto helpers = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), static_cast<int64_t>(pairs.size())) - 1;
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < helpers; ++t) pool.emplace_back(work);
    for (std::size_t p; !stop && (p = next++) < pairs.size(); ++done) {
        stop = job.cancelled();
        if (!stop) blockPair(all, norms.data(), pairs[p].first, pairs[p].second, heaps, locks);
        job.report({static_cast<int64_t>(done), static_cast<int64_t>(pairs.size()), 0, 0, "nearest neighbours (exact)"});
    }
    for (std::thread& t : pool) t.join();
    if (failed) std::rethrow_exception(failed);
    if (stop) throw JobCancelled();
    std::vector<Pair> cand;
    for (int64_t i = 0; i < n; ++i) {
        const Pair* h = &heaps.heap[static_cast<std::size_t>(i * heaps.cap)];
        cand.assign(h, h + heaps.size[static_cast<std::size_t>(i)]);
        keepNearest(cand, i, k, includeSelf, &g.index[static_cast<std::size_t>(i * k)], &g.distance[static_cast<std::size_t>(i * k)]);
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
