#include "analysis/retrieval.h"

#include "error.h"

namespace vitscope {

namespace {

constexpr int64_t kChunk = 16384;

// The summed terms of `components` for rows [start, start + n): [n, E] float.
at::Tensor summedTerms(const CacheView& view, const std::vector<Component>& components, int64_t start, int64_t n) {
    at::Tensor sum;
    for (const Component& c : components) {
        const at::Tensor t = view.terms(c, start, n);
        sum = sum.defined() ? sum.add_(t) : t.clone();
    }
    return sum;
}

std::vector<RetrievalHit> topRows(const CacheView& view, const std::function<at::Tensor(int64_t, int64_t)>& scoreChunk, int top) {
    if (top < 1) throw InputError("--top", "must be at least 1");
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> scores;
    for (int64_t start = 0; start < view.size(); start += kChunk) scores.push_back(scoreChunk(start, std::min(kChunk, view.size() - start)));
    const at::Tensor all = at::cat(scores);
    const int64_t k = std::min<int64_t>(top, all.size(0));
    const auto best = at::topk(all, k);
    const at::Tensor values = std::get<0>(best), index = std::get<1>(best);
    std::vector<RetrievalHit> out;
    for (int64_t i = 0; i < k; ++i) {
        const int64_t row = index[i].item<int64_t>();
        out.push_back({row, view.cache().paths()[static_cast<std::size_t>(row)], values[i].item<double>()});
    }
    return out;
}

void checkQuery(const CacheView& view, const at::Tensor& q) {
    if (q.dim() != 1 || q.size(0) != view.embedDim())
        throw InputError("query", "expected a " + std::to_string(view.embedDim()) + "-dimensional vector, got " + std::to_string(q.numel()) +
                                      " values (another model, or a missing --aligner?)");
}

}  // namespace

std::vector<RetrievalHit> retrieveByText(const CacheView& view, const at::Tensor& text, const std::vector<Component>& components,
                                         int top) {
    checkQuery(view, text);
    const at::Tensor t = text.to(at::kFloat);
    return topRows(view, [&](int64_t start, int64_t n) {
        if (components.empty()) {
            const at::Tensor out = view.output(start, n);
            return at::matmul(out / out.norm(2, 1, true).clamp_min(1e-12), t);
        }
        return at::matmul(summedTerms(view, components, start, n), t);
    }, top);
}

std::vector<RetrievalHit> retrieveByImage(const CacheView& view, const at::Tensor& query, const std::vector<Component>& components,
                                          int top) {
    checkQuery(view, query);
    const at::Tensor q = query.to(at::kFloat) / query.norm().clamp_min(1e-12);
    return topRows(view, [&](int64_t start, int64_t n) {
        const at::Tensor x = components.empty() ? view.output(start, n) : summedTerms(view, components, start, n);
        return at::matmul(x / x.norm(2, 1, true).clamp_min(1e-12), q);
    }, top);
}

at::Tensor cachedQuery(const CacheView& view, int64_t row, const std::vector<Component>& components) {
    if (row < 0 || row >= view.size()) throw InputError("query row", std::to_string(row) + " is outside the cache");
    return components.empty() ? view.output(row, 1)[0] : summedTerms(view, components, row, 1)[0];
}

at::Tensor decompositionQuery(const Decomposition& dec, const std::vector<Component>& components, const Aligner* aligner) {
    at::Tensor q;
    if (components.empty()) {
        if (aligner && aligner->perComponent()) {
            std::vector<std::string> names;
            const at::Tensor x = stackedTerms(dec, &names).narrow(0, 0, 1).to(at::kCPU, at::kFloat);
            if (names != aligner->components) throw InputError("aligner", "was made for another model's components");
            return applyToTerms(*aligner, x)[0];
        }
        q = dec.output[0].to(at::kCPU, at::kFloat);
        return aligner ? aligner->apply(q) : q;
    }
    for (const Component& c : components) {
        at::Tensor t;
        switch (c.kind) {
        case Component::Kind::Head: t = dec.heads[0][c.layer][c.head].to(at::kCPU, at::kFloat); break;
        case Component::Kind::Mlp: t = dec.mlps[0][c.layer].to(at::kCPU, at::kFloat); break;
        case Component::Kind::Embed: t = dec.embed[0].to(at::kCPU, at::kFloat); break;
        }
        if (aligner) t = at::matmul(t, aligner->weightFor(c.name()));
        q = q.defined() ? q + t : t;
    }
    return q;
}

}  // namespace vitscope
