#pragma once
// What the neuron commands read from a `neurons describe` (or `neurons summarise`) output folder:
// its summary.json (the described second-order run, layer, convention) and, for several layers at
// once (neurons map, evaluate imagenet-seg --methods neurons), each layer's principal directions.
#include "model/model.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vitscope::cli {

// A `neurons describe` output's summary.json, its fields checked (FormatError naming the file).
struct DescribeSummary {
    nlohmann::json secondOrder;  // the described run's key
    std::string model, convention;
    int layer = -1;
    double coefficient = 100.0;
};
DescribeSummary readDescribeSummary(const std::string& dir);

// Describe outputs of one model, one per layer: the layers in the order given and their directions
// [M, E] (M the layer's neurons, E the model's output). One-line errors name the folder or file:
// another model's output, a layer given twice, directions of another shape.
struct DescribedLayers {
    std::vector<int> layers;
    std::vector<at::Tensor> directions;
    nlohmann::json key;  // per folder: its run's key and the SHA-256 of its directions.npy
};
DescribedLayers readDescribedLayers(const std::vector<std::string>& dirs, const Model& model,
                                    const std::string& modelArg);

}  // namespace vitscope::cli
