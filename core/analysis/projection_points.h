#pragma once
// What the projector lays out, from a dataset cache (in CLIP space: through the aligner for
// non-CLIP models): the images (the whole representation, one component's contribution, or the
// sum over chosen components) or the heads (one point per head), and the text-axes layout.
//
//   const CacheView view(cache, aligner);
//   PointMatrix x = imagePoints(view, view.parseList("3.1,3.2"), job);  // [N, E]
//   Layout y = umapLayout(x, UmapParams{}, job);
//   Layout t = textAxesLayout(view, texts /*[4, E]: A, B, C, D*/, view.parseList("3.1"));
#include "analysis/components.h"
#include "analysis/projection.h"
#include "analysis/property.h"
#include "job.h"

#include <vector>

namespace vitscope {

// One row per cached image [N, E]: the output when `components` is empty, else the sum of the
// components' terms.
PointMatrix imagePoints(const CacheView& view, const std::vector<Component>& components, const JobContext& job);

// One row per component [C, E] (every cached head when `components` is empty): the component's
// mean contribution over the images, scaled to unit length (its mean direction).
PointMatrix headPoints(const CacheView& view, const std::vector<Component>& components, const JobContext& job);

// The heads' TextSpan principal directions: for each component (every cached head when
// `components` is empty), the top `perHead` right singular vectors of its uncentred terms over the
// images [N, E] (the span TextSpan projects its texts onto), each signed so that the terms' mean
// projection on it is not negative. [C * perHead, E], head h's k-th direction at row h * perHead + k.
// InputError when perHead is not in 1..E.
PointMatrix headDirectionPoints(const CacheView& view, const std::vector<Component>& components, int perHead, const JobContext& job);

// Text axes for the images: x = score(A) - score(B), y = score(C) - score(D), each score the one
// retrieval ranks by (textScores: through `components`, or the output's cosine when empty).
// texts [4, E] unit rows A, B, C, D in the cache's (CLIP) space. [N, 2].
Layout textAxesLayout(const CacheView& view, const at::Tensor& texts, const std::vector<Component>& components);

// Text axes for heads: each head's mean over the images of the same score differences through
// that head alone. [C, 2] (every cached head when `components` is empty).
Layout headTextAxesLayout(const CacheView& view, const at::Tensor& texts, const std::vector<Component>& components);

// How far apart each component's contributions are for the images `rows` and for the other
// images: the distance between the two groups' mean terms over the root-mean-square distance of
// all the terms to their mean (a standardised mean difference; 0: the same mean). The heads and
// MLPs that separate a picked group of the projector. Every cached head and MLP when `components`
// is empty. InputError when `rows` is empty, holds every image or a row outside the cache.
std::vector<ComponentScore> selectionSeparation(const CacheView& view, const std::vector<int64_t>& rows, const std::vector<Component>& components,
                                                const JobContext& job);

// Text axes for unit directions [P, E] (headDirectionPoints): x = <d, A> - <d, B>, y = <d, C> - <d, D>.
Layout directionTextAxesLayout(const PointMatrix& directions, const at::Tensor& texts);

// A layout as the CLI writes it: [N, 2] float32 .npy.
void writeLayoutNpy(const std::string& path, const Layout& layout);

}  // namespace vitscope
