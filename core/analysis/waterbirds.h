#pragma once
// The Waterbirds benchmark (issue 28): the dataset's two layouts, its four groups, and the two
// references' protocols, as one analysis the CLI and the GUI share.
//
//   const auto samples = readWaterbirds("waterbird_complete95_forest2water2", 2, &layout);
//   ... build a DatasetCache of the samples' images (textspan convention for Protocol::TextSpan)
//   const WaterbirdsResult r = runWaterbirds(view, classifier, labels, params, spurious, core);
//   r.before.worstGroup, r.after.averageGroup, ...
//
// Protocols (the reference code defines each):
// - textspan: clip_text_span compute_use_specific_heads.py --dataset binary_waterbirds.
//   "Baseline" is the model's output; "Replaced" mean-ablates the listed heads, every head of the
//   layers before the last 4 and every MLP with the embedding (its `mlps` array [b, l + 1, d]
//   holds the embedding first), means over the evaluated images; accuracies of the four
//   (y, place) groups and "full" (all images, so weighted by group size).
// - vit-decompose: vit-decompose zs_spur_correlation.py. Every component ranked by
//   variance_attributed(spurious words) - variance_attributed(bird words) over the evaluated
//   images; the top 10 replaced by their mean over the same images; worst group (min of the four)
//   and average group (their unweighted mean), before and after.
#include "analysis/ablation.h"
#include "analysis/components.h"
#include "analysis/property.h"

#include <string>
#include <vector>

namespace vitscope {

struct WaterbirdsSample {
    std::string path;  // absolute image path
    int y = 0;         // 0 landbird, 1 waterbird
    int place = 0;     // 0 land, 1 water
};

// The group-DRO layout (waterbird_complete95_forest2water2): ROOT/metadata.csv with the columns
// img_id, img_filename, y, split, place, place_filename; split 0 / 1 / 2 = train / val / test;
// images at ROOT/img_filename. Rows of `split` in file order. Throws FormatError naming the
// file and the problem (missing column, a value that is not 0 / 1 / 2, a missing image).
std::vector<WaterbirdsSample> readWaterbirdsMetadata(const std::string& root, int split);

// vit-decompose's archives (datasets/clean_waterbirds.py, an ImageFolder): ROOT/CLASS/NAME (files
// with ImageFolder's image extensions), the
// class index the folder's rank among the sorted subfolders (two of them), the place 1 when the
// file name's last '_' field before the extension is "water", else 0.
std::vector<WaterbirdsSample> readWaterbirdsFolders(const std::string& root);

// Either layout: metadata.csv when ROOT has one, else class folders. `layout` receives
// "group-dro metadata.csv (split N)" or "vit-decompose class folders".
std::vector<WaterbirdsSample> readWaterbirds(const std::string& root, int split, std::string* layout);

// The four groups' names, y-major: landbird_on_land, landbird_on_water, waterbird_on_land,
// waterbird_on_water; the textspan reference's keys "(y, place)" in the same order.
const std::vector<std::string>& waterbirdsGroupNames();
std::string waterbirdsGroup(int y, int place);

struct WaterbirdsAccuracy {
    std::vector<double> group;   // the four groups, in waterbirdsGroupNames() order (fractions)
    std::vector<int64_t> count;  // images per group
    double full = 0;             // all images (weighted by group size)
    double worstGroup = 0;       // min over the groups that have images
    double averageGroup = 0;     // unweighted mean over the groups that have images
};

// Accuracy of predicted classes [N] (int64) against the samples' y.
WaterbirdsAccuracy waterbirdsAccuracy(const at::Tensor& predicted, const std::vector<int>& y,
                                      const std::vector<int>& place);

enum class WaterbirdsProtocol { TextSpan, VitDecompose };
WaterbirdsProtocol parseWaterbirdsProtocol(const std::string& name);  // throws InputError naming --protocol
const char* waterbirdsProtocolName(WaterbirdsProtocol p);

struct WaterbirdsParams {
    WaterbirdsProtocol protocol = WaterbirdsProtocol::TextSpan;
    std::vector<Component> heads;  // textspan: the listed heads; empty: discovered (top `top` heads of the last layers)
    int top = 10;                  // vit-decompose's num_comps; the size of a discovered textspan list
    int lastLayers = 4;            // textspan: layers whose heads are kept (unless listed)
    void validate() const;         // throws InputError naming the field's flag
};

// The components textspan's "Replaced" mean-ablates: the listed heads, every head of the
// layers before the last `lastLayers` (headsIn(l) heads in layer l), every MLP and the embedding.
std::vector<Component> textspanReplacedComponents(int layers, const std::vector<int>& headsPerLayer,
                                                  const std::vector<Component>& listed, int lastLayers);

struct WaterbirdsResult {
    WaterbirdsAccuracy before, after;
    std::vector<Component> ablated;
    std::vector<ComponentScore>
        ranked;  // vit-decompose (and a discovered textspan list): the top components and their score differences
    bool headsDiscovered = false;
};

// Predicted class per row of outputs [N, E] (the class of the most similar prompt).
at::Tensor predictClasses(const at::Tensor& outputs, const ZeroShotClassifier& classifier);

// vit-decompose's classifier for non-CLIP models (helpers/model_utils.py get_head, called with
// epochs=10 by zs_spur_correlation.py): a linear layer with bias on the model's own
// representation (PyTorch's default initialisation), trained by cross-entropy with Adam (lr 1e-3,
// weight decay 1e-6 as L2) over batches of 64 in the given order.
struct LinearHead {
    at::Tensor weight, bias;                               // [C, D], [C]
    at::Tensor predict(const at::Tensor& features) const;  // [N, D] -> classes [N] int64
};
struct LinearHeadParams {
    int epochs = 10, batch = 64;
    double learningRate = 1e-3, weightDecay = 1e-6;
    uint64_t seed = 0;
};
LinearHead trainLinearHead(const at::Tensor& features, const std::vector<int>& labels, int classes,
                           const LinearHeadParams& params);

// The protocol on a cache of the evaluated images (rows in the labels' order). `spurious` and
// `core` [k, E] (unit rows) rank the components in CLIP space (through the view's aligner for a
// non-CLIP model: vit-decompose's clip_aligner_head). With `head` (non-CLIP models), predictions
// are the head's on the model's own representation (the stored, unaligned terms, ablated
// there); otherwise the zero-shot classifier's on the CLIP output.
WaterbirdsResult runWaterbirds(const CacheView& view, const ZeroShotClassifier& classifier, const std::vector<int>& y,
                               const std::vector<int>& place, const WaterbirdsParams& params,
                               const at::Tensor& spurious, const at::Tensor& core, const LinearHead* head = nullptr);

}  // namespace vitscope
