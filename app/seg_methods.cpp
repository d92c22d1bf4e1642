#include "seg_methods.h"

#include "error.h"

#include <sstream>

namespace vitscope::cli {

namespace {

const char* kNeurons = "neurons";

}  // namespace

std::vector<SegMethod> parseSegMethods(const std::string& list, const Model& model, bool describeGiven) {
    std::vector<SegMethod> methods;
    if (list == "all") {
        for (HeatmapMethod m : heatmapMethodsFor(model)) methods.push_back({heatmapMethodName(m), m});
        if (describeGiven) methods.push_back({kNeurons, std::nullopt});
    } else {
        std::stringstream ss(list);
        std::string m;
        while (std::getline(ss, m, ','))
            methods.push_back(m == kNeurons ? SegMethod{kNeurons, std::nullopt} : SegMethod{m, parseHeatmapMethod(m)});
    }
    bool neurons = false;
    for (const SegMethod& m : methods) neurons = neurons || !m.heatmap;
    if (neurons && !describeGiven)
        throw InputError(
            "--methods neurons",
            "needs --describe DIR[,DIR...]: the neurons describe outputs of the layers whose neurons map the class");
    if (!neurons && describeGiven)
        throw InputError("--describe", "is read by the neurons method only (add neurons to --methods)");
    return methods;
}

std::vector<HeatmapMethod> heatmapMethodsOf(const std::vector<SegMethod>& methods) {
    std::vector<HeatmapMethod> out;
    for (const SegMethod& m : methods)
        if (m.heatmap) out.push_back(*m.heatmap);
    return out;
}

NeuronSegMethod::NeuronSegMethod(const std::vector<std::string>& describe, int count, const Model& model,
                                 const std::string& modelArg, const at::Tensor& table)
    : m_described(readDescribedLayers(describe, model, modelArg)), m_count(count) {
    if (table.dim() != 2 || table.size(1) != model.vision.embedDim())
        throw InputError("--methods neurons",
                         "needs the class texts in the model's own output space (a CLIP model, no aligner)");
    int64_t total = 0;
    for (const at::Tensor& d : m_described.directions) total += d.size(0);
    if (count < 1 || count > total)
        throw InputError("--neuron-count " + std::to_string(count),
                         "must be between 1 and the " + std::to_string(total) + " neurons described");
    m_perClass = neuronsPerClass(m_described.layers, m_described.directions, table.to(at::kCPU, at::kFloat), count);
}

Heatmap NeuronSegMethod::map(const Model& model, const at::Tensor& pixels, int64_t chosen, bool classMean) const {
    if (chosen < 0 || chosen >= static_cast<int64_t>(m_perClass.size()))
        throw InputError("neurons method", "the chosen class is not in the table");
    at::Tensor patches;  // [gh, gw]
    if (classMean) {
        const at::Tensor maps = neuronActivationMaps(model, pixels, m_perClass)[0];  // [C, gh, gw]
        patches = maps[chosen] - maps.mean(0);
    } else {
        patches = neuronActivationMaps(model, pixels, {m_perClass[static_cast<std::size_t>(chosen)]})[0][0];
    }
    return heatmapFromTokenScores(patches.flatten(), 0, static_cast<int>(patches.size(0)),
                                  static_cast<int>(patches.size(1)), pixels.size(2), pixels.size(3));
}

}  // namespace vitscope::cli
