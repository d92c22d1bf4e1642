#include "analysis/ablation_table.h"

#include "analysis/cache.h"
#include "error.h"

#include <algorithm>

namespace vitscope {

namespace {

// Counts of rows whose label is the top-1 / among the top-5 classes of `rep` [n, E].
void score(const at::Tensor& rep, const at::Tensor& classes, const at::Tensor& labels, double* top1, double* top5) {
    const at::Tensor logits = at::matmul(rep, classes.t());
    const int64_t k = std::min<int64_t>(5, classes.size(0));
    const at::Tensor top = std::get<1>(logits.topk(k, 1));
    const at::Tensor hit = top.eq(labels.unsqueeze(1));
    *top1 += hit.select(1, 0).sum().item<double>();
    *top5 += hit.any(1).sum().item<double>();
}

}  // namespace

std::vector<AblationTableRow> zeroShotAblationTable(const CacheView& view, const at::Tensor& classesIn, const std::vector<int64_t>& labelsIn,
                                                    bool ablations, const at::Tensor& classTokenIn) {
    const int64_t n = view.size();
    if (static_cast<int64_t>(labelsIn.size()) != n) throw InputError("labels", "one label per cached image is needed");
    if (n == 0) throw InputError("cache", "holds no images");
    const at::Tensor classes = classesIn.to(at::kCPU, at::kFloat);
    if (classes.dim() != 2 || classes.size(1) != view.embedDim())
        throw InputError("classes", "their embeddings do not live in the cache's (aligned) space");
    for (int64_t l : labelsIn)
        if (l < 0 || l >= classes.size(0)) throw InputError("labels", "a label is outside the class list");
    const at::Tensor labels = at::tensor(labelsIn, at::kLong);
    const DatasetCache& cache = view.cache();
    const int L = cache.numLayers();
    if (ablations && static_cast<int>(cache.cachedLayers().size()) != L)
        throw InputError("cache", "the ablation table needs every layer's heads cached (build the cache with --layers all)");
    // Pass 1: the means over the images (the reference takes them over the evaluated images).
    std::vector<Component> mlpLike;
    std::vector<std::vector<Component>> layerHeads(static_cast<std::size_t>(L));
    at::Tensor mlpMean = at::zeros({view.embedDim()});
    std::vector<at::Tensor> layerMean;  // one tensor each (a filled vector would share one)
    for (int l = 0; l < L; ++l) layerMean.push_back(at::zeros({view.embedDim()}));
    if (ablations) {
        for (const Component& c : view.allComponents()) {
            if (c.kind == Component::Kind::Mlp || c.kind == Component::Kind::Embed) mlpLike.push_back(c);
            if (c.kind == Component::Kind::Head) layerHeads[static_cast<std::size_t>(c.layer)].push_back(c);
        }
        for (const Component& c : mlpLike) mlpMean += view.terms(c).mean(0);
        for (int l = 0; l < L; ++l)
            for (const Component& c : layerHeads[static_cast<std::size_t>(l)]) layerMean[static_cast<std::size_t>(l)] += view.terms(c).mean(0);
    }
    const bool cls = ablations && classTokenIn.defined();
    at::Tensor clsSum, clsMean;  // [N, E] the class token's terms summed over layers, and their mean
    if (cls) {
        if (classTokenIn.dim() != 3 || classTokenIn.size(0) != n || classTokenIn.size(1) != L || classTokenIn.size(2) != view.embedDim())
            throw InputError("class-token terms", "must be [images, layers, E] for the cached images");
        clsSum = classTokenIn.to(at::kCPU, at::kFloat).sum(1);
        clsMean = clsSum.mean(0);
    }
    // Pass 2, in chunks of rows: each row's variants scored.
    const std::size_t rows = ablations ? static_cast<std::size_t>(2 + L + (cls ? 2 : 0)) : 1;
    std::vector<double> top1(rows, 0.0), top5(rows, 0.0);
    const int64_t chunk = 1024;
    for (int64_t s = 0; s < n; s += chunk) {
        const int64_t m = std::min(chunk, n - s);
        const at::Tensor lab = labels.narrow(0, s, m);
        const at::Tensor out = view.output(s, m);
        score(out, classes, lab, &top1[0], &top5[0]);
        if (!ablations) continue;
        at::Tensor mlps = at::zeros_like(out);
        for (const Component& c : mlpLike) mlps += view.terms(c, s, m);
        score(out - mlps + mlpMean, classes, lab, &top1[1], &top5[1]);
        if (cls) {
            const at::Tensor withoutCls = out - clsSum.narrow(0, s, m) + clsMean;
            score(withoutCls, classes, lab, &top1[static_cast<std::size_t>(2 + L)], &top5[static_cast<std::size_t>(2 + L)]);
            score(withoutCls - mlps + mlpMean, classes, lab, &top1[static_cast<std::size_t>(3 + L)], &top5[static_cast<std::size_t>(3 + L)]);
        }
        at::Tensor ablated = out.clone();
        for (int l = 0; l < L; ++l) {
            at::Tensor layer = at::zeros_like(out);
            for (const Component& c : layerHeads[static_cast<std::size_t>(l)]) layer += view.terms(c, s, m);
            ablated = ablated - layer + layerMean[static_cast<std::size_t>(l)];
            score(ablated, classes, lab, &top1[static_cast<std::size_t>(2 + l)], &top5[static_cast<std::size_t>(2 + l)]);
        }
    }
    std::vector<AblationTableRow> out;
    for (std::size_t r = 0; r < rows; ++r) {
        const int li = static_cast<int>(r) - 2;
        const std::string name = r == 0 ? "baseline"
                                 : r == 1 ? "MLPs mean-ablated"
                                 : li < L ? "attention layers 0-" + std::to_string(li) + " mean-ablated"
                                 : li == L ? "class token mean-ablated"
                                           : "MLPs and class token mean-ablated";
        out.push_back({name, 100.0 * top1[r] / static_cast<double>(n), 100.0 * top5[r] / static_cast<double>(n)});
    }
    return out;
}

}  // namespace vitscope
