#include "analysis/head_matching.h"

#include "error.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace vitscope {

void HeadMatchParams::validate() const {
    if (maxImages < 0) throw InputError("max images", "must not be negative (0: all)");
}

std::string HeadMatchParams::toString() const {
    std::ostringstream s;
    s << "linear CKA over " << (maxImages > 0 ? "at most " + std::to_string(maxImages) : std::string("all")) << " images, Hungarian assignment";
    return s.str();
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> sharedRows(const DatasetCache& a, const DatasetCache& b) {
    const std::string both = a.dir() + " and " + b.dir();
    std::map<std::string, int64_t> inB;
    for (std::size_t i = 0; i < b.paths().size(); ++i) inB[b.paths()[i]] = static_cast<int64_t>(i);
    std::vector<int64_t> ra, rb;
    for (std::size_t i = 0; i < a.paths().size(); ++i) {
        const auto it = inB.find(a.paths()[i]);
        if (it == inB.end())
            throw InputError(both, "hold different images (" + a.paths()[i] + " is only in the first; " + std::to_string(a.size()) + " vs " +
                                       std::to_string(b.size()) + " rows): build both caches from the same image list");
        ra.push_back(static_cast<int64_t>(i));
        rb.push_back(it->second);
    }
    if (ra.size() != b.paths().size())
        throw InputError(both, "hold different images (" + std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
                                   " rows): build both caches from the same image list");
    if (ra.empty()) throw InputError(both, "hold no images");
    return {ra, rb};
}

namespace {

// Each head's Gram matrix of rows [start, start + n) against all rows, flattened: [H, n R].
at::Tensor gramBlock(const at::Tensor& x, int64_t start, int64_t n) {
    return at::bmm(x.narrow(1, start, n), x.transpose(1, 2)).reshape({x.size(0), -1});
}

}  // namespace

at::Tensor linearCka(const at::Tensor& a, const at::Tensor& b, const JobContext& job) {
    if (a.dim() != 3 || b.dim() != 3 || a.size(1) != b.size(1))
        throw InputError("head terms", "expected [heads, rows, dim] for both models over the same rows");
    at::NoGradGuard noGrad;
    // <K_a, K_b> over centred terms = CKA's numerator (HSIC without its constant), in row blocks
    // so that memory stays at heads x block x rows.
    const at::Tensor xa = (a - a.mean(1, true)).to(at::kFloat).contiguous(), xb = (b - b.mean(1, true)).to(at::kFloat).contiguous();
    const int64_t rows = a.size(1);
    const int64_t block = std::clamp<int64_t>(32000000 / (rows * std::max(a.size(0), b.size(0))), 1, rows);  // ~128 MB of Gram rows per model
    at::Tensor cross = at::zeros({a.size(0), b.size(0)}, at::kDouble), na = at::zeros({a.size(0)}, at::kDouble), nb = at::zeros({b.size(0)}, at::kDouble);
    for (int64_t start = 0; start < rows; start += block) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t n = std::min(block, rows - start);
        const at::Tensor ga = gramBlock(xa, start, n), gb = gramBlock(xb, start, n);
        cross += at::matmul(ga, gb.t()).to(at::kDouble);
        na += ga.to(at::kDouble).square().sum(1);
        nb += gb.to(at::kDouble).square().sum(1);
        job.report({start + n, rows, 0, 0, "CKA of every head pair"});
    }
    const at::Tensor denom = at::outer(na.sqrt(), nb.sqrt());
    return at::where(denom > 0, cross / denom.clamp_min(1e-300), at::zeros_like(cross));
}

namespace {

// Minimum-cost assignment of n rows to m >= n columns by shortest augmenting paths with
// potentials u (rows) and v (columns); owner[j] is the row (1-based) on column j, 0 for none.
class Hungarian {
public:
    Hungarian(int n, int m, std::function<double(int, int)> cost)
        : m_n(n), m_m(m), m_cost(std::move(cost)), m_u(static_cast<std::size_t>(n + 1)), m_v(static_cast<std::size_t>(m + 1)),
          m_owner(static_cast<std::size_t>(m + 1)), m_way(static_cast<std::size_t>(m + 1)) {
        for (int i = 1; i <= n; ++i) addRow(i);
    }
    int ownerOf(int column) const { return m_owner[static_cast<std::size_t>(column + 1)] - 1; }  // -1: free

private:
    // A Dijkstra-like scan from row i over the columns, then the path's edges flipped.
    void addRow(int i) {
        m_owner[0] = i;
        int j0 = 0;
        std::vector<double> minv(static_cast<std::size_t>(m_m + 1), std::numeric_limits<double>::infinity());
        std::vector<char> used(static_cast<std::size_t>(m_m + 1), 0);
        do {
            used[static_cast<std::size_t>(j0)] = 1;
            const int i0 = m_owner[static_cast<std::size_t>(j0)];
            double delta = std::numeric_limits<double>::infinity();
            int j1 = 0;
            for (int j = 1; j <= m_m; ++j) {
                if (used[static_cast<std::size_t>(j)]) continue;
                const double cur = m_cost(i0 - 1, j - 1) - m_u[static_cast<std::size_t>(i0)] - m_v[static_cast<std::size_t>(j)];
                if (cur < minv[static_cast<std::size_t>(j)]) minv[static_cast<std::size_t>(j)] = cur, m_way[static_cast<std::size_t>(j)] = j0;
                if (minv[static_cast<std::size_t>(j)] < delta) delta = minv[static_cast<std::size_t>(j)], j1 = j;
            }
            for (int j = 0; j <= m_m; ++j) {
                if (used[static_cast<std::size_t>(j)]) {
                    m_u[static_cast<std::size_t>(m_owner[static_cast<std::size_t>(j)])] += delta;
                    m_v[static_cast<std::size_t>(j)] -= delta;
                } else {
                    minv[static_cast<std::size_t>(j)] -= delta;
                }
            }
            j0 = j1;
        } while (m_owner[static_cast<std::size_t>(j0)] != 0);
        for (int j1 = m_way[static_cast<std::size_t>(j0)]; j0 != 0; j0 = j1, j1 = m_way[static_cast<std::size_t>(j0)])
            m_owner[static_cast<std::size_t>(j0)] = m_owner[static_cast<std::size_t>(j1)];
    }
    int m_n, m_m;
    std::function<double(int, int)> m_cost;
    std::vector<double> m_u, m_v;
    std::vector<int> m_owner, m_way;
};

}  // namespace

