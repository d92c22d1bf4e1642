#include "analysis/ledger.h"

#include "analysis/alignment.h"
#include "analysis/components.h"
#include "model/forward.h"

#include <algorithm>
#include <cmath>

namespace vitscope {

namespace {

std::string headName(int l, int h) { return Component{Component::Kind::Head, l, h}.name(); }

// The model's score for the text: the output's, or the aligned terms' sum for a non-CLIP model.
double modelScore(const Decomposition& dec, const at::Tensor& summedHeads, const at::Tensor& text, const Aligner* aligner) {
    if (!aligner) return at::dot(dec.output[0].to(at::kCPU, at::kFloat), text).item<double>();
    std::vector<std::string> names;
    Decomposition summed = dec;
    summed.heads = summedHeads.unsqueeze(0);
    const at::Tensor out = applyToTerms(*aligner, stackedTerms(summed, &names).to(at::kCPU, at::kFloat))[0];
    return at::dot(out, text).item<double>();
}

// SigLIP's pooling row: each pooling head's score (another decomposition of the same output,
// beside the ledger, not in its sum).
at::Tensor poolRow(const Decomposition& dec, const at::Tensor& text, const Aligner* aligner, int heads) {
    const at::Tensor pool = dec.poolHeads[0].sum(1).to(at::kCPU);  // [P, E]
    at::Tensor row = at::full({1, heads}, NAN);
    for (int h = 0; h < std::min<int>(heads, static_cast<int>(pool.size(0))); ++h) {
        const std::string name = Component{Component::Kind::PoolHead, -1, h}.name();
        if (alignerMaps(aligner, name)) row[0][h] = at::dot(alignedTerm(pool[h], name, aligner), text);
    }
    return row;
}

}  // namespace

Ledger computeLedger(const Model& model, const Decomposition& dec, const at::Tensor& textIn, const Aligner* aligner) {
    const at::Tensor text = textIn.to(at::kCPU, at::kFloat);
    const int L = model.vision.layers(), H = model.vision.heads();
    const std::vector<int> perLayer = model.vision.hierarchical() ? headsPerLayer(model.vision) : std::vector<int>{};
    auto headsIn = [&](int l) { return perLayer.empty() ? H : perLayer[static_cast<std::size_t>(l)]; };
    Ledger g;
    at::Tensor headScores = at::full({L, H}, NAN);  // Swin: the cells of heads a layer lacks stay empty
    const at::Tensor summed = dec.heads.dim() == 5 ? dec.heads[0].sum(2) : dec.heads[0];  // [L, H, E]
    // vit-decompose: `init` (aligned as the embedding), the layers from its detach block, no biases.
    const bool reference = dec.convention == Convention::VitDecompose;
    std::vector<std::string> aligned;  // the aligner's components the rows are (their bias shares are in them)
    auto add = [&](const std::string& name, int l, int h, const at::Tensor& term) {
        aligned.push_back(name == "init" ? "embed" : name);
        const double s = at::dot(alignedTerm(term, aligned.back(), aligner), text).item<double>();
        g.rows.push_back({name, l, h, s});
        g.sumOfTerms += s;
        return s;
    };
    const bool perComponent = aligner && aligner->perComponent();
    g.layerTotals.assign(static_cast<std::size_t>(L), 0.0);
    add(reference ? "init" : "embed", -1, -1, dec.embed[0]);
    for (int l = reference ? dec.firstLayer : 0; l < L; ++l) {
        double& total = g.layerTotals[static_cast<std::size_t>(l)];
        for (int h = 0; h < headsIn(l); ++h) {
            const double s = add(headName(l, h), l, h, summed[l][h]);
            headScores[l][h] = s;
            total += s;
        }
        // A per-component aligner maps the attention biases of all layers together.
        if (!perComponent && !reference) total += add("attn_bias." + std::to_string(l), l, -1, dec.attnBias[0][l]);
        total += add("mlp." + std::to_string(l), l, -1, dec.mlps[0][l]);
    }
    const bool mergeBiases = dec.stageBias.defined() && dec.stageBias.size(1) > 0;
    if (perComponent && !reference) {
        // The aligner's "attn_bias" map covers the patch mergings' offsets too (components.h).
        add("attn_bias", -1, -1, mergeBiases ? dec.attnBias[0].sum(0) + dec.stageBias[0].sum(0) : dec.attnBias[0].sum(0));
    } else if (mergeBiases && !reference) {
        for (int64_t s = 0; s < dec.stageBias.size(1); ++s)
            add(dec.stageBiasName + "." + std::to_string(s + dec.stageBiasFirst), -1, -1, dec.stageBias[0][s]);
    }
    if (dec.convs.defined())  // MaxViT: each block's MBConv branch
        for (int64_t k = reference ? dec.firstConv : 0; k < dec.convs.size(1); ++k) add("conv." + std::to_string(k), -1, -1, dec.convs[0][k]);
    if (!reference) add("post_bias", -1, -1, dec.postBias[0]);
    if (dec.pooled()) add("pool.mlp", -1, -1, dec.poolMlp[0]);  // SigLIP: the pool's MLP completes the sum
    if (aligner) {
        // The aligned output is the sum of the aligned terms plus the aligner's bias (already in
        // CLIP space), less the shares the rows carry (the reference procedure's b / C).
        const double b = at::dot(aligner->biasLeft(aligned), text).item<double>();
        g.rows.push_back({"aligner_bias", -1, -1, b});
        g.sumOfTerms += b;
    }
    g.total = modelScore(dec, summed, text, aligner);
    g.residual = g.total - g.sumOfTerms;
    if (dec.pooled()) headScores = at::cat({headScores, poolRow(dec, text, aligner, H)});
    g.headScores = toFloatGrid(headScores);
    return g;
}

}  // namespace vitscope
