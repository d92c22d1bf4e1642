#pragma once
// Zero-shot accuracy of a cached dataset and TextSpan's mean-ablation table
// (clip_text_span compute_ablations.py): the representation rebuilt from its cached terms with
// some of them replaced by their mean over the same images, scored against a class-prompt
// classifier. Rows, in the reference's order:
// - baseline: every term (the model's output);
// - MLPs mean-ablated: every MLP and the embedding term (its `mlps` array holds the embedding as
//   its first row) replaced by their means;
// - attention layers 0..l mean-ablated, for each layer l: every head of layers 0..l replaced by its
//   layer's mean (cumulative, as the reference's loop does).
// - with `classToken` [N, L, E] (each image's per-layer attention term from its class token,
//   summed over heads): "class token mean-ablated" and "MLPs and class token mean-ablated", the
//   reference's "+ CLS ablation" and "+ MLPs + CLS ablation" rows (caches keep no per-token
//   terms, so the caller decomposes the images per token for them).
#include "analysis/components.h"

#include <string>
#include <vector>

namespace vitscope {

struct AblationTableRow {
    std::string name;
    double top1 = 0, top5 = 0;  // percent of the rows whose label is the first / in the first five classes
};

// classes [C, E] (the classifier's rows, in the view's space), labels one per cached row
// (0..C-1). `ablations` false: the baseline row only (zero-shot accuracy). Needs every layer
// cached for the ablation rows (InputError otherwise).
std::vector<AblationTableRow> zeroShotAblationTable(const CacheView& view, const at::Tensor& classes, const std::vector<int64_t>& labels,
                                                    bool ablations, const at::Tensor& classToken = {});

}  // namespace vitscope
