// UMAP's spectral initialisation with Eigen only: the eigenvectors of the normalised Laplacian
// L = I - D^-1/2 W D^-1/2 for its smallest non-trivial eigenvalues, i.e. the largest of
// M = D^-1/2 W D^-1/2 once the trivial one (D^1/2 1) is projected out. Small graphs: a dense
// eigensolver; large ones: a thick-restarted Krylov (Lanczos) iteration with full
// reorthogonalisation, started from the ones vector as umap-learn starts ARPACK. A graph of
// several connected components is laid out as umap-learn's multi_component_layout does.
#include "analysis/umap_graph.h"
#include "error.h"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vitscope::umap_detail {

namespace {

constexpr int64_t kDenseBelow = 400;

// A component's graph with local indices: CSR of M = D^-1/2 W D^-1/2 and sqrt(degree).
struct Normalised {
    int64_t n = 0;
    std::vector<int64_t> start;
    std::vector<int32_t> col;
    std::vector<double> val;
    Eigen::VectorXd sqrtDegree;
    Eigen::VectorXd apply(const Eigen::VectorXd& v) const {
        Eigen::VectorXd out = Eigen::VectorXd::Zero(n);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t e = start[static_cast<std::size_t>(i)]; e < start[static_cast<std::size_t>(i) + 1]; ++e) out[i] += val[static_cast<std::size_t>(e)] * v[col[static_cast<std::size_t>(e)]];
        return out;
    }
};

Normalised normalise(const Graph& g, const std::vector<int32_t>& members, const std::vector<int32_t>& local) {
    Normalised m;
    m.n = static_cast<int64_t>(members.size());
    std::vector<std::vector<std::pair<int32_t, double>>> rows(members.size());
    Eigen::VectorXd degree = Eigen::VectorXd::Zero(m.n);
    for (std::size_t e = 0; e < g.weight.size(); ++e) {
        const int32_t i = local[static_cast<std::size_t>(g.head[e])], j = local[static_cast<std::size_t>(g.tail[e])];
        if (i < 0 || j < 0) continue;
        rows[static_cast<std::size_t>(i)].push_back({j, g.weight[e]});
        degree[j] += g.weight[e];
    }
    m.sqrtDegree = degree.cwiseSqrt();
    m.start.push_back(0);
    for (int64_t i = 0; i < m.n; ++i) {
        for (const auto& [j, w] : rows[static_cast<std::size_t>(i)]) {
            m.col.push_back(j);
            m.val.push_back(w / (m.sqrtDegree[i] * m.sqrtDegree[j]));
        }
        m.start.push_back(static_cast<int64_t>(m.col.size()));
    }
    return m;
}

void orthogonalise(Eigen::VectorXd& z, const Eigen::VectorXd& trivial, const Eigen::MatrixXd& basis, int64_t cols) {
    for (int pass = 0; pass < 2; ++pass) {
        z -= trivial * trivial.dot(z);
        if (cols > 0) z -= basis.leftCols(cols) * (basis.leftCols(cols).transpose() * z);
    }
}

