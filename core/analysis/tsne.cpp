// Barnes-Hut t-SNE with scikit-learn's (1.2) defaults and schedule: perplexity-calibrated
// affinities over 3 * perplexity + 1 neighbours, symmetrised and normalised; PCA initialisation
// scaled to a standard deviation of 1e-4; 250 iterations with P exaggerated 12 times at momentum
// 0.5, then momentum 0.8; per-coordinate gains (+0.2 / x0.8, at least 0.01); the gradient's
// repulsion from a quadtree summarised at angle theta (self interactions left out).
#include "analysis/projection.h"
#include "error.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <thread>

namespace vitscope {

namespace {

struct SparseP {
    std::vector<int64_t> rowStart;  // [N + 1]
    std::vector<int32_t> col;
    std::vector<double> val;
};

// Conditional p_{j|i} over a row's squared distances with the entropy of log(perplexity)
// (sklearn's _binary_search_perplexity: 100 bisection steps on beta, tolerance 1e-5).
void calibrateRow(const float* sq, int k, double perplexity, double* p) {
    const double desired = std::log(perplexity);
    double beta = 1, lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    for (int step = 0; step < 100; ++step) {
        double sum = 0;
        for (int j = 0; j < k; ++j) sum += (p[j] = std::exp(-sq[j] * beta));
        if (sum == 0) sum = 1e-8;
        double weighted = 0;
        for (int j = 0; j < k; ++j) {
            p[j] /= sum;
            weighted += sq[j] * p[j];
        }
        const double diff = std::log(sum) + beta * weighted - desired;
        if (std::abs(diff) <= 1e-5) break;
        if (diff > 0) {
            lo = beta;
            beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
        } else {
            hi = beta;
            beta = std::isinf(lo) ? beta / 2 : (beta + lo) / 2;
        }
    }
}

// P = (C + C^T) / sum, C the conditional probabilities on the kNN graph.
SparseP jointProbabilities(const KnnGraph& g, double perplexity) {
    const int64_t n = g.n;
    const int k = g.k;
    std::vector<std::vector<std::pair<int32_t, double>>> rows(static_cast<std::size_t>(n));
    std::vector<float> sq(static_cast<std::size_t>(k));
    std::vector<double> p(static_cast<std::size_t>(k));
    for (int64_t i = 0; i < n; ++i) {
        for (int j = 0; j < k; ++j) sq[static_cast<std::size_t>(j)] = g.distance[static_cast<std::size_t>(i * k + j)] * g.distance[static_cast<std::size_t>(i * k + j)];
        calibrateRow(sq.data(), k, perplexity, p.data());
        for (int j = 0; j < k; ++j) {
            const int32_t c = g.index[static_cast<std::size_t>(i * k + j)];
            rows[static_cast<std::size_t>(i)].push_back({c, p[static_cast<std::size_t>(j)]});
            rows[static_cast<std::size_t>(c)].push_back({static_cast<int32_t>(i), p[static_cast<std::size_t>(j)]});
        }
    }
    SparseP out;
    out.rowStart.push_back(0);
    double total = 0;
    for (auto& r : rows) {
        std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (std::size_t e = 0; e < r.size(); ++e) {
            if (!out.col.empty() && e > 0 && r[e].first == r[e - 1].first) {
                out.val.back() += r[e].second;
            } else {
                out.col.push_back(r[e].first);
                out.val.push_back(r[e].second);
            }
            total += r[e].second;
        }
        out.rowStart.push_back(static_cast<int64_t>(out.col.size()));
    }
    const double norm = std::max(total, std::numeric_limits<double>::epsilon());
    for (double& v : out.val) v /= norm;
    return out;
}

// A 2-D quadtree over the layout: each cell keeps its points' count and barycentre.
class QuadTree {
public:
    explicit QuadTree(const std::vector<double>& y);
    // Repulsion on point (x, y): adds sum over summarised cells of count * q^2 * (point - centre)
    // to force and count * q to sumQ, q = 1 / (1 + |point - centre|^2).
    void repulsion(double x, double y, double theta2, double force[2], double& sumQ) const;

private:
    struct Cell {
        double lo[2], hi[2];
        double centre[2] = {0, 0};
        double maxWidth2 = 0;
        int64_t count = 0;
        std::array<int32_t, 4> child{{-1, -1, -1, -1}};
        bool leaf = true;
        double point[2] = {0, 0};
    };
    void insert(double x, double y);
    int32_t childFor(int32_t cell, double x, double y);
    std::vector<Cell> m_cells;
};

constexpr double kDuplicate = 1e-6;

QuadTree::QuadTree(const std::vector<double>& y) {
    Cell root;
    for (int d = 0; d < 2; ++d) {
        root.lo[d] = std::numeric_limits<double>::infinity();
        root.hi[d] = -std::numeric_limits<double>::infinity();
    }
    for (std::size_t i = 0; i < y.size(); ++i) {
        root.lo[i % 2] = std::min(root.lo[i % 2], y[i]);
        root.hi[i % 2] = std::max(root.hi[i % 2], y[i]);
    }
    for (int d = 0; d < 2; ++d) {
        const double m = root.hi[d];
        root.hi[d] = std::max(m * (1 + 1e-3 * (m > 0 ? 1 : m < 0 ? -1 : 0)), m + 1e-3);
        const double w = root.hi[d] - root.lo[d];
        root.maxWidth2 = std::max(root.maxWidth2, w * w);
    }
    m_cells.push_back(root);
    for (std::size_t i = 0; i < y.size(); i += 2) insert(y[i], y[i + 1]);
}

int32_t QuadTree::childFor(int32_t cell, double x, double y) {
    const double mid[2] = {(m_cells[cell].lo[0] + m_cells[cell].hi[0]) / 2, (m_cells[cell].lo[1] + m_cells[cell].hi[1]) / 2};
    const int q = (x >= mid[0] ? 1 : 0) + (y >= mid[1] ? 2 : 0);
    if (m_cells[cell].child[q] < 0) {
        Cell c;
        c.lo[0] = q & 1 ? mid[0] : m_cells[cell].lo[0];
        c.hi[0] = q & 1 ? m_cells[cell].hi[0] : mid[0];
        c.lo[1] = q & 2 ? mid[1] : m_cells[cell].lo[1];
        c.hi[1] = q & 2 ? m_cells[cell].hi[1] : mid[1];
        c.maxWidth2 = std::max((c.hi[0] - c.lo[0]) * (c.hi[0] - c.lo[0]), (c.hi[1] - c.lo[1]) * (c.hi[1] - c.lo[1]));
        m_cells.push_back(c);
        m_cells[cell].child[q] = static_cast<int32_t>(m_cells.size() - 1);
    }
    return m_cells[cell].child[q];
}

void QuadTree::insert(double x, double y) {
    int32_t cell = 0;
    for (int depth = 0;; ++depth) {
        Cell& c = m_cells[cell];
        const bool empty = c.count == 0;
        c.count += 1;
        c.centre[0] += (x - c.centre[0]) / static_cast<double>(c.count);
        c.centre[1] += (y - c.centre[1]) / static_cast<double>(c.count);
        if (c.leaf) {
            if (empty) {
                c.point[0] = x, c.point[1] = y;
                return;
            }
            // A duplicate (or a cell too small to split) keeps the points together.
            if ((std::abs(c.point[0] - x) <= kDuplicate && std::abs(c.point[1] - y) <= kDuplicate) || depth > 60) return;
            const double old[2] = {c.point[0], c.point[1]};
            const int64_t oldCount = c.count - 1;
            c.leaf = false;
            const int32_t moved = childFor(cell, old[0], old[1]);
            Cell& m = m_cells[moved];
            m.count = oldCount, m.centre[0] = m.point[0] = old[0], m.centre[1] = m.point[1] = old[1];
        }
        cell = childFor(cell, x, y);
    }
}

void QuadTree::repulsion(double x, double y, double theta2, double force[2], double& sumQ) const {
    int32_t stack[256];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
        const Cell& c = m_cells[stack[--top]];
        if (c.count == 0) continue;
        const double dx = x - c.centre[0], dy = y - c.centre[1], d2 = dx * dx + dy * dy;
        if (c.leaf && std::abs(dx) <= kDuplicate && std::abs(dy) <= kDuplicate) continue;  // the point itself
        if (c.leaf || c.maxWidth2 / d2 < theta2) {
            const double q = 1 / (1 + d2), n = static_cast<double>(c.count);
            sumQ += n * q;
            force[0] += n * q * q * dx;
            force[1] += n * q * q * dy;
            continue;
        }
        for (int32_t ch : c.child)
            if (ch >= 0 && top < 256) stack[top++] = ch;
    }
}

// KL(P || Q) over P's edges with Q's normaliser z (sklearn's Barnes-Hut error: each p_ij and q_ij
// floored at float32's smallest normal number; P exaggerated as the stage has it).
double divergence(const SparseP& p, double exaggeration, const std::vector<double>& y, double z) {
    const double tiny = std::numeric_limits<float>::min();
    double c = 0;
    for (std::size_t i = 0; i + 1 < p.rowStart.size(); ++i)
        for (int64_t e = p.rowStart[i]; e < p.rowStart[i + 1]; ++e) {
            const std::size_t j = static_cast<std::size_t>(p.col[static_cast<std::size_t>(e)]);
            const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
            const double pij = exaggeration * p.val[static_cast<std::size_t>(e)], qij = 1 / (1 + dx * dx + dy * dy) / z;
            c += pij * std::log(std::max(pij, tiny) / std::max(qij, tiny));
        }
    return c;
}

// The KL gradient [N, 2] (sklearn's: 4 (attraction - repulsion / Z)), points split over threads;
// with `error`, the divergence too.
void gradient(const SparseP& p, double exaggeration, const std::vector<double>& y, double theta, std::vector<double>& grad,
              double* error = nullptr) {
    const int64_t n = static_cast<int64_t>(y.size() / 2);
    const QuadTree tree(y);
    std::vector<double> sumQ(static_cast<std::size_t>(n));
    auto work = [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            double neg[2] = {0, 0}, pos[2] = {0, 0};
            double q = 0;
            tree.repulsion(y[2 * i], y[2 * i + 1], theta * theta, neg, q);
            sumQ[static_cast<std::size_t>(i)] = q;
            for (int64_t e = p.rowStart[static_cast<std::size_t>(i)]; e < p.rowStart[static_cast<std::size_t>(i) + 1]; ++e) {
                const int64_t j = p.col[static_cast<std::size_t>(e)];
                const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
                const double w = exaggeration * p.val[static_cast<std::size_t>(e)] / (1 + dx * dx + dy * dy);
                pos[0] += w * dx, pos[1] += w * dy;
            }
            grad[2 * i] = pos[0], grad[2 * i + 1] = pos[1];
            grad[2 * i + 2 * n] = neg[0], grad[2 * i + 1 + 2 * n] = neg[1];  // repulsion kept beside, scaled below
        }
    };
    grad.assign(static_cast<std::size_t>(4 * n), 0);
    const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), n / 512 + 1));
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < threads; ++t) pool.emplace_back(work, n * t / threads, n * (t + 1) / threads);
    for (std::thread& th : pool) th.join();
    double z = 0;
    for (double s : sumQ) z += s;  // in order: the same sum whatever the thread count
    if (error) *error = divergence(p, exaggeration, y, z);
    for (int64_t i = 0; i < 2 * n; ++i) grad[static_cast<std::size_t>(i)] = 4 * (grad[static_cast<std::size_t>(i)] - grad[static_cast<std::size_t>(i + 2 * n)] / z);
    grad.resize(static_cast<std::size_t>(2 * n));
}

