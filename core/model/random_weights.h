#pragma once
// Random-weight checkpoints in the layouts users have on disk (OpenAI / open_clip CLIP, Hugging
// Face CLIP, timm ViT / DINOv2, torchvision ViT). Used by tests (configurations other than the
// oracle's), by the benchmark (a random ViT-B/16) and by the offline demo. Every bias and norm
// parameter is perturbed so that no decomposition term is trivially zero.
#include "io/tensor_io.h"

#include <vector>

namespace vitscope {

enum class RandomLayout { OpenAiClip, HfClip, Timm, Dinov2, Torchvision, HfSiglip, TimmSiglip, OpenClipSiglip, TimmSwin, TorchvisionSwin,
                          TimmMaxVit, TorchvisionMaxVit };

struct RandomVitSpec {
    RandomLayout layout = RandomLayout::OpenAiClip;
    int imageSize = 64;
    int patchSize = 16;
    int width = 64;
    int layers = 2;
    int heads = 2;
    int mlpRatio = 4;
    int embedDim = 32;     // CLIP output dim
    int numClasses = 10;   // classifiers
    int registers = 0;     // DINOv2 layout
    bool layerScale = false;
    int textWidth = 32, textLayers = 1, textHeads = 1, contextLength = 77, vocabSize = 49408;
    // SigLIP layouts: the text tower's width must equal the image width (no projections on the
    // image side); HfSiglip / OpenClipSiglip carry a text tower, TimmSiglip is image-only.
    // Swin layouts: `width` is the first stage's, doubled at every stage; `window` in tokens.
    std::vector<int> swinDepths{2, 2}, swinHeads{2, 4};
    int window = 4;
    // MaxViT layouts: stem width, each stage's width and blocks, head width, partition size P.
    int stemWidth = 16, headDim = 16, partition = 2;
    std::vector<int> maxvitWidths{32, 64}, maxvitDepths{1, 2};
    uint64_t seed = 0;
    bool trainingInit = false;  // gains 1, biases 0, small weights: a starting point for training
};

StateDict randomVitStateDict(const RandomVitSpec& spec);

// The benchmarks' released sizes at 224 px, seed 1, with a one-layer text tower of width 64:
// CLIP ViT-B/16 (width 768, 12 layers, embed 512) or, `large`, ViT-L/14 (1024, 24, 768).
RandomVitSpec clipBenchSpec(bool large);

}  // namespace vitscope