// The `dim` largest eigenvectors of M orthogonal to `trivial`, by thick-restarted Krylov.
Eigen::MatrixXd krylovTop(const Normalised& m, const Eigen::VectorXd& trivial, int dim, Random& rng, const JobContext& job) {
    const int64_t size = std::min<int64_t>(m.n - 1, std::max<int64_t>(4 * dim + 8, 48)), keep = std::min<int64_t>(size - 1, std::max<int64_t>(2 * dim, size / 2));
    Eigen::MatrixXd v(m.n, size), w(m.n, size);
    Eigen::VectorXd z = Eigen::VectorXd::Ones(m.n);
    int64_t cols = 0;
    Eigen::MatrixXd ritz;
    for (int restart = 0; restart < 400; ++restart) {
        if (job.cancelled()) throw JobCancelled();
        for (; cols < size; ++cols) {
            orthogonalise(z, trivial, v, cols);
            if (z.norm() < 1e-10) {
                for (int64_t i = 0; i < m.n; ++i) z[i] = rng.uniform() - 0.5;  // invariant subspace found: any new direction
                orthogonalise(z, trivial, v, cols);
            }
            v.col(cols) = z / z.norm();
            w.col(cols) = m.apply(v.col(cols));
            z = w.col(cols);
        }
        Eigen::MatrixXd h = v.transpose() * w;
        h = (h + h.transpose()) / 2;
        const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(h);
        const Eigen::MatrixXd y = eig.eigenvectors().rightCols(keep).rowwise().reverse();  // largest first
        const Eigen::VectorXd theta = eig.eigenvalues().tail(keep).reverse();
        ritz = v * y.leftCols(dim);
        double worst = 0;
        for (int j = 0; j < dim; ++j) worst = std::max(worst, (w * y.col(j) - theta[j] * ritz.col(j)).norm() / std::max(std::abs(theta[j]), 1e-12));
        job.report({restart + 1, 400, 0, 0, "spectral initialisation"});
        if (worst < 1e-6) break;
        const Eigen::MatrixXd vk = v * y, wk = w * y;
        v.leftCols(keep) = vk;
        w.leftCols(keep) = wk;
        z = w.col(keep - 1);
        cols = keep;
    }
    return ritz;
}

Eigen::MatrixXd denseTop(const Normalised& m, const Eigen::VectorXd& trivial, int dim) {
    Eigen::MatrixXd dense = Eigen::MatrixXd::Zero(m.n, m.n);
    for (int64_t i = 0; i < m.n; ++i)
        for (int64_t e = m.start[static_cast<std::size_t>(i)]; e < m.start[static_cast<std::size_t>(i) + 1]; ++e) dense(i, m.col[static_cast<std::size_t>(e)]) += m.val[static_cast<std::size_t>(e)];
    // Push the trivial eigenvector to the bottom of the spectrum.
    dense -= 3.0 * trivial * trivial.transpose();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig((dense + dense.transpose()) / 2);
    return eig.eigenvectors().rightCols(dim).rowwise().reverse();
}

// Eigenvectors 1..dim of the normalised Laplacian of the component `members`.
Eigen::MatrixXd componentEmbedding(const Graph& g, const std::vector<int32_t>& members, std::vector<int32_t>& local, int dim, Random& rng,
                                   const JobContext& job) {
    for (std::size_t i = 0; i < members.size(); ++i) local[static_cast<std::size_t>(members[i])] = static_cast<int32_t>(i);
    const Normalised m = normalise(g, members, local);
    for (int32_t p : members) local[static_cast<std::size_t>(p)] = -1;
    const Eigen::VectorXd trivial = m.sqrtDegree / m.sqrtDegree.norm();
    return m.n < kDenseBelow ? denseTop(m, trivial, dim) : krylovTop(m, trivial, dim, rng, job);
}

std::vector<std::vector<int32_t>> connectedComponents(const Graph& g) {
    std::vector<int32_t> parent(static_cast<std::size_t>(g.n));
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](int32_t a) {
        while (parent[static_cast<std::size_t>(a)] != a) a = parent[static_cast<std::size_t>(a)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(a)])];
        return a;
    };
    for (std::size_t e = 0; e < g.weight.size(); ++e) {
        const int32_t a = find(g.head[e]), b = find(g.tail[e]);
        if (a != b) parent[static_cast<std::size_t>(std::max(a, b))] = std::min(a, b);
    }
    std::vector<int32_t> label(static_cast<std::size_t>(g.n), -1);
    std::vector<std::vector<int32_t>> out;
    for (int32_t i = 0; i < g.n; ++i) {
        const int32_t r = find(i);
        if (label[static_cast<std::size_t>(r)] < 0) {
            label[static_cast<std::size_t>(r)] = static_cast<int32_t>(out.size());
            out.emplace_back();
        }
        out[static_cast<std::size_t>(label[static_cast<std::size_t>(r)])].push_back(i);
    }
    return out;
}

