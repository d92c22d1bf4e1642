#pragma once
// Gradient-based heatmaps beside the decomposition (issue 16), each as its authors' code computes
// it, for plain ViTs (CLIP, SigLIP, supervised ViT / DeiT / DINO; Swin and MaxViT are refused):
//
// - Grad-CAM, the ViT adaptation pytorch-grad-cam documents: activations A = the last block's first
//   norm's output over the patch tokens (the class / prefix tokens dropped, as its reshape
//   transform does), weights = the score's gradient averaged over those tokens, map = ReLU(A w).
// - Chefer et al. 2021 (Transformer-MM-Explainability): R = I; for each layer from `startLayer`,
//   R += mean_heads(clamp(grad_A * A, min 0)) R, with grad_A the score's gradient w.r.t. the layer's
//   attention probabilities (one backward for every layer); the map is the class token's row of R
//   over the patch tokens. SigLIP (no class token): the pool's grad-weighted probe attention times R
//   (our extension; the reference defines none).
// - LeGrad (WalBouss/LeGrad): for each of the last `legradLayers` layers l, the image feature the
//   model would give from layer l's tokens (CLIP: final norm of the tokens' mean, projected; SigLIP:
//   the attention pool on the block output, without the final norm, as its code does), its cosine
//   with the text, and that cosine's gradient w.r.t. layer l's own attention (SigLIP: the pool's
//   attention on layer l); clamp(min 0), mean over heads and query rows, prefix columns dropped,
//   summed over layers, min-max normalised. SigLIP: its correction zeroes the patches where the
//   same map for an empty prompt ("a photo of a") exceeds 0.8 of its range, when that text is given.
//   Each layer's gradient is local to it, so one backward serves every layer.
//
// The score: the model's logit for the text (CLIP: logitScale x cosine of the output, mapped by the
// aligner for non-CLIP towers), or a classifier's logit for `classIndex`. All batched: images
// [B, 3, S, S] and one target per image, one backward per batch. Results [B, gh * gw] on the CPU.
#include "analysis/alignment.h"
#include "model/forward.h"

namespace vitscope {

struct GradientTarget {
    at::Tensor texts;         // [B, E] unit rows in the model's (aligned) output space; or
    int64_t classIndex = -1;  // a classifier's class (its logit is the score)
};

struct GradientMapParams {
    int cheferStartLayer = 0;     // Chefer: first layer entering R; -1 = the last only (the reference CLIP notebook's default)
    int legradLayers = 2;         // LeGrad: the last k layers (its wrapper's default layer_index -2)
    at::Tensor legradEmptyText;   // LeGrad on SigLIP: "a photo of a"'s unit embedding for the correction (undefined: none)
    double legradThreshold = 0.8; // LeGrad's correction threshold
};

at::Tensor gradCamScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const Aligner* aligner = nullptr);
at::Tensor cheferScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params = {},
                        const Aligner* aligner = nullptr);
at::Tensor legradScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params = {},
                        const Aligner* aligner = nullptr);

}  // namespace vitscope
