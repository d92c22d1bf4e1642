#include "analysis/property.h"

#include <map>

#include "error.h"

#include <algorithm>
#include <chrono>

namespace vitscope {

at::Tensor propertyBasis(const at::Tensor& descriptions) {
    if (descriptions.dim() != 2 || descriptions.size(0) < 1) throw InputError("property texts", "no descriptions");
    const auto qr = at::linalg_qr(descriptions.to(at::kDouble).t(), "reduced");  // Q [E, k]
    const at::Tensor q = std::get<0>(qr);
    const at::Tensor r = std::get<1>(qr);
    // Drop directions of (numerically) dependent descriptions.
    const at::Tensor keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max();
    return q.t().index({keep}).to(at::kFloat);  // [r, E]
}

double propertyScore(const at::Tensor& terms, const at::Tensor& total, const at::Tensor& basis) {
    at::Tensor s = at::matmul(terms, basis.t());  // [N, r]
    at::Tensor t = at::matmul(total, basis.t());
    s = s - s.mean(0, true);
    t = t - t.mean(0, true);
    const at::Tensor denom = (s.norm(2, 0) * t.norm(2, 0)).clamp_min(1e-20);
    return ((s * t).sum(0) / denom).mean().item<double>();
}

std::vector<ComponentScore> rankComponents(const CacheView& view, const at::Tensor& descriptions,
                                           std::vector<Component> components, const JobContext& job) {
    if (descriptions.size(1) != view.embedDim())
        throw InputError("property texts", "embedding dim " + std::to_string(descriptions.size(1)) + " differs from the cache's " +
                                               std::to_string(view.embedDim()));
    at::NoGradGuard noGrad;
    const at::Tensor basis = propertyBasis(descriptions);
    if (components.empty()) components = view.allComponents();
    const at::Tensor total = view.output();
    std::vector<ComponentScore> out;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < components.size(); ++i) {
        if (job.cancelled()) throw JobCancelled();
        out.push_back({components[i], propertyScore(view.terms(components[i]), total, basis)});
        JobProgress p;
        p.stage = "ranking heads";
        p.done = static_cast<int64_t>(i + 1);
        p.total = static_cast<int64_t>(components.size());
        p.perSecond = p.done / std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        p.etaSeconds = (p.total - p.done) / p.perSecond;
        job.report(p);
    }
    std::stable_sort(out.begin(), out.end(), [](const ComponentScore& a, const ComponentScore& b) { return a.score > b.score; });
    return out;
}

std::vector<Component> topComponents(const CacheView& view, const at::Tensor& descriptions, int k, bool headsOnly) {
    if (k < 1) throw InputError("--top-components", "must be at least 1");
    const std::vector<ComponentScore> scores =
        rankComponents(view, descriptions, headsOnly ? view.heads() : view.allComponents(), JobContext{});
    std::vector<Component> out;
    for (int i = 0; i < k && i < static_cast<int>(scores.size()); ++i) out.push_back(scores[static_cast<std::size_t>(i)].component);
    return out;
}

std::vector<ComponentScore> rankDifferential(const CacheView& view, const at::Tensor& target, const std::vector<at::Tensor>& others,
                                             bool headsOnly, const JobContext& job) {
    const std::vector<Component> components = headsOnly ? view.heads() : view.allComponents();
    std::vector<ComponentScore> base = rankComponents(view, target, components, job);
    std::map<std::string, double> best;  // max(0, best other score) per component
    for (const at::Tensor& o : others)
        for (const ComponentScore& s : rankComponents(view, o, components, job))
            best[s.component.name()] = std::max(best[s.component.name()], s.score);
    for (ComponentScore& s : base) s.score -= best[s.component.name()];
    std::stable_sort(base.begin(), base.end(), [](const ComponentScore& a, const ComponentScore& b) { return a.score > b.score; });
    return base;
}

}  // namespace vitscope
