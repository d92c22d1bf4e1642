// PCA, trustworthiness and the layout dispatch of the projector (t-SNE: tsne.cpp, UMAP: umap.cpp).
#include "analysis/projection.h"
#include "error.h"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vitscope {

namespace {

// Top-k eigenpairs of a symmetric matrix, largest first.
void topEigen(const Eigen::MatrixXd& s, int k, Eigen::VectorXd& values, Eigen::MatrixXd& vectors) {
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(s);
    const int64_t m = s.rows();
    values.resize(k);
    vectors.resize(m, k);
    for (int j = 0; j < k; ++j) {
        values[j] = std::max(0.0, eig.eigenvalues()[m - 1 - j]);
        vectors.col(j) = eig.eigenvectors().col(m - 1 - j);
    }
}

}  // namespace

PcaResult principalComponents(const PointMatrix& x, int k) {
    const int64_t n = x.rows(), f = x.cols();
    if (n < 2) throw InputError("points", "PCA needs at least 2 points, got " + std::to_string(n));
    if (k < 1 || k > std::min(n, f)) throw InputError("components", std::to_string(k) + " asked of " + std::to_string(n) + " x " + std::to_string(f) + " points");
    PcaResult r;
    const Eigen::MatrixXd xd = x.cast<double>();
    r.mean = xd.colwise().mean();
    const Eigen::MatrixXd c = xd.rowwise() - r.mean;
    Eigen::VectorXd values;
    Eigen::MatrixXd vectors;
    if (f <= n) {
        topEigen(c.transpose() * c, k, values, vectors);  // [F, k] right singular vectors
        r.components = vectors.transpose();
        r.scores = c * vectors;
    } else {
        topEigen(c * c.transpose(), k, values, vectors);  // [N, k] left singular vectors (the Gram form)
        r.components.resize(k, f);
        for (int j = 0; j < k; ++j) {
            const Eigen::RowVectorXd v = vectors.col(j).transpose() * c;
            r.components.row(j) = v / std::max(v.norm(), 1e-300);
        }
        r.scores = c * r.components.transpose();
    }
    r.variance = values / static_cast<double>(n - 1);
    // svd_flip (u-based): the largest-magnitude score of each component positive.
    for (int j = 0; j < k; ++j) {
        Eigen::Index at = 0;
        r.scores.col(j).cwiseAbs().maxCoeff(&at);
        if (r.scores(at, j) < 0) {
            r.scores.col(j) *= -1;
            r.components.row(j) *= -1;
        }
    }
    return r;
}

Layout pcaLayout(const PointMatrix& x) {
    if (x.cols() < 2) throw InputError("points", "a 2-D layout needs points of at least 2 dimensions");
    return principalComponents(x, 2).scores.cast<float>();
}

namespace {

// Rank of each of a point's layout neighbours among its original neighbours (1 = nearest),
// with ties counted as sklearn's argsort sees distinct values.
double rowPenalty(const Eigen::Ref<const Eigen::RowVectorXd>& dist, int64_t self, const int32_t* neighbours, int k) {
    double penalty = 0;
    for (int j = 0; j < k; ++j) {
        const double d = dist[neighbours[j]];
        int64_t rank = 1;
        for (int64_t l = 0; l < dist.size(); ++l)
            if (l != self && (dist[l] < d || (dist[l] == d && l < neighbours[j]))) ++rank;
        penalty += std::max<int64_t>(0, rank - k);
    }
    return penalty;
}

}  // namespace

double trustworthiness(const PointMatrix& high, const PointMatrix& low, int k, const JobContext& job) {
    const int64_t n = high.rows();
    if (low.rows() != n) throw InputError("layout", std::to_string(low.rows()) + " rows for " + std::to_string(n) + " points");
    if (k < 1 || k >= n / 2.0) throw InputError("neighbours", "trustworthiness needs 1 <= k < N / 2 (k = " + std::to_string(k) + ", N = " + std::to_string(n) + ")");
    KnnParams exact;
    exact.exactBelow = n + 1;
    const KnnGraph lowKnn = nearestNeighbors(low, k, exact, job.staged("layout neighbours"));
    const Eigen::MatrixXd x = high.cast<double>();
    const Eigen::VectorXd norms = x.rowwise().squaredNorm();
    double total = 0;
    constexpr int64_t kBlock = 256;
    for (int64_t start = 0; start < n; start += kBlock) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t rows = std::min(kBlock, n - start);
        Eigen::MatrixXd d = -2.0 * (x.middleRows(start, rows) * x.transpose());
        d.colwise() += norms.segment(start, rows);
        d.rowwise() += norms.transpose();
        for (int64_t r = 0; r < rows; ++r) total += rowPenalty(d.row(r), start + r, &lowKnn.index[static_cast<std::size_t>((start + r) * k)], k);
        job.report({start + rows, n, 0, 0, "trustworthiness"});
    }
    const double nd = static_cast<double>(n);
    return 1.0 - total * (2.0 / (nd * k * (2.0 * nd - 3.0 * k - 1.0)));
}

