#pragma once
// TextSpan: for each head, a greedy choice of texts from a pool whose directions explain most of
// the variance of the head's direct contributions over a dataset (../shared/design.md). It is
// the reference algorithm (clip_text_span, compute_complete_text_set.py,
// replace_with_iterative_removal):
//  1. the texts are projected onto the top-`rank` right singular vectors of the head's
//     *uncentred* terms (rank >= E: no projection) and are not renormalised;
//  2. each step picks the text t maximising the spread of (centred terms) . t over the images,
//     with t as deflated so far (not renormalised: a near-duplicate of an earlier pick keeps
//     its small residual norm and loses);
//  3. the pick's direction is removed from the terms and from every text.
// One difference, in degenerate cases only: the list stops when the best remaining text explains
// no variance (below 1e-9 of the total, e.g. after `rank` picks), where the reference would go on
// listing texts chosen among round-off residuals.
#include "analysis/components.h"
#include "job.h"

namespace vitscope {

struct TextSpanParams {
    int perHead = 10;  // texts chosen per head (the reference's --texts_per_head)
    int rank = 80;     // texts projected onto the head's top-`rank` right singular vectors (--w_ov_rank); >= E: none
    // SigLIP's pooling heads: 0 = the embedding dim, i.e. no projection, as the reference's
    // compute_siglip.py passes the embedding dim as the rank.
    int poolRank = 0;
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
    // [k, E] orthonormal: the picks' directions as removed (projected, deflated, normalised).
    // The head reduced to its text span is mean + (centred terms) basis^T basis.
    at::Tensor basis;
};

// One head: terms [N, E] (any scale), texts [T, E]. Cost O(N E^2 + T E^2 + k T E).
HeadTexts textSpan(const at::Tensor& terms, const at::Tensor& texts, const TextSpanParams& params);

// Every listed component of a cache (all cached heads when `components` is empty); pooling
// heads (SigLIP) use params.poolRank.
std::vector<HeadTexts> runTextSpan(const CacheView& view, const at::Tensor& texts, const TextSpanParams& params,
                                   std::vector<Component> components, const JobContext& job);

}  // namespace vitscope
