#pragma once
// TextSpan: for each head, a greedy choice of texts from a pool whose directions explain most of
// the variance of the head's direct contributions over a dataset (../shared/design.md).
#include "analysis/components.h"
#include "job.h"

namespace vitscope {

struct TextSpanParams {
    int perHead = 5;  // texts chosen per head
    int rank = 0;     // > 0: first project the texts onto the top-`rank` principal directions of the head
    void validate(int embedDim, int64_t poolSize) const;  // throws InputError
};

struct TextSpanPick {
    int text = -1;             // index into the pool
    double explained = 0;      // variance explained by this pick, as a fraction of the head's total
    double cumulative = 0;     // fraction explained by this and the earlier picks
};

struct HeadTexts {
    Component component;
    double totalVariance = 0;  // of the head's centred terms
    std::vector<TextSpanPick> picks;
};

// One head: terms [N, E] (any scale), texts [T, E]. Cost O(N E^2 + T E^2 + k T E).
HeadTexts textSpan(const at::Tensor& terms, const at::Tensor& texts, const TextSpanParams& params);

// Every listed component of a cache (all cached heads when `components` is empty).
std::vector<HeadTexts> runTextSpan(const CacheView& view, const at::Tensor& texts, const TextSpanParams& params,
                                   std::vector<Component> components, const JobContext& job);

}  // namespace vitscope
