#pragma once
// Retrieval over a cache through a set of components (design.md, "Retrieval"): by text,
// score = sum over the set of <term_c(image), t>; by a reference image, the cosine of the summed
// set terms of the two images. An empty set means global retrieval (the whole representation:
// cosine of the normalised outputs).
#include "analysis/components.h"

namespace vitscope {

struct RetrievalHit {
    int64_t row = -1;
    std::string path;
    double score = 0;
};

// scores [n] += stored [n, D] . v [D]: fp16 rows with unit inner stride (any row stride, e.g. a
// head's slice of the mapped cache) converted on the fly, on up to 4 threads; other tensors
// through a float matmul.
void accumulateDots(const at::Tensor& stored, const at::Tensor& v, at::Tensor& scores);

// Every row's text score, the one retrieveByText ranks by: sum over `components` of
// <term_c(row), text>, or (no components) the cosine of the row's output with the text. [N] float.
at::Tensor textScores(const CacheView& view, const at::Tensor& text, const std::vector<Component>& components);

// text [E] unit-norm, in the cache's (aligned) space.
std::vector<RetrievalHit> retrieveByText(const CacheView& view, const at::Tensor& text, const std::vector<Component>& components,
                                         int top);
// query: the summed component terms of the query image (its output when `components` is empty).
// Through components, images are compared in the model's own space, as the reference does
// (vit-decompose's image_retrieval_from_image.py sums the decomposed, not the CLIP-aligned,
// terms): for an aligned cache the query is then D-dimensional (cachedQuery /
// decompositionQuery with modelSpace = true). Globally (no components) the aligned output is used.
std::vector<RetrievalHit> retrieveByImage(const CacheView& view, const at::Tensor& query, const std::vector<Component>& components,
                                          int top);
// The query vector of a cached image (row) for retrieveByImage: components' summed terms in the
// model's space when `components` is non-empty, the aligned output otherwise.
at::Tensor cachedQuery(const CacheView& view, int64_t row, const std::vector<Component>& components);
// The summed terms of `components` for a single decomposition (batch of one): in the model's
// space when `components` is non-empty (retrieveByImage's convention), else its output in CLIP
// space (through the aligner when given).
at::Tensor decompositionQuery(const Decomposition& dec, const std::vector<Component>& components, const Aligner* aligner);

}  // namespace vitscope
