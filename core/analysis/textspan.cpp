#include "analysis/textspan.h"

#include "error.h"

#include <algorithm>
#include <chrono>

namespace vitscope {

void TextSpanParams::validate(int embedDim, int64_t poolSize) const {
    if (poolSize < 1) throw InputError("text pool", "is empty");
    if (perHead < 1 || perHead > poolSize || perHead > embedDim)
        throw InputError("--per-head", "must be within 1..min(pool size " + std::to_string(poolSize) + ", embedding dim " +
                                           std::to_string(embedDim) + "), got " + std::to_string(perHead));
    if (poolRank < 0) throw InputError("--pool-rank", "must be 0 (no projection) or positive");
    if (rank < 1) throw InputError("--rank", "must be at least 1 (ranks at or above the embedding dim " +
                                                 std::to_string(embedDim) + " project nothing), got " + std::to_string(rank));
}

namespace {

// The texts projected onto the span of the top-`rank` right singular vectors of the uncentred
// terms X [N, E], i.e. the top eigenvectors of X^T X / N = cov + mean mean^T (from the centred
// covariance already computed: no second pass over the data); unchanged when that span is
// everything.
at::Tensor projectOntoTopSingular(const at::Tensor& cov, const at::Tensor& mean, int64_t rows, const at::Tensor& texts, int rank) {
    const int64_t e = cov.size(0);
    const int64_t r = std::min<int64_t>({static_cast<int64_t>(rank), rows, e});
    if (r >= e) return texts;
    const at::Tensor m = mean.reshape({e}).to(at::kDouble);
    const at::Tensor gram = cov.to(at::kDouble) + at::outer(m, m);
    const at::Tensor v = std::get<1>(at::linalg_eigh(gram)).narrow(1, e - r, r);  // [E, r], ascending order
    return at::matmul(at::matmul(texts.to(at::kDouble), v), v.t()).to(at::kFloat);
}

}  // namespace

HeadTexts textSpan(const at::Tensor& terms, const at::Tensor& textsIn, const TextSpanParams& params) {
    params.validate(static_cast<int>(terms.size(1)), textsIn.size(0));
    if (terms.size(1) != textsIn.size(1))
        throw InputError("texts", "embedding dim " + std::to_string(textsIn.size(1)) + " differs from the terms' " +
                                      std::to_string(terms.size(1)));
    at::NoGradGuard noGrad;
    const at::Tensor mean = terms.mean(0, true).to(at::kFloat);                          // [1, E]
    const at::Tensor c = terms.to(at::kFloat) - mean;                                    // [N, E]
    at::Tensor cov = at::matmul(c.t(), c) / static_cast<double>(terms.size(0));      // [E, E]
    HeadTexts out;
    out.totalVariance = cov.trace().item<double>();
    at::Tensor t = projectOntoTopSingular(cov, mean, terms.size(0), textsIn.to(at::kFloat), params.rank);  // [T, E]
    // The score of text j is the variance of c t_j over the images, t_j cov t_j^T, with t_j as
    // deflated so far (not renormalised). Each pick u = t_best / |t_best| is removed from the data
    // (cov <- P cov P, P = I - uu^T) and from every text (t <- t P); tc = t cov is kept up to date
    // by rank-1 updates, so no step costs more than O(T E).
    at::Tensor tc = at::matmul(t, cov);  // [T, E]
    std::vector<at::Tensor> basis;
    if (out.totalVariance <= 0) return out;
    double cumulative = 0;
    std::vector<bool> used(static_cast<std::size_t>(t.size(0)), false);
    for (int k = 0; k < params.perHead; ++k) {
        const at::Tensor norms2 = (t * t).sum(1);                                         // [T]
        at::Tensor score = (tc * t).sum(1);
        score.masked_fill_(norms2 < 1e-20, -1.0);
        for (std::size_t j = 0; j < used.size(); ++j)
            if (used[j]) score[static_cast<int64_t>(j)] = -1.0;
        const int64_t best = score.argmax().item<int64_t>();
        if (score[best].item<double>() < 0) break;
        used[static_cast<std::size_t>(best)] = true;
        const at::Tensor u = t[best] / t[best].norm();                                    // [E]
        const at::Tensor cu = at::matmul(cov, u);                                          // [E]
        const double ucu = at::dot(u, cu).item<double>();                                 // variance removed
        // Every remaining text is (numerically) outside the data: stop rather than list noise
        // (the reference goes on picking among round-off residuals, e.g. beyond `rank` picks).
        if (ucu <= 1e-9 * out.totalVariance) break;
        const at::Tensor a = at::matmul(t, u);                                            // [T] = t.u
        const at::Tensor tcu = at::matmul(tc, u);                                          // [T] = t cov u
        // New tc' = t' cov' with t' = t - a u^T, cov' = P cov P; since t' P = t':
        // tc' = t' cov P = (tc - a cu^T) - (tcu - a ucu) u^T.
        tc = tc - at::outer(a, cu) - at::outer(tcu - a * ucu, u);
        t = t - at::outer(a, u);
        cov = cov - at::outer(cu, u) - at::outer(u, cu) + ucu * at::outer(u, u);
        const double frac = ucu / out.totalVariance;
        cumulative += frac;
        out.picks.push_back({static_cast<int>(best), frac, cumulative});
        basis.push_back(u);
    }
    if (!basis.empty()) out.basis = at::stack(basis);
    return out;
}

std::vector<HeadTexts> runTextSpan(const CacheView& view, const at::Tensor& texts, const TextSpanParams& params,
                                   std::vector<Component> components, const JobContext& job) {
    if (texts.size(1) != view.embedDim())
        throw InputError("texts", "embedding dim " + std::to_string(texts.size(1)) + " differs from the cache's " +
                                      std::to_string(view.embedDim()) + " (another CLIP model, or a missing --aligner?)");
    params.validate(static_cast<int>(view.embedDim()), texts.size(0));
    if (components.empty()) components = view.heads();
    std::vector<HeadTexts> out;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < components.size(); ++i) {
        if (job.cancelled()) throw JobCancelled();
        TextSpanParams headParams = params;
        if (components[i].kind == Component::Kind::PoolHead)
            headParams.rank = params.poolRank > 0 ? params.poolRank : static_cast<int>(view.embedDim());
        HeadTexts h = textSpan(view.terms(components[i]), texts, headParams);
        h.component = components[i];
        out.push_back(std::move(h));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        JobProgress p;
        p.stage = "describing heads (TextSpan)";
        p.done = static_cast<int64_t>(i + 1);
        p.total = static_cast<int64_t>(components.size());
        p.perSecond = p.done / std::max(secs, 1e-9);
        p.etaSeconds = (p.total - p.done) / p.perSecond;
        job.report(p);
    }
    return out;
}

}  // namespace vitscope
