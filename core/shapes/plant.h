#pragma once
// Planted, documented mechanisms in a shapes-world CLIP, so that the neuron and register tools
// (analysis/second_order.h, analysis/neurons.h, analysis/registers.h) have something to find that
// the world's ground truth (masks, labels) can check. Two MLP neurons of the image tower are
// rewritten (each replaces the block's least-used neuron; every other weight is kept):
//
// - register neuron (block registerLayer): its input weights are a ridge probe of the block's MLP
//   input (ln_2's output) for "plain background far from any object" (per patch: 0 on a patch that
//   touches an object, else min(distance to the nearest object pixel in patches, 4) / 4), its bias
//   puts the firing point at the probe's (1 - registerShare) quantile over the fitting scenes'
//   patches, times registerGain; its output weight is registerWrite times a zero-mean unit direction
//   whose keys every later head's mean query avoids (so the outliers are inert: the output barely
//   changes). Which tokens fire follows each image's content (a few background patches away from
//   the object); they become high-norm outlier tokens in the following blocks (Darcet et al.; Jiang
//   et al.'s "register neurons").
// - property neuron (block propertyLayer): its input weights are a ridge probe for "share of the
//   patch covered by a <propertyColor> object" (class token: 0), firing above propertyThreshold,
//   times propertyGain; its output weight w is chosen so that, through every later attention head
//   with LayerNorm statistics frozen (the second-order lens's paths), it reaches the output along
//   the text direction t("a <color> object") - mean over the world's text pool: least squares of
//   proj^T diag(g_post) C W_O^h W_V^h diag(g_1) C w on that direction for every later head h, with
//   rows asking the mean class-token query's key response q^h . W_K^h diag(g_1) C w to be 0 (so
//   the write barely moves the attention), C centring; scaled to |w| = propertyWrite.
//
//   shapes::PlantParams p;
//   shapes::PlantResult r = shapes::plantMechanisms(model, p);  // model changed in place
//   saveOpenClipModel(model, dir);  nlohmann::json j = shapes::plantRecord(r, p);
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace vitscope::shapes {

struct PlantParams {
    uint64_t seed = 2929;      // fitting scenes: generateScene(seed, 0..scenes-1)
    int64_t scenes = 2000;     // fitting scenes
    int batch = 250;           // scenes per forward
    double ridge = 1e-2;       // ridge strength, times the number of rows
    int registerLayer = 1;     // block of the register neuron
    double registerShare = 0.08;   // share of the fitting scenes' patch tokens where it fires
    double registerGain = 200;     // its input weights and bias: gain x (probe - threshold)
    double registerWrite = 12;     // |its output weight|
    int propertyLayer = 2;         // block of the property neuron (not the last)
    std::string propertyColor = "red";
    double propertyThreshold = 0.2;  // the probe's value (share of the patch covered) where it starts to fire
    double propertyGain = 20;
    double propertyWrite = 8;      // |its output weight|
    double keyPenalty = 10;        // weight of the key-response rows against the direction rows
    void validate(const Model& model) const;  // InputError naming the field's flag
    std::string toString() const;
};

struct PlantedNeuron {
    int layer = 0, neuron = 0;
    int replaced = 0;         // the neuron it replaces (the same index: the block's least-used one)
    double usage = 0;         // the replaced neuron's mean |activation| x |output weight| on the fitting scenes
    double threshold = 0;     // the probe value where it fires
    double probeCorrelation = 0;  // of the probe with its target over the fitting rows
    double firingShare = 0;   // share of the fitting scenes' patch tokens where the planted neuron's probe passes the threshold
    double precision = 0;     // of those, the share that meet the ground truth (register: no object pixel; property: the colour covers part of the patch)
};

struct PlantResult {
    PlantedNeuron registerNeuron, propertyNeuron;
    double directionCosine = 0;  // property: cosine of the summed later-head map of w with the text direction
};

// Changes `model` (a CLIP with a tokenizer, plain ViT) in place; deterministic for the params.
PlantResult plantMechanisms(Model& model, const PlantParams& params);

// planted.json: the params, the planted neurons (the ground truth the tests read) and the figures above.
nlohmann::json plantRecord(const PlantResult& result, const PlantParams& params);

}  // namespace vitscope::shapes
