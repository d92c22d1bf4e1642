#include "analysis/neurons.h"

#include "error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vitscope {

NeuronDirections neuronPrincipalDirections(const at::Tensor& effects, int topK, const JobContext& job) {
    if (effects.dim() != 3) throw InputError("effects", "expected [images, neurons, E]");
    if (topK < 1) throw InputError("--top-k", "must be at least 1");
    const int64_t n = effects.size(0), m = effects.size(1), e = effects.size(2);
    if (n < 1 || m < 1 || e < 1) throw InputError("effects", "holds no effects");
    const int64_t k = std::min<int64_t>(topK, n);
    // Neurons per slice: a slice of every image's effects stays near 256 MB.
    const int64_t slice = std::max<int64_t>(1, std::min<int64_t>(m, (int64_t(256) << 20) / std::max<int64_t>(1, n * e * 4)));
    NeuronDirections out;
    out.directions = at::empty({m, e}, at::kFloat);
    out.topNorms = at::empty({m, k}, at::kFloat);
    out.topImages = at::empty({m, k}, at::kLong);
    out.mean = at::empty({m, e}, at::kFloat);
    for (int64_t m0 = 0; m0 < m; m0 += slice) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t s = std::min(slice, m - m0);
        const at::Tensor x = effects.narrow(1, m0, s).to(at::kFloat).contiguous();  // [N, s, E]
        const at::Tensor mean = x.mean(0);                                         // [s, E]
        const at::Tensor centred = x - mean.unsqueeze(0);
        const at::Tensor norms = centred.norm(2, 2);                                // [N, s]
        const at::Tensor order = std::get<1>(norms.sort(0)).narrow(0, n - k, k);     // [k, s] ascending, the largest k
        const at::Tensor picked = centred.permute({1, 0, 2}).gather(1, order.t().unsqueeze(2).expand({s, k, e}));  // [s, k, E]
        const at::Tensor vh = std::get<2>(at::linalg_svd(picked, false));          // [s, min(k, E), E]
        at::Tensor first = vh.select(1, 0);                                        // [s, E]
        const at::Tensor positive = (at::matmul(picked, first.unsqueeze(2)).squeeze(2) > 0).sum(1);  // [s]
        first = at::where((positive > topK / 2).unsqueeze(1), first, -first);
        out.directions.narrow(0, m0, s).copy_(first);
        out.topNorms.narrow(0, m0, s).copy_(norms.gather(0, order).t());
        out.topImages.narrow(0, m0, s).copy_(order.t());
        out.mean.narrow(0, m0, s).copy_(mean);
        job.report({m0 + s, m, 0, 0, "principal directions"});
    }
    return out;
}

at::Tensor referenceTextDictionary(const at::Tensor& texts, double coefficient) {
    const at::Tensor centred = texts - texts.mean(0, true);
    return coefficient * centred / centred.norm(2, 0, true);
}

SparseCodes orthogonalMatchingPursuit(const at::Tensor& dictionary, const at::Tensor& targets, int nonzero) {
    if (dictionary.dim() != 2 || targets.dim() != 2 || dictionary.size(1) != targets.size(1))
        throw InputError("orthogonal matching pursuit", "needs a dictionary [T, E] and targets [M, E] of the same E");
    const int64_t t = dictionary.size(0), m = targets.size(0), e = dictionary.size(1);
    if (nonzero < 1 || nonzero > std::min(t, e))
        throw InputError("--components " + std::to_string(nonzero), "must be between 1 and min(texts, embedding dimensions)");
    // Atom t (a zero row) stands for "none": a row whose residual is gone picks it from then on
    // (sklearn's OMP stops there), with coefficient 0.
    const at::Tensor d = at::cat({dictionary.to(at::kDouble), at::zeros({1, e}, at::kDouble)}).contiguous();
    const at::Tensor y = targets.to(at::kDouble).contiguous();
    SparseCodes out;
    out.indices = at::full({m, nonzero}, -1, at::kLong);
    out.values = at::zeros({m, nonzero}, at::kDouble);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(m, (int64_t(64) << 20) / std::max<int64_t>(1, t * 8)));
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        const int64_t c = std::min(chunk, m - r0);
        const at::Tensor yc = y.narrow(0, r0, c);
        at::Tensor residual = yc.clone();
        at::Tensor picked = at::empty({c, 0}, at::kLong);
        at::Tensor coef = at::zeros({c, 0}, at::kDouble);
        for (int step = 0; step < nonzero; ++step) {
            at::Tensor corr = at::matmul(residual, d.narrow(0, 0, t).t()).abs();  // [c, T]
            if (step > 0) corr.scatter_(1, picked.clamp_max(t - 1), -1.0);       // (a "none" pick masks nothing new)
            const auto [best, atom] = corr.max(1);
            const at::Tensor none = best.pow(2) < std::numeric_limits<float>::min();
            picked = at::cat({picked, at::where(none, at::full_like(atom, t), atom).unsqueeze(1)}, 1);
            const at::Tensor atoms = d.index_select(0, picked.flatten()).view({c, step + 1, e});  // [c, s, E]
            const at::Tensor isNone = (picked == t).to(at::kDouble);                            // [c, s]
            const at::Tensor gram = at::matmul(atoms, atoms.transpose(1, 2)) + at::diag_embed(isNone);
            const at::Tensor rhs = at::matmul(atoms, yc.unsqueeze(2));  // [c, s, 1]
            coef = at::linalg_solve(gram, rhs).squeeze(2);               // least squares on the atoms picked so far
            residual = yc - at::matmul(coef.unsqueeze(1), atoms).squeeze(1);
        }
        const at::Tensor none = picked == t;
        out.indices.narrow(0, r0, c).copy_(picked.masked_fill(none, -1));
        out.values.narrow(0, r0, c).copy_(coef.masked_fill(none, 0));
    }
    return out;
}

std::vector<NeuronText> topTexts(const SparseCodes& codes, int64_t row, const std::vector<std::string>& texts, int count) {
    std::vector<NeuronText> out;
    const at::Tensor idx = codes.indices.select(0, row), val = codes.values.select(0, row);
    for (int64_t j = 0; j < idx.size(0); ++j) {
        const int64_t i = idx[j].item<int64_t>();
        if (i < 0) continue;
        if (i >= static_cast<int64_t>(texts.size())) throw InputError("texts", "fewer texts than the dictionary's atoms");
        out.push_back({i, val[j].item<double>(), texts[static_cast<std::size_t>(i)]});
    }
    std::stable_sort(out.begin(), out.end(), [](const NeuronText& a, const NeuronText& b) { return std::abs(a.coefficient) > std::abs(b.coefficient); });
    if (static_cast<int>(out.size()) > count) out.resize(static_cast<std::size_t>(count));
    return out;
}

}  // namespace vitscope
