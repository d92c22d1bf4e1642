#pragma once
// What the cache analyses and the heatmaps need open together, for the CLI and the GUI alike:
// a dataset cache with its view (through an aligner for non-CLIP models) and the CLIP model
// whose text encoder describes it; or an image model with the text side for heatmaps.
#include "analysis/alignment.h"
#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/heatmap.h"
#include "analysis/text_embed.h"
#include "model/model.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vitscope {

// Loads a model, moves it to `device` ("cpu", "cuda" or "auto") and puts it in `precision`
// (model/precision.h; empty: defaultPrecision(), the CLI's --precision); `tokenizer` overrides the
// tokenizer found beside it. A precision the device lacks: InputError naming the device.
Model openModelOn(const std::string& spec, const std::string& device, const std::string& tokenizer = {},
                  const std::string& checkpointKey = {}, const std::string& precision = {});

struct CacheSession {
    std::unique_ptr<DatasetCache> cache;
    std::optional<Aligner> aligner;
    std::unique_ptr<CacheView> view;
    std::unique_ptr<Model> clip;        // the text side (null when texts are not needed)
    std::unique_ptr<TextEncoder> text;
};

struct CacheSessionOptions {
    std::string cache;
    std::string aligner;    // for caches of non-CLIP models
    std::string clipModel;  // default: the cache's model, or the aligner's recorded CLIP
    std::string tokenizer;
    std::string device = "auto";
};

// Opens the cache (and aligner); with `needText` also the CLIP model, checked against the cache
// when no aligner is used. Throws InputError naming the cache for mismatches.
CacheSession openCacheSession(const CacheSessionOptions& o, bool needText);

struct HeatmapSession {
    std::unique_ptr<Model> model;
    std::unique_ptr<Model> clip;  // only for non-CLIP models
    std::optional<Aligner> aligner;
    std::unique_ptr<TextEncoder> text;  // null only when opened with needText false and no text side
    at::Tensor reference;  // [R, E] reference texts (may be undefined)
    at::Tensor redundant;  // [E] the empty prompt, CLIP Surgery's default redundancy
    at::Tensor legradEmpty;  // [E] "a photo of a", LeGrad's correction on SigLIP; undefined otherwise
    // Gradient methods' settings (HeatmapParams): Chefer's start layer (unset: the family's
    // reference default), Grad-CAM's target and label list [T, E] (undefined: the reference texts
    // stand in), LeGrad's layers, and the text logit's scale (CLIP's, for an aligned tower).
    std::optional<int> cheferStartLayer;
    GradCamTarget gradcamTarget = GradCamTarget::Auto;
    at::Tensor labels;
    int legradLayers = 2;
    double textLogitScale = 0;
    PooledMap pooledMap = PooledMap::Pool;  // SigLIP's decomposition map with no heads chosen
    // CLIP Surgery's texts through its prompt ensemble (resources/templates/surgery.txt: the
    // target, the empty-prompt redundancy and the reference texts), as its reference code does.
    bool surgeryEnsemble = false;
    at::Tensor surgeryReference;  // the reference texts through the ensemble (when on)

    HeatmapParams params(HeatmapMethod method, const std::vector<std::pair<int, int>>& heads, int surgeryBlocks) const;
    // The embeddings [T, E] a method uses for `texts`: the ensemble for Surgery when on, else plain.
    at::Tensor textsFor(HeatmapMethod method, const std::vector<std::string>& texts) const;
};

struct HeatmapSessionOptions {
    std::string model, tokenizer, device = "auto";
    std::string aligner, clip;  // non-CLIP models: the aligner and the CLIP model for texts
    // An aligner to use only if the model turns out not to be CLIP (the one a model directory
    // carries beside its weights); decided after the model is read, so it is read once.
    std::string alignerIfNotClip;
    std::string referenceTexts;  // a text list file
    std::string labels;          // a text list file: Grad-CAM's label list (its probability target)
    std::string checkpointKey;   // training checkpoints: the wrapper key to read
    std::string precision;       // the image model's (model/precision.h); empty: defaultPrecision()
    std::string surgeryEnsemble = "auto";  // auto (on for BPE tokenizers, off for word vocabularies), on, off
    // false: a non-CLIP model without an aligner opens with no text side (a classifier's class
    // logit as the gradient methods' score); `text` stays null then.
    bool needText = true;
};

HeatmapSession openHeatmapSession(const HeatmapSessionOptions& o);

// The aligner a non-CLIP model carries beside its weights: aligner.safetensors in the model's
// folder (or beside its file); empty when there is none.
std::string alignerBesideModel(const std::string& spec);

// "L.H,L.H" -> (layer, head) pairs checked against the model's shape; InputError otherwise.
// "L.H,..." -> (layer, head) pairs. With poolHeads > 0 (SigLIP), "pool.hK" is accepted and stands
// for the pair (layers, K): the pooling heads are the row after the last layer.
std::vector<std::pair<int, int>> parseHeadPairs(const std::string& list, int layers, int heads, int poolHeads = 0);

}  // namespace vitscope
