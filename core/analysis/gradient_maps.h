#pragma once
// Gradient-based heatmaps beside the decomposition (issue 16), each as its authors' code computes
// it, for plain ViTs (CLIP, SigLIP, supervised ViT / DeiT / DINO; Swin and MaxViT are refused):
//
// - Grad-CAM, the ViT adaptation pytorch-grad-cam documents: activations A = the last block's first
//   norm's output over the patch tokens (the class / prefix tokens dropped, as its reshape
//   transform does), weights = the score's gradient averaged over those tokens, map = ReLU(A w).
//   The score (GradCamTarget): its CLIP recipe (usage_examples/clip_example.py) scores the softmax
//   probability of the label over a label list; the text's logit is our option; a classifier's
//   class logit (ClassifierOutputTarget) for a class.
// - Chefer et al. 2021 (Transformer-MM-Explainability): R = I; for each layer from the start layer,
//   R += mean_heads(clamp(grad_A * A, min 0)) R, with grad_A the score's gradient w.r.t. the layer's
//   attention probabilities (one backward for every layer); the map is the class token's row of R
//   over the patch tokens. The start layer's default follows the reference notebook for the family
//   (defaultCheferStartLayer): CLIP_explainability.ipynb's interpret() uses the last layer only
//   (start_layer = -1) for CLIP; Transformer_MM_explainability_ViT.ipynb's generate_relevance()
//   every layer, with the class logit, for supervised ViTs. SigLIP (no class token): the pool's
//   grad-weighted probe attention times R (our extension; the reference defines none).
// - LeGrad (WalBouss/LeGrad): for each of the last `legradLayers` layers l, the image feature the
//   model would give from layer l's tokens (CLIP: final norm of the tokens' mean, projected; SigLIP:
//   the attention pool on the block output, without the final norm, as its code does), its cosine
//   with the text, and that cosine's gradient w.r.t. layer l's own attention (SigLIP: the pool's
//   attention on layer l); clamp(min 0), mean over heads and query rows, prefix columns dropped,
//   summed over layers, min-max normalised. SigLIP: its correction zeroes the patches where the
//   same map for an empty prompt ("a photo of a") exceeds 0.8 of its range, when that text is given.
//   Each layer's gradient is local to it, so one backward serves every layer.
//
// All batched: images [B, 3, S, S] and one target per image, one backward per batch. Results
// [B, gh * gw] on the CPU, min-max normalised per image. The references min-max the map after
// upsampling it to the image (gradientMapUpsampledMinMax says where): computeHeatmap does so.
#include "analysis/alignment.h"
#include "model/forward.h"

#include <optional>
#include <string>

namespace vitscope {

struct GradientTarget {
    at::Tensor texts;         // [B, E] unit rows in the model's (aligned) output space; or
    int64_t classIndex = -1;  // a classifier's class (its logit is the score)
    // Grad-CAM's probability target: the label list [T, E] (unit rows) the softmax runs over; a
    // text that is not one of them (within 1e-6) is prepended to them.
    at::Tensor labels;
    double logitScale = 0;  // the probability target's logit scale (0: the model's own; CLIP's for an aligned tower)
};

// Grad-CAM's score for a text: Auto = Probability where a label list is given, else Logit.
enum class GradCamTarget { Auto, Probability, Logit };
const char* gradCamTargetName(GradCamTarget t);
GradCamTarget parseGradCamTarget(const std::string& name);  // throws InputError

// Chefer's start layer when none is set: -1 (the last layer only) for CLIP-family models (CLIP,
// SigLIP), 0 (every layer) for supervised ViTs.
int defaultCheferStartLayer(const Model& model);

struct GradientMapParams {
    std::optional<int> cheferStartLayer;  // Chefer: first layer entering R; -1 = the last only; unset: defaultCheferStartLayer
    GradCamTarget gradcamTarget = GradCamTarget::Auto;
    int legradLayers = 2;         // LeGrad: the last k layers (its wrapper's default layer_index -2)
    at::Tensor legradEmptyText;   // LeGrad on SigLIP: "a photo of a"'s unit embedding for the correction (undefined: none)
    double legradThreshold = 0.8; // LeGrad's correction threshold

    // InputError naming the field when a value is out of range for `model` (layers).
    void validate(const Model& model) const;
    std::string toString() const;
};

// Whether the reference min-maxes the map after upsampling it (CLIP-style towers: Chefer's
// notebooks, pytorch-grad-cam's scale_cam_image, LeGrad's compute_legrad_clip) or upsamples the
// min-maxed patch map (LeGrad's compute_legrad_siglip).
bool gradientMapUpsampledMinMax(const Model& model, bool legrad);

at::Tensor gradCamScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params = {},
                         const Aligner* aligner = nullptr);
at::Tensor cheferScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params = {},
                        const Aligner* aligner = nullptr);
at::Tensor legradScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params = {},
                        const Aligner* aligner = nullptr);

}  // namespace vitscope
