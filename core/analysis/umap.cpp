// UMAP as umap-learn (0.5) computes it with its defaults: the fuzzy simplicial set of the kNN
// graph (each point among its own neighbours, local connectivity 1, bisection to log2(k)), the
// fuzzy union, edges weaker than max / epochs dropped, spectral initialisation scaled to 10 plus
// noise of 1e-4, then the epoch-sampled SGD: an edge is sampled every max(w) / w epochs, each
// sample moving both ends by the attractive gradient and the head away from `rate` random
// points per sample, gradients clipped to 4, learning rate decaying linearly to 0.
#include "analysis/projection.h"
#include "analysis/umap_graph.h"
#include "error.h"

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <limits>

namespace vitscope {

namespace umap_detail {

double Random::normal() {
    // Box-Muller on two uniforms (the first kept away from 0).
    const double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

}  // namespace umap_detail

using umap_detail::Graph;
using umap_detail::Random;

namespace {

// umap-learn's smooth_knn_dist for one row (self first, distance 0): rho = the nearest non-zero
// distance, sigma by bisection so that sum_j exp(-(d_j - rho) / sigma) = log2(k) over j >= 1.
std::pair<double, double> smoothRow(const float* d, int k, double meanAll) {
    double rho = 0, mean = 0;
    for (int j = 0; j < k; ++j) {
        mean += d[j];
        if (rho == 0 && d[j] > 0) rho = d[j];
    }
    mean /= k;
    const double target = std::log2(static_cast<double>(k));
    double lo = 0, hi = std::numeric_limits<double>::infinity(), mid = 1;
    for (int it = 0; it < 64; ++it) {
        double psum = 0;
        for (int j = 1; j < k; ++j) {
            const double e = d[j] - rho;
            psum += e > 0 ? std::exp(-e / mid) : 1.0;
        }
        if (std::abs(psum - target) < 1e-5) break;
        if (psum > target) {
            hi = mid;
            mid = (lo + hi) / 2;
        } else {
            lo = mid;
            mid = std::isinf(hi) ? mid * 2 : (lo + hi) / 2;
        }
    }
    const double floor = 1e-3 * (rho > 0 ? mean : meanAll);
    return {rho, std::max(mid, floor)};
}

using Rows = std::vector<std::vector<std::pair<int32_t, double>>>;

// Memberships of the directed kNN edges: row i's targets (sorted) with exp(-(d - rho_i) / sigma_i).
Rows memberships(const KnnGraph& knn) {
    const int64_t n = knn.n;
    const int k = knn.k;
    double meanAll = 0;
    for (float d : knn.distance) meanAll += d;
    meanAll /= static_cast<double>(knn.distance.size());
    Rows out(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const float* d = &knn.distance[static_cast<std::size_t>(i * k)];
        const auto [rho, sigma] = smoothRow(d, k, meanAll);
        for (int j = 0; j < k; ++j) {
            const int32_t t = knn.index[static_cast<std::size_t>(i * k + j)];
            if (t == i) continue;
            const double v = (d[j] - rho <= 0 || sigma == 0) ? 1.0 : std::exp(-(d[j] - rho) / sigma);
            out[static_cast<std::size_t>(i)].push_back({t, v});
        }
        std::sort(out[static_cast<std::size_t>(i)].begin(), out[static_cast<std::size_t>(i)].end());
    }
    return out;
}

// The fuzzy union a + b - a b of both directions, as edges sorted by head then tail.
Graph fuzzyGraph(const KnnGraph& knn) {
    const Rows out = memberships(knn);
    auto membership = [&](int32_t from, int32_t to) {
        const auto& row = out[static_cast<std::size_t>(from)];
        const auto it = std::lower_bound(row.begin(), row.end(), std::make_pair(to, -1.0));
        return it != row.end() && it->first == to ? it->second : 0.0;
    };
    Rows sym(out.size());
    for (std::size_t i = 0; i < out.size(); ++i)
        for (const auto& [t, a] : out[i]) {
            const double b = membership(t, static_cast<int32_t>(i));
            sym[i].push_back({t, a + b - a * b});
            if (b == 0) sym[static_cast<std::size_t>(t)].push_back({static_cast<int32_t>(i), a});  // the reverse edge exists only here
        }
    Graph g;
    g.n = knn.n;
    for (std::size_t i = 0; i < sym.size(); ++i) {
        std::sort(sym[i].begin(), sym[i].end());
        for (const auto& [t, w] : sym[i])
            if (w > 0) g.head.push_back(static_cast<int32_t>(i)), g.tail.push_back(t), g.weight.push_back(w);
    }
    return g;
}

// Drops edges below max / epochs (umap-learn: they would be sampled less than once).
void pruneWeak(Graph& g, int epochs) {
    const double cut = *std::max_element(g.weight.begin(), g.weight.end()) / epochs;
    Graph kept;
    kept.n = g.n;
    for (std::size_t e = 0; e < g.weight.size(); ++e)
        if (g.weight[e] >= cut) kept.head.push_back(g.head[e]), kept.tail.push_back(g.tail[e]), kept.weight.push_back(g.weight[e]);
    g = std::move(kept);
}

struct Curve {
    double a, b, gamma;
};

double clip4(double v) { return std::clamp(v, -4.0, 4.0); }

// d2^b for d2 > 0 as exp(b log d2): within a few ulps of std::pow (the layout is float) at less
// than half its cost, which dominates the epochs.
double powPositive(double d2, double b) { return std::exp(b * std::log(d2)); }

void attract(float* cur, float* other, const Curve& c, double alpha) {
    const double dx = cur[0] - other[0], dy = cur[1] - other[1], d2 = dx * dx + dy * dy;
    if (d2 <= 0) return;
    const double p = powPositive(d2, c.b);  // d2^(b - 1) = d2^b / d2: one power, not two
    const double coeff = -2.0 * c.a * c.b * (p / d2) / (c.a * p + 1.0);
    const double gx = clip4(coeff * dx) * alpha, gy = clip4(coeff * dy) * alpha;
    cur[0] += static_cast<float>(gx), cur[1] += static_cast<float>(gy);
    other[0] -= static_cast<float>(gx), other[1] -= static_cast<float>(gy);
}

void repel(float* cur, const float* other, bool self, const Curve& c, double alpha) {
    const double dx = cur[0] - other[0], dy = cur[1] - other[1], d2 = dx * dx + dy * dy;
    if (d2 <= 0 && self) return;
    if (d2 > 0) {
        const double coeff = 2.0 * c.gamma * c.b / ((0.001 + d2) * (c.a * powPositive(d2, c.b) + 1.0));
        cur[0] += static_cast<float>(clip4(coeff * dx) * alpha), cur[1] += static_cast<float>(clip4(coeff * dy) * alpha);
    } else {
        cur[0] += static_cast<float>(4.0 * alpha), cur[1] += static_cast<float>(4.0 * alpha);  // coincident points: umap-learn's push
    }
}

// An edge's sampling schedule (umap-learn's epochs_per_sample and next-sample epochs), packed
// with its ends so that an epoch's pass over the edges reads one array.
struct Scheduled {
    double perSample, nextSample, perNegative, nextNegative;
    int32_t head, tail;
};

std::vector<Scheduled> schedule(const Graph& g, int epochs, int negativeRate) {
    const double wmax = *std::max_element(g.weight.begin(), g.weight.end());
    std::vector<Scheduled> out(g.weight.size());
    for (std::size_t e = 0; e < out.size(); ++e) {
        const double samples = epochs * g.weight[e] / wmax;
        Scheduled& s = out[e];
        s.perSample = samples > 0 ? epochs / samples : -1;
        s.perNegative = s.perSample / negativeRate;
        s.nextSample = s.perSample, s.nextNegative = s.perNegative;
        s.head = g.head[e], s.tail = g.tail[e];
    }
    return out;
}

// umap-learn's optimize_layout_euclidean, sequential (as it runs with a fixed random_state).
void optimise(const Graph& g, Layout& y, int epochs, const UmapParams& p, const Curve& c, Random& rng, const JobContext& job) {
    std::vector<Scheduled> edges = schedule(g, epochs, p.negativeSampleRate);
    const auto n = static_cast<uint64_t>(y.rows());
    double alpha = p.learningRate;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        if (job.cancelled()) throw JobCancelled();
        for (Scheduled& s : edges) {
            if (s.nextSample > epoch) continue;
            float* cur = y.row(s.head).data();
            attract(cur, y.row(s.tail).data(), c, alpha);
            s.nextSample += s.perSample;
            const int negatives = p.negativeSampleRate > 0 ? static_cast<int>((epoch - s.nextNegative) / s.perNegative) : 0;
            for (int k = 0; k < negatives; ++k) {
                const auto other = static_cast<int64_t>(rng.next() % n);
                repel(cur, y.row(other).data(), other == s.head, c, alpha);
            }
            s.nextNegative += negatives * s.perNegative;
        }
        alpha = p.learningRate * (1.0 - static_cast<double>(epoch + 1) / epochs);
        if (epoch % 5 == 0 || epoch + 1 == epochs) job.report({epoch + 1, epochs, 0, 0, "UMAP epochs"});
    }
}

}  // namespace

namespace {

// Residuals of 1 / (1 + a x^2b) against ys, and their Jacobian in (a, b) when asked.
double curveResiduals(const std::vector<double>& xs, const std::vector<double>& ys, double a, double b, Eigen::VectorXd& r,
                      Eigen::MatrixXd* jac) {
    const auto n = static_cast<int64_t>(xs.size());
    r.resize(n);
    if (jac) jac->resize(n, 2);
    for (int64_t i = 0; i < n; ++i) {
        const double x = xs[static_cast<std::size_t>(i)], p = x > 0 ? std::pow(x, 2 * b) : 0.0, den = 1 + a * p;
        r[i] = 1 / den - ys[static_cast<std::size_t>(i)];
        if (jac) {
            (*jac)(i, 0) = -p / (den * den);
            (*jac)(i, 1) = x > 0 ? -a * p * 2 * std::log(x) / (den * den) : 0.0;
        }
    }
    return r.squaredNorm();
}

}  // namespace

std::pair<double, double> umapCurve(double spread, double minDist) {
    // Levenberg-Marquardt least squares of 1 / (1 + a x^2b) against the target curve on 300
    // points of [0, 3 spread], from a = b = 1 (scipy's curve_fit, as find_ab_params calls it).
    std::vector<double> xs(300), ys(300);
    for (std::size_t i = 0; i < 300; ++i) {
        xs[i] = 3.0 * spread * static_cast<double>(i) / 299.0;
        ys[i] = xs[i] < minDist ? 1.0 : std::exp(-(xs[i] - minDist) / spread);
    }
    double a = 1, b = 1, lambda = 1e-3;
    Eigen::VectorXd r, rTry;
    Eigen::MatrixXd j;
    double cost = curveResiduals(xs, ys, a, b, r, &j);
    for (int it = 0; it < 500 && lambda < 1e12; ++it) {
        Eigen::Matrix2d damped = j.transpose() * j;
        damped.diagonal() *= 1 + lambda;
        const Eigen::Vector2d step = damped.ldlt().solve(-j.transpose() * r);
        const double tryCost = curveResiduals(xs, ys, a + step[0], b + step[1], rTry, nullptr);
        if (tryCost >= cost) {
            lambda *= 10;
            continue;
        }
        a += step[0], b += step[1];
        const bool done = cost - tryCost < 1e-15 * std::max(1.0, cost);
        cost = curveResiduals(xs, ys, a, b, r, &j);
        lambda = std::max(lambda / 10, 1e-12);
        if (done) break;
    }
    return {a, b};
}

Layout umapLayout(const PointMatrix& x, const UmapParams& params, const JobContext& job) {
    const int64_t n = x.rows();
    params.validate(n);
    KnnParams kp;
    kp.includeSelf = true;
    kp.exactBelow = params.exactKnnBelow;
    kp.seed = params.seed;
    const int k = static_cast<int>(std::min<int64_t>(params.neighbors, n - 1));
    const KnnGraph knn = nearestNeighbors(x, k, kp, job.staged("UMAP neighbours"));
    job.staged("UMAP fuzzy graph").report({0, 1, 0, 0, ""});
    Graph g = fuzzyGraph(knn);
    if (g.weight.empty()) throw InputError("points", "all " + std::to_string(n) + " points coincide: no layout");
    const int epochs = params.epochs > 0 ? params.epochs : (n <= 10000 ? 500 : 200);
    pruneWeak(g, epochs);
    Random rng(params.seed);
    job.staged("UMAP spectral initialisation").report({0, 1, 0, 0, ""});
    const Eigen::MatrixXd init = umap_detail::spectralLayout(x, g, 2, rng, job.staged("UMAP spectral initialisation"));
    const double expansion = 10.0 / std::max(init.cwiseAbs().maxCoeff(), 1e-300);
    Layout y(n, 2);
    for (int64_t i = 0; i < n; ++i)
        for (int d = 0; d < 2; ++d) y(i, d) = static_cast<float>(init(i, d) * expansion) + static_cast<float>(1e-4 * rng.normal());
    const auto [a, b] = umapCurve(params.spread, params.minDist);
    job.staged("UMAP epochs").report({0, epochs, 0, 0, ""});
    optimise(g, y, epochs, params, {a, b, params.repulsion}, rng, job.staged("UMAP epochs"));
    return y;
}

}  // namespace vitscope
