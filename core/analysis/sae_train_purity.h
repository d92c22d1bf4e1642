#pragma once
// Ground-truth purity of SAE latents: for each latent active (> 0) on at least `minActive`
// rows and each attribute (a labels.csv column: color, shape, texture...), the precision of its
// best value among the rows where it is active: max_v #(active and label = v) / #active. A
// latent is "pure" for an attribute when that precision reaches the threshold.
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace vitscope {

struct SaePurity {
    std::vector<std::string> attributes;
    double threshold = 0.9;
    int64_t minActive = 1;
    int64_t latents = 0, alive = 0, dead = 0;  // dead: never active; alive: active on >= minActive rows
    std::vector<int64_t> pure;                 // per attribute: alive latents at or above the threshold
    std::vector<int64_t> values, covered;      // per attribute: its values; those some pure latent has as best value
    std::vector<double> majority;  // per attribute: share of its most frequent value (a latent firing at random)
    at::Tensor activeCount;        // [W] int64: rows where each latent is active
    at::Tensor precision;          // [W, A] float64: best value's precision (0 for latents not alive)
    std::vector<std::vector<std::string>> bestValue;  // [W][A]
};

// latents [N, W] (any float type); labels: attribute -> one value per row (N each).
SaePurity saePurity(const at::Tensor& latents, const std::map<std::string, std::vector<std::string>>& labels,
                    double threshold = 0.9, int64_t minActive = 1);

// The `columns` of labels.csv (a "file" column relative to its folder) for each cached path,
// matched by the canonical path. InputError naming the file for a path it lacks or a missing column.
std::map<std::string, std::vector<std::string>> rowAttributes(const std::string& labelsCsv,
                                                              const std::vector<std::string>& paths,
                                                              const std::vector<std::string>& columns);

}  // namespace vitscope
