#include "shapes/specialisation.h"

#include "model/forward.h"
#include "shapes/zero_shot.h"

namespace vitscope::shapes {

int HeadSpecialisation::bestAttribute() const {
    int best = 0;
    for (int a = 1; a < 6; ++a)
        if (r2[static_cast<std::size_t>(a)] > r2[static_cast<std::size_t>(best)]) best = a;
    return best;
}

double explainedVariance(const at::Tensor& terms, const std::vector<int>& labels, int k) {
    const at::Tensor x = terms.to(at::kDouble);
    const at::Tensor centred = x - x.mean(0, true);
    const double total = (centred * centred).sum().item<double>();
    if (total <= 0) return 0;
    const at::Tensor idx = at::tensor(std::vector<int64_t>(labels.begin(), labels.end()));
    const at::Tensor sums = at::zeros({k, x.size(1)}, x.options()).index_add_(0, idx, x);
    const at::Tensor counts = at::zeros({k}, x.options()).index_add_(0, idx, at::ones({x.size(0)}, x.options()));
    const at::Tensor means = sums / counts.clamp_min(1).unsqueeze(1);
    const at::Tensor resid = x - means.index_select(0, idx);
    return 1.0 - (resid * resid).sum().item<double>() / total;
}

SpecialisationResult headSpecialisation(const Model& model, int64_t count, uint64_t seed, const WorldParams& world) {
    at::NoGradGuard guard;
    std::vector<at::Tensor> heads;
    std::array<std::vector<int>, 6> labels;
    SpecialisationResult result;
    for (int64_t start = 0; start < count; start += 250) {
        std::vector<Scene> scenes;
        for (int64_t i = start; i < std::min(count, start + 250); ++i) scenes.push_back(generateScene(seed, static_cast<uint64_t>(i), world));
        const Decomposition d = decomposeImages(model, scenesToPixels(scenes, model.preprocess));
        heads.push_back(d.heads);  // [B, L, H, E]
        result.maxSumError = std::max(result.maxSumError, d.maxAbsError);
        for (const Scene& s : scenes)
            for (std::size_t a = 0; a < 6; ++a) labels[a].push_back(s.labels.value(kAttributes[a]));
    }
    const at::Tensor all = at::cat(heads);
    result.images = all.size(0);
    for (int l = 0; l < all.size(1); ++l) {
        for (int h = 0; h < all.size(2); ++h) {
            HeadSpecialisation hs;
            hs.layer = l;
            hs.head = h;
            const at::Tensor terms = all.select(1, l).select(1, h);
            for (std::size_t a = 0; a < 6; ++a)
                hs.r2[a] = explainedVariance(terms, labels[a], static_cast<int>(attributeValues(kAttributes[a]).size()));
            result.heads.push_back(hs);
        }
    }
    return result;
}

}  // namespace vitscope::shapes
