#pragma once
// Trains the bundled supervised ViT (timm layout) on the shapes world: one head of 16 logits,
// the first 8 classify the shape and the last 8 the color (cross-entropy on each). Then fits
// its alignment into a CLIP model's image-embedding space (closed-form shared map).
#include "shapes/world.h"

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace vitscope::shapes {

struct VitTrainParams {
    std::string outDir;
    // "vit" (timm ViT: patchSize, width, layers, heads) or "swin" (timm Swin: patchSize, width of
    // the first stage doubled per stage, swinDepths, swinHeads, window).
    std::string arch = "vit";
    std::vector<int> swinDepths{2, 2, 2}, swinHeads{2, 4, 8};
    int window = 4;
    std::string clipModel;  // for the alignment; empty skips it
    int imageSize = 64, patchSize = 8, width = 128, layers = 4, heads = 4;
    int batch = 256, steps = 600, warmupSteps = 50;
    double learningRate = 1e-3, weightDecay = 0.05;
    uint64_t seed = 2;
    int alignImages = 4000, heldOutImages = 1000;
    WorldParams world;
};

struct VitTrainResult {
    double shapeAccuracy = 0, colorAccuracy = 0;  // held-out
    double alignCosine = -2;                      // held-out mean cosine; -2 when not aligned
    double seconds = 0;
    bool cancelled = false;
};

// Accuracy is measured on held-out scenes of the same world (params.world).
VitTrainResult trainShapesVit(const VitTrainParams& params, const std::atomic<bool>& cancel,
                              const std::function<void(int step, double loss, double imagesPerSecond)>& progress);

// Held-out accuracy of a shapes ViT (16 logits: shape | color).
std::pair<double, double> evaluateShapesVit(const std::string& modelDir, int64_t count);

}  // namespace vitscope::shapes
