#pragma once
// Two-dimensional layouts of a point set (the projector's PCA, t-SNE and UMAP) and the
// trustworthiness of a layout. Torch-free: plain Eigen matrices in, [N, 2] out.
//
//   PointMatrix x = ...;                          // [N, F], one row per point
//   UmapParams p;  p.seed = 7;
//   Layout y = umapLayout(x, p, job);             // [N, 2]; the same for the same seed
//   double t = trustworthiness(x, y, 10);         // sklearn.manifold.trustworthiness
//
// Defaults are the references' (umap-learn 0.5, scikit-learn 1.2's TSNE); docs/results-analyses.md
// compares the layouts' trustworthiness with theirs.
#include "job.h"

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vitscope {

using PointMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;  // [N, F]
using Layout = Eigen::Matrix<float, Eigen::Dynamic, 2, Eigen::RowMajor>;                     // [N, 2]

struct PcaResult {
    Eigen::RowVectorXd mean;         // [F]
    Eigen::MatrixXd components;      // [k, F], orthonormal rows, highest variance first
    Eigen::VectorXd variance;        // [k] explained variance (divided by N - 1, as sklearn)
    Eigen::MatrixXd scores;          // [N, k] centred points on the components
};

// Principal components of the rows of x (covariance eigen-decomposition in double). Signs follow
// sklearn's svd_flip: in each column of the scores the entry of largest magnitude is positive.
PcaResult principalComponents(const PointMatrix& x, int k);
Layout pcaLayout(const PointMatrix& x);

// Nearest neighbours by Euclidean distance: [N, k] indices and distances, nearest first (ties by
// index). Exact below `exactBelow` points: blocked dot products through BLAS (ATen's mm), each
// pair of blocks once, a bounded heap per row; the same result whatever the thread count.
// hnswlib's HNSW graph above, built on one thread with `seed` (so the same for the same seed).
// The default switch point is where the exact search (O(N^2 F)) stops being the faster of the two
// on 512-dimensional points (bench/bench_projection.cpp: 100,000 points exact in about a minute
// of CPU, HNSW several); umap-learn itself uses NN-descent (approximate) above 4,096 points.
constexpr int64_t kExactKnnBelow = 250000;
struct KnnParams {
    bool includeSelf = false;  // umap-learn's graph lists each point as its own first neighbour
    int64_t exactBelow = kExactKnnBelow;
    int hnswM = 16, efConstruction = 200, efSearch = 0;  // efSearch 0: max(2 k, 64)
    uint64_t seed = 0;
};
struct KnnGraph {
    int64_t n = 0;
    int k = 0;
    std::vector<int32_t> index;  // [n, k]
    std::vector<float> distance;  // [n, k]
};
KnnGraph nearestNeighbors(const PointMatrix& x, int k, const KnnParams& params, const JobContext& job);

struct TsneParams {
    double perplexity = 30;
    double earlyExaggeration = 12;
    int exaggerationIterations = 250;  // momentum 0.5 meanwhile, 0.8 after
    int iterations = 1000;             // in all, the exaggerated ones included
    double learningRate = 0;           // 0: sklearn's 'auto', max(N / exaggeration / 4, 50)
    double theta = 0.5;                // Barnes-Hut angle
    // sklearn's stop: every 50 iterations the KL divergence is computed; a stage ends when its best
    // check is more than this many iterations back (the exaggerated stage: its own length), or when
    // the gradient's norm is at most minGradNorm.
    int withoutProgress = 300;
    double minGradNorm = 1e-7;
    uint64_t seed = 0;
    int64_t exactKnnBelow = kExactKnnBelow;
    void validate(int64_t points) const;  // throws InputError naming the field
    std::string toString() const;
};
// Barnes-Hut t-SNE (van der Maaten 2014) with sklearn's schedule, gains and PCA initialisation
// (scaled to a standard deviation of 1e-4 along its first axis).
// `report` (when given): the iterations run (sklearn's n_iter_ + 1), the KL divergence at the last
// check, and every check's (iterations run, divergence).
struct TsneReport {
    int iterations = 0;
    double kl = 0;
    std::vector<std::pair<int, double>> checks;
};
Layout tsneLayout(const PointMatrix& x, const TsneParams& params, const JobContext& job, TsneReport* report = nullptr);

struct UmapParams {
    int neighbors = 15;
    double minDist = 0.1, spread = 1.0;
    int epochs = 0;  // 0: 500 up to 10,000 points, 200 above (umap-learn)
    int negativeSampleRate = 5;
    double learningRate = 1.0, repulsion = 1.0;
    uint64_t seed = 0;
    int64_t exactKnnBelow = kExactKnnBelow;
    void validate(int64_t points) const;
    std::string toString() const;
};
// UMAP (McInnes et al. 2018) as umap-learn computes it: fuzzy simplicial set (local connectivity
// 1, union), spectral initialisation (per connected component when the graph is not connected),
// the epoch-sampled SGD with negative sampling.
Layout umapLayout(const PointMatrix& x, const UmapParams& params, const JobContext& job);
// umap-learn's find_ab_params: a, b of 1 / (1 + a d^2b) fitted to the min_dist / spread curve.
std::pair<double, double> umapCurve(double spread, double minDist);

// sklearn.manifold.trustworthiness (Euclidean): 1 - 2 / (N k (2N - 3k - 1)) * sum over points of
// sum over their k layout neighbours of max(0, rank among the point's original neighbours - k).
// Needs k < N / 2. O(N^2 F) time, O(N) memory per row block.
double trustworthiness(const PointMatrix& high, const PointMatrix& low, int k, const JobContext& job = {});

enum class LayoutMethod { Pca, Tsne, Umap };
LayoutMethod parseLayoutMethod(const std::string& name);  // "pca", "tsne", "umap"
// The method with its default parameters and this seed.
Layout layoutPoints(const PointMatrix& x, LayoutMethod method, uint64_t seed, const JobContext& job);

}  // namespace vitscope
