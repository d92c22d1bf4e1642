#pragma once
// Fitting an aligner on a folder of images: the whole of `vitscope-cli align`, shared with the
// GUI's "Fit an aligner for this model" (one function, two front ends).
#include "analysis/alignment.h"
#include "job.h"
#include "model/forward.h"
#include "model/model.h"

#include <string>
#include <vector>

namespace vitscope {

struct AlignerFitOptions {
    bool perComponent = true;  // per-component maps (default) or one shared ridge map
    double heldOut = 0.2;      // the fraction of the images (the last ones, in listImages order) held out
    int batch = 32;            // images decomposed at a time
    ComponentAlignParams params;
    // The terms the maps are fitted on: vitscope's exact convention, or (Swin, MaxViT)
    // vit-decompose's with its detach block (its own aligners map the components after it).
    DecomposeOptions decompose;
    void validate() const;     // throws InputError naming the setting
};

struct AlignerFit {
    Aligner aligner;  // its settings record the models, the held-out count and cosines
    int64_t trained = 0, heldOut = 0;
    double cosine = 0;        // held-out cosine to the CLIP embeddings of the fitted aligner
    double sharedCosine = 0;  // of the shared ridge map (the baseline, also when perComponent)
};

// `model` is decomposed and `clip` (a CLIP model) encodes the same images; both run on their own
// devices. Progress per batch under "decomposing images", then "fitting"; cancellable between
// batches (throws JobCancelled). `modelName` / `clipName` are what the aligner's record says.
AlignerFit fitAlignerOnImages(const Model& model, const std::string& modelName, const Model& clip, const std::string& clipName,
                              const std::vector<std::string>& images, const AlignerFitOptions& options, const JobContext& job);

}  // namespace vitscope