std::vector<int> maximumAssignment(const std::vector<double>& score, int rows, int cols) {
    if (rows < 0 || cols < 0 || score.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols))
        throw InputError("assignment", "score matrix of " + std::to_string(score.size()) + " values is not " + std::to_string(rows) + " x " + std::to_string(cols));
    std::vector<int> out(static_cast<std::size_t>(rows), -1);
    if (rows == 0 || cols == 0) return out;
    // Minimise -score with the smaller side as rows (NaN counts as 0).
    const bool flip = rows > cols;
    const Hungarian h(flip ? cols : rows, flip ? rows : cols, [&](int i, int j) {
        const double s = flip ? score[static_cast<std::size_t>(j) * cols + i] : score[static_cast<std::size_t>(i) * cols + j];
        return std::isnan(s) ? 0.0 : -s;
    });
    for (int j = 0; j < (flip ? rows : cols); ++j) {
        const int i = h.ownerOf(j);
        if (i < 0) continue;
        if (flip) out[static_cast<std::size_t>(j)] = i;
        else out[static_cast<std::size_t>(i)] = j;
    }
    return out;
}

std::vector<double> textOverlap(const std::vector<std::vector<std::string>>& a, const std::vector<std::vector<std::string>>& b) {
    std::vector<double> out;
    out.reserve(a.size() * b.size());
    for (const auto& ta : a) {
        const std::set<std::string> sa(ta.begin(), ta.end());
        for (const auto& tb : b) {
            const std::set<std::string> sb(tb.begin(), tb.end());
            if (sa.empty() || sb.empty()) {
                out.push_back(std::numeric_limits<double>::quiet_NaN());
                continue;
            }
            std::size_t common = 0;
            for (const std::string& t : sa) common += sb.count(t);
            out.push_back(static_cast<double>(common) / static_cast<double>(sa.size() + sb.size() - common));
        }
    }
    return out;
}

namespace {

// [H, R, E] float terms of `heads` at `rows` (CLIP space).
at::Tensor gatherHeads(const CacheView& view, const std::vector<Component>& heads, const std::vector<int64_t>& rows, const JobContext& job) {
    const at::Tensor index = at::tensor(rows, at::kLong);
    std::vector<at::Tensor> out;
    for (std::size_t h = 0; h < heads.size(); ++h) {
        if (job.cancelled()) throw JobCancelled();
        out.push_back(view.terms(heads[h]).index_select(0, index));
        job.report({static_cast<int64_t>(h) + 1, static_cast<int64_t>(heads.size()), 0, 0, "reading head terms"});
    }
    return at::stack(out);
}

// Evenly spaced positions of `keep` out of `total` (all when keep is 0 or at least total).
std::vector<std::size_t> subsample(std::size_t total, int64_t keep) {
    std::vector<std::size_t> at;
    const std::size_t k = keep <= 0 || static_cast<std::size_t>(keep) >= total ? total : static_cast<std::size_t>(keep);
    for (std::size_t i = 0; i < k; ++i) at.push_back(i * total / k);
    return at;
}

}  // namespace

HeadMatching matchHeads(const CacheView& a, const CacheView& b, const HeadMatchParams& params, const JobContext& job) {
    params.validate();
    at::NoGradGuard noGrad;
    HeadMatching m;
    const auto [ra, rb] = sharedRows(a.cache(), b.cache());
    for (std::size_t i : subsample(ra.size(), params.maxImages)) m.rowsA.push_back(ra[i]), m.rowsB.push_back(rb[i]);
    if (m.rowsA.size() < 2) throw InputError(a.cache().dir(), "CKA needs at least 2 images");
    m.headsA = a.heads();
    m.headsB = b.heads();
    if (m.headsA.empty() || m.headsB.empty()) throw InputError(m.headsA.empty() ? a.cache().dir() : b.cache().dir(), "caches no heads");
    const at::Tensor ta = gatherHeads(a, m.headsA, m.rowsA, job.staged("reading the first model's heads"));
    const at::Tensor tb = gatherHeads(b, m.headsB, m.rowsB, job.staged("reading the second model's heads"));
    const at::Tensor cka = linearCka(ta, tb, job.staged("CKA of every head pair")).contiguous();
    m.cka.assign(cka.data_ptr<double>(), cka.data_ptr<double>() + cka.numel());
    const std::vector<int> match = maximumAssignment(m.cka, static_cast<int>(m.headsA.size()), static_cast<int>(m.headsB.size()));
    for (std::size_t i = 0; i < match.size(); ++i)
        if (match[i] >= 0) m.assignment.push_back({static_cast<int>(i), match[i], m.ckaAt(i, static_cast<std::size_t>(match[i]))});
    return m;
}

}  // namespace vitscope
