#pragma once
// Property score (design.md, "Property score"): how much of the variation of the whole
// representation along a property's text directions each component carries.
#include "analysis/components.h"
#include "job.h"

namespace vitscope {

struct ComponentScore {
    Component component;
    double score = 0;  // mean correlation over the property's orthonormal directions
};

// descriptions [k, E] (unit rows); returns every listed component (all of view.allComponents()
// when empty), sorted by score, highest first.
std::vector<ComponentScore> rankComponents(const CacheView& view, const at::Tensor& descriptions,
                                           std::vector<Component> components, const JobContext& job);

// Beyond CLIP's component selection (vit-decompose, image_retrieval_from_text.py and
// zs_spur_correlation.py rank every decomposed component): the `k` best components for a
// property, among heads, MLPs and the embedding, or among heads only.
std::vector<Component> topComponents(const CacheView& view, const at::Tensor& descriptions, int k, bool headsOnly);
// The reference's differential ranking for image retrieval (image_retrieval_from_image.py): the
// score for the target property minus max(0, the best score for any other property), highest first.
std::vector<ComponentScore> rankDifferential(const CacheView& view, const at::Tensor& target, const std::vector<at::Tensor>& others,
                                             bool headsOnly, const JobContext& job);

// The score of one component: terms and total [N, E], basis Q [r, E] orthonormal.
double propertyScore(const at::Tensor& terms, const at::Tensor& total, const at::Tensor& basis);
// Orthonormal basis of the span of the rows of `descriptions` [k, E] -> [r, E], r <= k.
at::Tensor propertyBasis(const at::Tensor& descriptions);

}  // namespace vitscope
