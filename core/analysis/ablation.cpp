#include "analysis/ablation.h"

#include "error.h"

#include <algorithm>

namespace vitscope {

AccuracyReport scoreOutputs(const at::Tensor& outputs, const ZeroShotClassifier& classifier, const RowLabels& labels) {
    const int64_t n = outputs.size(0);
    if (static_cast<int64_t>(labels.label.size()) != n) throw InputError("labels", "count differs from the cache's rows");
    if (classifier.prompts.size(0) != static_cast<int64_t>(classifier.promptClass.size()) || classifier.prompts.size(0) == 0)
        throw InputError("classes", "no prompts, or prompts without a class");
    const at::Tensor x = outputs / outputs.norm(2, 1, true).clamp_min(1e-12);
    const at::Tensor best = at::matmul(x, classifier.prompts.t()).argmax(1).contiguous();
    const int64_t* b = best.data_ptr<int64_t>();
    AccuracyReport r;
    std::map<std::string, int64_t> correct;
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
        const bool ok = classifier.promptClass[static_cast<std::size_t>(b[i])] == labels.label[static_cast<std::size_t>(i)];
        total += ok;
        const std::string g = labels.group.empty() ? "" : labels.group[static_cast<std::size_t>(i)];
        correct[g] += ok;
        r.groupCount[g] += 1;
    }
    r.accuracy = static_cast<double>(total) / std::max<int64_t>(1, n);
    r.worstGroup = 2;
    for (const auto& [g, count] : r.groupCount) {
        const double acc = static_cast<double>(correct[g]) / count;
        r.groupAccuracy[g] = acc;
        if (acc < r.worstGroup) r.worstGroup = acc, r.worstGroupName = g;
    }
    return r;
}

AblationResult runAblation(const CacheView& scored, const CacheView& reference, const ZeroShotClassifier& classifier,
                           const RowLabels& labels, const std::vector<Component>& components) {
    if (scored.cache().fingerprint() != reference.cache().fingerprint())
        throw InputError(reference.cache().dir(), "is a cache of another model than " + scored.cache().dir() +
                                                      "; the reference split must come from the same model");
    if (scored.cache().dir() == reference.cache().dir())
        throw InputError(reference.cache().dir(), "is the scored cache itself; means must come from another split");
    const auto isKind = [&](std::initializer_list<Component::Kind> kinds) {
        return std::any_of(components.begin(), components.end(), [&](const Component& c) {
            return std::find(kinds.begin(), kinds.end(), c.kind) != kinds.end();
        });
    };
    if (isKind({Component::Kind::PoolHead}) &&
        isKind({Component::Kind::Head, Component::Kind::Mlp, Component::Kind::Embed, Component::Kind::Conv}))
        throw InputError("components", "mix pooling heads with encoder components: the two are decompositions of the same "
                                       "output (ablate one level at a time)");
    at::NoGradGuard noGrad;
    at::Tensor out = scored.output();
    AblationResult r;
    r.before = scoreOutputs(out, classifier, labels);
    for (const Component& c : components) {
        out = out - scored.terms(c) + reference.terms(c).mean(0, true);
    }
    r.after = scoreOutputs(out, classifier, labels);
    r.ablated = components;
    return r;
}

SpanAccuracy textSpanAccuracy(const CacheView& view, const std::vector<Component>& components, const std::vector<at::Tensor>& bases,
                              const ZeroShotClassifier& classifier, const RowLabels& labels) {
    if (components.size() != bases.size()) throw InputError("textspan check", "one text basis per component is needed");
    at::NoGradGuard noGrad;
    SpanAccuracy r;
    const at::Tensor out = view.output();
    int earliest = view.cache().numLayers();
    for (const Component& c : components) earliest = std::min(earliest, c.layer);
    at::Tensor earlier = out.clone();
    for (const Component& c : view.heads()) {
        if (c.layer >= earliest) continue;
        const at::Tensor t = view.terms(c);
        earlier += t.mean(0, true) - t;
        ++r.earlierHeads;
    }
    for (int l = 0; l < earliest; ++l) {
        const auto& cached = view.cache().cachedLayers();
        if (std::find(cached.begin(), cached.end(), l) == cached.end()) ++r.earlierLayersUncached;
    }
    at::Tensor ablated = earlier.clone(), spanned = earlier.clone();
    for (std::size_t i = 0; i < components.size(); ++i) {
        const at::Tensor t = view.terms(components[i]);
        const at::Tensor mean = t.mean(0, true);
        ablated += mean - t;
        if (!bases[i].defined() || bases[i].numel() == 0) {
            spanned += mean - t;
            continue;
        }
        const at::Tensor q = bases[i].to(t.dtype());  // [k, E] orthonormal
        spanned += mean + at::matmul(at::matmul(t - mean, q.t()), q) - t;
    }
    r.original = scoreOutputs(out, classifier, labels).accuracy;
    r.earlierMeanAblated = scoreOutputs(earlier, classifier, labels).accuracy;
    r.textSpan = scoreOutputs(spanned, classifier, labels).accuracy;
    r.meanAblated = scoreOutputs(ablated, classifier, labels).accuracy;
    return r;
}

std::vector<ComponentScore> discoverSpuriousComponents(const CacheView& reference, const at::Tensor& spurious, const at::Tensor& core,
                                                       int k, bool headsOnly) {
    if (k < 1) throw InputError("--top", "must be at least 1");
    const std::vector<Component> all = headsOnly ? reference.heads() : reference.allComponents();
    const std::vector<ComponentScore> s = rankComponents(reference, spurious, all, {});
    const std::vector<ComponentScore> c = rankComponents(reference, core, all, {});
    std::vector<ComponentScore> diff;
    for (const ComponentScore& a : s)
        for (const ComponentScore& b : c)
            if (a.component == b.component) diff.push_back({a.component, a.score - b.score});
    std::stable_sort(diff.begin(), diff.end(), [](const ComponentScore& a, const ComponentScore& b) { return a.score > b.score; });
    if (static_cast<int>(diff.size()) > k) diff.resize(static_cast<std::size_t>(k));
    return diff;
}

}  // namespace vitscope
