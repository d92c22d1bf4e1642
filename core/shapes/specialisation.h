#pragma once
// Head specialisation on the shapes world: for every attention head, the share of the variance
// of its direct contribution (the decomposition's per-head term, across held-out scenes) that
// each attribute explains (one-way R^2: between-value variance / total variance).
#include "model/model.h"
#include "shapes/world.h"

#include <array>
#include <vector>

namespace vitscope::shapes {

struct HeadSpecialisation {
    int layer = 0, head = 0;
    std::array<double, 6> r2{};  // by Attribute
    int bestAttribute() const;
};

struct SpecialisationResult {
    std::vector<HeadSpecialisation> heads;  // layer-major
    int64_t images = 0;
    double maxSumError = 0;  // of the decomposition over these images
};

SpecialisationResult headSpecialisation(const Model& model, int64_t count, uint64_t seed, const WorldParams& world = {});

// R^2 of groups of rows: terms [N, E], labels [N] in 0..k-1.
double explainedVariance(const at::Tensor& terms, const std::vector<int>& labels, int k);

}  // namespace vitscope::shapes