struct Stage {
    int from, to;
    double momentum, exaggeration;
    int withoutProgress;
};

// sklearn's _gradient_descent for one stage (gains and update start afresh each stage): every 50th
// iteration a check (the divergence; the stage stops when its best check is more than
// `withoutProgress` iterations back, or at a gradient norm of at most minGradNorm). Returns the
// last iteration run.
int descend(const SparseP& p, const Stage& s, double rate, const TsneParams& params, std::vector<double>& y, TsneReport& report,
            const JobContext& job) {
    std::vector<double> update(y.size(), 0), gains(y.size(), 1), grad;
    double best = std::numeric_limits<double>::max();
    int bestIter = s.from;
    for (int it = s.from; it < s.to; ++it) {
        if (job.cancelled()) throw JobCancelled();
        const bool check = (it + 1) % 50 == 0;
        double error = 0;
        gradient(p, s.exaggeration, y, params.theta, grad, check || it + 1 == s.to ? &error : nullptr);
        double norm2 = 0;
        for (std::size_t c = 0; c < y.size(); ++c) {
            const bool same = update[c] * grad[c] < 0;  // moving against the gradient: speed up
            gains[c] = std::max(0.01, same ? gains[c] + 0.2 : gains[c] * 0.8);
            norm2 += grad[c] * grad[c];
            update[c] = s.momentum * update[c] - rate * gains[c] * grad[c];
            y[c] += update[c];
        }
        report.iterations = it + 1;
        if (check || it + 1 == s.to) report.kl = error;
        if (it % 10 == 0 || it + 1 == s.to) job.report({it + 1, params.iterations, 0, 0, "t-SNE iterations"});
        if (!check) continue;
        report.checks.emplace_back(it + 1, error);
        if (error < best) {
            best = error;
            bestIter = it;
        } else if (it - bestIter > s.withoutProgress) {
            return it;
        }
        if (std::sqrt(norm2) <= params.minGradNorm) return it;
    }
    return s.to - 1;
}

}  // namespace

