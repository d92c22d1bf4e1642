#pragma once
// Token-importance heatmaps for a text over one image (design.md, "Heatmaps" and "CLIP Surgery"):
// the decomposition's per-token terms, CLIP Surgery, the baselines (raw patch-text similarity,
// last-layer class-token attention, attention rollout) and the gradient methods (Grad-CAM,
// Chefer et al. 2021, LeGrad: analysis/gradient_maps.h).
#include "analysis/alignment.h"
#include "analysis/components.h"
#include "analysis/gradient_maps.h"
#include "model/forward.h"

#include <opencv2/core.hpp>

namespace vitscope {

enum class HeatmapMethod { Decomposition, Surgery, Raw, Attention, Rollout, GradCam, Chefer, LeGrad };
const char* heatmapMethodName(HeatmapMethod m);
HeatmapMethod parseHeatmapMethod(const std::string& name);  // throws InputError
// One line on what a method computes and its reference (for --help and tooltips).
const char* heatmapMethodSummary(HeatmapMethod m);
std::vector<HeatmapMethod> allHeatmapMethods();
bool isGradientMethod(HeatmapMethod m);
// The methods a model defines: Swin and MaxViT have no class-token attention or plain blocks.
std::vector<HeatmapMethod> heatmapMethodsFor(const Model& model);

// An attention-pooled model's (SigLIP's) decomposition map when no heads are chosen: Pool = the
// pooling heads' per-token terms summed, as clip_text_span's demo_siglip.ipynb draws them
// (attention_records of compute_siglip.py's PRSHook, i.e. 'pooling_head.attention.out.post', at
// the text); Encoder = every encoder head's per-token terms through the frozen pool (our level).
enum class PooledMap { Pool, Encoder };
const char* pooledMapName(PooledMap m);
PooledMap parsePooledMap(const std::string& name);  // throws InputError

struct HeatmapParams {
    HeatmapMethod method = HeatmapMethod::Decomposition;
    // Decomposition: heads / MLPs to sum (empty: every head of every layer). Names as in
    // components.h ("L.H", "mlp.L" are accepted; MLP terms have no token split and are ignored).
    std::vector<std::pair<int, int>> heads;  // (layer, head)
    PooledMap pooledMap = PooledMap::Pool;   // SigLIP, no heads chosen: which level's heads are summed
    at::Tensor referenceTexts;               // [R, E] unit rows, optional: subtract their mean score
    int surgeryBlocks = 6;                   // CLIP Surgery: the last k blocks (clamped to the model)
    at::Tensor redundantText;                // [E] Surgery with one text: the empty prompt's embedding
    // Gradient methods (gradient_maps.h, GradientMapParams): Chefer's first layer (-1: the last
    // only; unset: the family's reference default, defaultCheferStartLayer), Grad-CAM's target,
    // LeGrad's last k layers, LeGrad's empty prompt on SigLIP ("a photo of a", unit [E]; undefined:
    // no correction).
    std::optional<int> cheferStartLayer;
    GradCamTarget gradcamTarget = GradCamTarget::Auto;
    int legradLayers = 2;
    at::Tensor legradEmptyText;
    // Grad-CAM's label list [T, E] for its probability target; undefined: referenceTexts stand in.
    at::Tensor labels;
    // A classifier's class as the gradient methods' score (-1: the text); the text may then be undefined.
    int64_t classIndex = -1;
    double textLogitScale = 0;  // Grad-CAM's probability target: the logits' scale (0: the model's own; CLIP's for an aligned tower)

    GradientMapParams gradientParams() const;
};

struct Heatmap {
    at::Tensor patches;  // [gh, gw] float32 raw scores (higher = more of the text)
    at::Tensor pixels;   // [S, S] bilinear upsampling of `patches` to the model's input (gradient
                         // methods: min-max normalised after upsampling where the reference does)
    at::Tensor registerScores;  // [K] the test-time register tokens' scores, kept out of the map; undefined without
};

// pixels [1, 3, S, S] preprocessed; text [E] unit-norm in the model's (aligned) output space.
// `aligner` maps a non-CLIP model's terms into CLIP space. `text` may be undefined for the
// attention maps and for a gradient method given params.classIndex.
Heatmap computeHeatmap(const Model& model, const at::Tensor& pixels, const at::Tensor& text, const HeatmapParams& params,
                       const Aligner* aligner = nullptr);

// The decomposition method's per-token scores [N] from one image's per-token head terms heads
// [L, H, N, E] (DecomposeOptions::tokens): sum over params.heads of <term, text - mean(reference)>;
// every head when params.heads is empty.
at::Tensor decompositionTokenScores(const at::Tensor& heads, const at::Tensor& text, const HeatmapParams& params,
                                    const Aligner* aligner = nullptr);
// The same for an attention-pooled model (SigLIP) from a decomposition made with tokenFactors:
// encoder heads from the kept factors (pooledTokenScores), pooling heads (row L, "pool.hK") from
// their per-token terms; when params.heads is empty, every pooling head (params.pooledMap Pool,
// the default) or every encoder head (Encoder).
at::Tensor pooledDecompositionTokenScores(const Model& model, const Decomposition& dec, const at::Tensor& text,
                                          const HeatmapParams& params, const Aligner* aligner = nullptr);
// The same for a Swin model from a decomposition made with tokenFactors: scores over the first
// stage's patches (swinTokenScores); every head of every layer when params.heads is empty.
at::Tensor hierarchicalDecompositionTokenScores(const Model& model, const Decomposition& dec, const at::Tensor& text,
                                               const HeatmapParams& params, const Aligner* aligner = nullptr);
// The decomposition method's per-token scores for any family, from one image's decomposition as
// imageDecomposeOptions makes it (per-token terms; SigLIP's and Swin's token factors): the one
// dispatch that computeHeatmap and the GUI's explorer share.
at::Tensor decompositionScoresFor(const Model& model, const Decomposition& dec, const at::Tensor& text, const HeatmapParams& params,
                                  const Aligner* aligner = nullptr);
// Token scores [prefix + gh * gw + suffix] -> the patch map and its bilinear upsampling to height x
// width (the suffix: test-time register tokens, left out of the map).
Heatmap heatmapFromTokenScores(const at::Tensor& scores, int prefix, int gridH, int gridW, int64_t height, int64_t width, int suffix = 0);

enum class Colormap { Viridis, Inferno, Jet, Turbo };
Colormap parseColormap(const std::string& name);  // throws InputError
// The crop (8-bit RGB) with the map blended on top and a colorbar with the min / max values at
// the right; `scale` enlarges small inputs (e.g. 64 px) for legibility. Returns 8-bit BGR.
cv::Mat renderOverlay(const cv::Mat& cropRgb, const at::Tensor& map, double opacity, Colormap colormap, int scale,
                      const std::string& title);

}  // namespace vitscope
