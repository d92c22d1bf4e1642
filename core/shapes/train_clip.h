#pragma once
// Trains the bundled shapes-world CLIP model with LibTorch: image ViT + causal text transformer
// (word vocabulary), symmetric contrastive loss with a learnable temperature, AdamW, warm-up
// then cosine decay, fresh scenes every step, resumable checkpoints. The forward pass is the
// engine's own (model/forward.h), so the trained model is exactly what the engine decomposes.
#include "shapes/world.h"

#include <array>
#include <atomic>
#include <functional>
#include <string>

namespace vitscope::shapes {

struct ClipTrainParams {
    std::string outDir;
    int imageSize = 64, patchSize = 8, width = 128, layers = 4, heads = 4, embedDim = 64;
    int textWidth = 64, textLayers = 2, textHeads = 2, contextLength = 16;
    int batch = 256;
    int steps = 2000;
    int warmupSteps = 100;
    double learningRate = 1e-3;
    // Architecture fields above are ignored when resuming: the checkpoint's architecture wins.
    double weightDecay = 0.1;
    // Share of captions that name one attribute (the zero-shot prompt form); the rest name 2-6.
    double singleAttributeShare = 0.5;
    // Relative frequency of each attribute among single-attribute captions (shape, color,
    // texture, position, size, background): global statistics (color, background) are learned
    // first, so the slow attributes are named more often.
    std::array<double, 6> singleAttributeWeights{3, 1, 2, 3, 1, 0.5};
    // Curriculum: for this share of the steps, scenes have plain backgrounds (gray, dark) and
    // no distractor, so that finding the object is easy while shape and position are learned.
    double curriculumShare = 0.3;
    // Contrastive targets: every caption in the batch that is true of an image is a positive for
    // it (captions repeat within a batch in this small world); false gives CLIP's one-hot targets.
    bool duplicateAwareTargets = true;
    uint64_t seed = 1;
    int checkpointEvery = 100;
    int evalEvery = 250;
    int evalImages = 500;
    WorldParams world;

    void validate() const;
};

struct TrainProgress {
    int step = 0, steps = 0;
    double loss = 0;      // exponential moving average
    double stepLoss = 0;  // this step's loss
    double imagesPerSecond = 0, etaSeconds = 0, temperature = 0;
};

struct ClipTrainResult {
    int stepsRun = 0;
    bool cancelled = false;
    double finalLoss = 0;
    double seconds = 0;
};

// Resumes from OUT/checkpoint when present. `cancel` is checked every step; on cancellation
// a checkpoint is written before returning.
ClipTrainResult trainShapesClip(const ClipTrainParams& params, const std::atomic<bool>& cancel,
                                const std::function<void(const TrainProgress&)>& progress,
                                const std::function<void(const std::string&)>& log);

}  // namespace vitscope::shapes
