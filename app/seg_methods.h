#pragma once
// The methods of `evaluate imagenet-seg`: the heatmap methods (analysis/heatmap.h) and `neurons`,
// second_order_lens's neuron segmentation (compute_segmentation.py): for a class, the K neurons of
// the described layers whose principal directions have the largest |<direction, class text>|, and
// per image the mean of their activations (after the non-linearity) at every patch token, upsampled
// bilinearly to the input. It reads `neurons describe` outputs (--describe DIR[,DIR...], one per
// layer; the reference uses layers 8, 9, 10 of ViT-B) and --neuron-count K (the reference's
// top_neurons, 200).
#include "analysis/heatmap.h"
#include "analysis/neurons.h"
#include "neuron_describe.h"

#include <optional>
#include <string>
#include <vector>

namespace vitscope::cli {

struct SegMethod {
    std::string name;
    std::optional<HeatmapMethod> heatmap;  // empty: the neurons method
};

// "all" (the model's heatmap methods, and neurons when `neurons` is asked for by --describe) or a
// comma list of method names. InputError: neurons without --describe, --describe without neurons.
std::vector<SegMethod> parseSegMethods(const std::string& list, const Model& model, bool describeGiven);
std::vector<HeatmapMethod> heatmapMethodsOf(const std::vector<SegMethod>& methods);

class NeuronSegMethod {
public:
    // table [C, E]: the class texts in the model's output space (the reference's classifier).
    NeuronSegMethod(const std::vector<std::string>& describe, int count, const Model& model,
                    const std::string& modelArg, const at::Tensor& table);
    // The map of class `chosen` for pixels [1, 3, S, S] (on the model's device); with `classMean`,
    // minus the mean of every class's map (the textspan protocol's reference).
    Heatmap map(const Model& model, const at::Tensor& pixels, int64_t chosen, bool classMean) const;
    const DescribedLayers& described() const { return m_described; }
    int count() const { return m_count; }

private:
    DescribedLayers m_described;
    int m_count;
    std::vector<std::vector<LayerNeuron>> m_perClass;
};

}  // namespace vitscope::cli