Layout tsneLayout(const PointMatrix& x, const TsneParams& params, const JobContext& job, TsneReport* report) {
    const int64_t n = x.rows();
    params.validate(n);
    KnnParams kp;
    kp.exactBelow = params.exactKnnBelow;
    kp.seed = params.seed;
    const int k = static_cast<int>(std::min<int64_t>(n - 1, static_cast<int64_t>(3 * params.perplexity + 1)));
    const KnnGraph knn = nearestNeighbors(x, k, kp, job.staged("t-SNE neighbours"));
    job.staged("t-SNE affinities and PCA init").report({0, 1, 0, 0, ""});
    const SparseP p = jointProbabilities(knn, params.perplexity);
    // PCA initialisation, scaled so that the first axis has standard deviation 1e-4.
    const Eigen::MatrixXd init = principalComponents(x, 2).scores;
    const double mean0 = init.col(0).mean();
    const double std0 = std::sqrt((init.col(0).array() - mean0).square().mean());
    std::vector<double> y(static_cast<std::size_t>(2 * n));
    for (int64_t i = 0; i < n; ++i)
        for (int d = 0; d < 2; ++d) y[static_cast<std::size_t>(2 * i + d)] = static_cast<float>(init(i, d)) / std::max(std::abs(std0), 1e-300) * 1e-4;
    const double rate = params.learningRate > 0 ? params.learningRate : std::max(n / params.earlyExaggeration / 4, 50.0);
    const JobContext it = job.staged("t-SNE iterations");
    it.report({0, params.iterations, 0, 0, ""});
    TsneReport ran;
    const int last = descend(p, {0, params.exaggerationIterations, 0.5, params.earlyExaggeration, params.exaggerationIterations}, rate,
                             params, y, ran, it);
    descend(p, {last + 1, params.iterations, 0.8, 1.0, params.withoutProgress}, rate, params, y, ran, it);
    if (report) *report = ran;
    Layout out(n, 2);
    for (int64_t i = 0; i < n; ++i) out(i, 0) = static_cast<float>(y[static_cast<std::size_t>(2 * i)]), out(i, 1) = static_cast<float>(y[static_cast<std::size_t>(2 * i + 1)]);
    return out;
}

}  // namespace vitscope