// Where each component goes (umap-learn's meta embedding): +-unit axes for up to 2 dim
// components, else a spectral embedding of the components' centroids (affinity exp(-d^2)).
Eigen::MatrixXd metaLayout(const PointMatrix& x, const std::vector<std::vector<int32_t>>& comps, int dim) {
    const int64_t c = static_cast<int64_t>(comps.size());
    Eigen::MatrixXd meta = Eigen::MatrixXd::Zero(c, dim);
    if (c <= 2 * dim) {
        const int64_t k = (c + 1) / 2;
        for (int64_t i = 0; i < c; ++i) meta(i, i % k) = i < k ? 1.0 : -1.0;
        return meta;
    }
    Eigen::MatrixXd centroids(c, x.cols());
    for (int64_t i = 0; i < c; ++i) {
        centroids.row(i).setZero();
        for (int32_t p : comps[static_cast<std::size_t>(i)]) centroids.row(i) += x.row(p).cast<double>();
        centroids.row(i) /= static_cast<double>(comps[static_cast<std::size_t>(i)].size());
    }
    Eigen::MatrixXd affinity(c, c);
    for (int64_t i = 0; i < c; ++i)
        for (int64_t j = 0; j < c; ++j) affinity(i, j) = std::exp(-(centroids.row(i) - centroids.row(j)).squaredNorm());
    const Eigen::VectorXd dd = affinity.rowwise().sum().cwiseSqrt();
    const Eigen::MatrixXd norm = dd.cwiseInverse().asDiagonal() * affinity * dd.cwiseInverse().asDiagonal();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(norm);
    for (int d = 0; d < dim; ++d) {
        Eigen::VectorXd v = eig.eigenvectors().col(c - 2 - d).cwiseQuotient(dd);
        Eigen::Index at = 0;
        v.cwiseAbs().maxCoeff(&at);
        meta.col(d) = v[at] < 0 ? Eigen::VectorXd(-v) : v;
    }
    return meta / std::max(meta.maxCoeff(), 1e-300);
}

}  // namespace

Eigen::MatrixXd spectralLayout(const PointMatrix& x, const Graph& g, int dim, Random& rng, const JobContext& job) {
    const std::vector<std::vector<int32_t>> comps = connectedComponents(g);
    std::vector<int32_t> local(static_cast<std::size_t>(g.n), -1);
    if (comps.size() == 1) return componentEmbedding(g, comps[0], local, dim, rng, job);
    const Eigen::MatrixXd meta = metaLayout(x, comps, dim);
    Eigen::MatrixXd out(g.n, dim);
    for (std::size_t c = 0; c < comps.size(); ++c) {
        double range = std::numeric_limits<double>::infinity();
        for (std::size_t o = 0; o < comps.size(); ++o) {
            const double d = (meta.row(static_cast<int64_t>(o)) - meta.row(static_cast<int64_t>(c))).norm();
            if (d > 0) range = std::min(range, d / 2);
        }
        const std::vector<int32_t>& members = comps[c];
        const auto size = static_cast<int64_t>(members.size());
        Eigen::MatrixXd e(size, dim);
        if (size < 2 * dim || size <= dim + 1) {
            for (int64_t i = 0; i < size; ++i)
                for (int d = 0; d < dim; ++d) e(i, d) = (2 * rng.uniform() - 1) * range;
        } else {
            e = componentEmbedding(g, members, local, dim, rng, job);
            e *= range / std::max(e.cwiseAbs().maxCoeff(), 1e-300);
        }
        for (int64_t i = 0; i < size; ++i) out.row(members[static_cast<std::size_t>(i)]) = e.row(i) + meta.row(static_cast<int64_t>(c));
    }
    return out;
}

}  // namespace vitscope::umap_detail