LayoutMethod parseLayoutMethod(const std::string& name) {
    if (name == "pca") return LayoutMethod::Pca;
    if (name == "tsne" || name == "t-sne") return LayoutMethod::Tsne;
    if (name == "umap") return LayoutMethod::Umap;
    throw InputError("--method", "unknown layout method '" + name + "' (pca, umap, tsne)");
}

Layout layoutPoints(const PointMatrix& x, LayoutMethod method, uint64_t seed, const JobContext& job) {
    switch (method) {
    case LayoutMethod::Pca: return pcaLayout(x);
    case LayoutMethod::Tsne: {
        TsneParams p;
        p.seed = seed;
        return tsneLayout(x, p, job);
    }
    case LayoutMethod::Umap: {
        UmapParams p;
        p.seed = seed;
        return umapLayout(x, p, job);
    }
    }
    return {};
}

void TsneParams::validate(int64_t points) const {
    if (!(perplexity > 0)) throw InputError("perplexity", "must be positive");
    if (points < 4) throw InputError("points", "t-SNE needs at least 4 points, got " + std::to_string(points));
    if (perplexity >= static_cast<double>(points))
        throw InputError("perplexity", std::to_string(static_cast<int>(perplexity)) + " must be below the number of points (" + std::to_string(points) + "), as sklearn requires");
    if (!(earlyExaggeration >= 1)) throw InputError("early exaggeration", "must be at least 1");
    if (iterations < 1 || exaggerationIterations < 0 || exaggerationIterations > iterations)
        throw InputError("iterations", "need 0 <= exaggerated iterations <= iterations, iterations >= 1");
    if (learningRate < 0) throw InputError("learning rate", "must be positive (0: auto)");
    if (!(theta >= 0 && theta <= 1)) throw InputError("theta", "must be in [0, 1]");
    if (withoutProgress < 0 || !(minGradNorm >= 0)) throw InputError("stopping rule", "iterations without progress and the gradient norm must not be negative");
}

std::string TsneParams::toString() const {
    std::ostringstream s;
    s << "t-SNE (Barnes-Hut): perplexity " << perplexity << ", early exaggeration " << earlyExaggeration << " for " << exaggerationIterations
      << " iterations, " << iterations << " iterations, learning rate " << (learningRate > 0 ? std::to_string(learningRate) : "auto")
      << ", theta " << theta << ", stop after " << withoutProgress << " iterations without progress or at gradient norm " << minGradNorm
      << ", PCA init, seed " << seed;
    return s.str();
}

void UmapParams::validate(int64_t points) const {
    if (neighbors < 2) throw InputError("neighbours", "UMAP needs at least 2");
    if (points < 4) throw InputError("points", "UMAP needs at least 4 points, got " + std::to_string(points));
    if (!(minDist >= 0) || !(spread > 0) || minDist > spread) throw InputError("min_dist", "needs 0 <= min_dist <= spread, spread > 0");
    if (epochs < 0 || negativeSampleRate < 0) throw InputError("epochs", "must not be negative");
    if (!(learningRate > 0)) throw InputError("learning rate", "must be positive");
}

std::string UmapParams::toString() const {
    std::ostringstream s;
    s << "UMAP: " << neighbors << " neighbours, min_dist " << minDist << ", spread " << spread << ", epochs "
      << (epochs > 0 ? std::to_string(epochs) : "auto (500 up to 10,000 points, else 200)") << ", negative sample rate "
      << negativeSampleRate << ", learning rate " << learningRate << ", spectral init, seed " << seed;
    return s.str();
}

}  // namespace vitscope
