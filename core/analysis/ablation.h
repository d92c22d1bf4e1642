#pragma once
// Mean-ablation of components with instant accuracy (design.md, "Ablation"): each chosen term is
// replaced by its mean over a reference split (never the scored one), the output is recomputed
// by summation, and zero-shot accuracy and per-group accuracy are reported before and after.
#include "analysis/components.h"
#include "analysis/property.h"

#include <map>
#include <string>
#include <vector>

namespace vitscope {

// Zero-shot classifier: prompts [P, E] (unit rows), each voting for class promptClass[p]; an
// image's predicted class is that of its most similar prompt.
struct ZeroShotClassifier {
    at::Tensor prompts;
    std::vector<int> promptClass;
};

// Ground truth of the scored cache's rows.
struct RowLabels {
    std::vector<int> label;        // class per row
    std::vector<std::string> group;  // group key per row ("" when groups are not used)
};

struct AccuracyReport {
    double accuracy = 0;
    std::map<std::string, double> groupAccuracy;
    std::map<std::string, int64_t> groupCount;
    double worstGroup = 0;  // lowest group accuracy (= accuracy without groups)
    std::string worstGroupName;
};

struct AblationResult {
    AccuracyReport before, after;
    std::vector<Component> ablated;
};

// Accuracy of the classifier on outputs [N, E].
AccuracyReport scoreOutputs(const at::Tensor& outputs, const ZeroShotClassifier& classifier, const RowLabels& labels);

// Ablates `components` of `scored` with means from `reference` (the same model's cache of
// another split). Throws InputError when the two caches come from different models.
AblationResult runAblation(const CacheView& scored, const CacheView& reference, const ZeroShotClassifier& classifier,
                           const RowLabels& labels, const std::vector<Component>& components);

// TextSpan's check of its descriptions, with the reference's protocol
// (compute_complete_text_set.py): every cached head of the layers before the earliest described
// one is mean-ablated, each described head is replaced by its mean plus its centred terms
// projected onto the span of its picks as TextSpan removed them (`bases[i]` [k, E] orthonormal,
// HeadTexts::basis), and the MLPs, embedding and biases are kept. Accuracy of the zero-shot
// classifier (a) as is, (b) with the earlier heads mean-ablated, (c) with the described heads
// also replaced by their text spans (the reference's figure), (d) with the described heads
// mean-ablated instead.
struct SpanAccuracy {
    double original = 0, earlierMeanAblated = 0, textSpan = 0, meanAblated = 0;
    int earlierHeads = 0;          // cached heads mean-ablated before the described layers
    int earlierLayersUncached = 0;  // earlier layers whose heads the cache does not hold (kept as they are)
};
SpanAccuracy textSpanAccuracy(const CacheView& view, const std::vector<Component>& components, const std::vector<at::Tensor>& bases,
                              const ZeroShotClassifier& classifier, const RowLabels& labels);

// Spurious-component discovery as Beyond CLIP (zs_spur_correlation.py): every component (heads,
// MLPs, embedding; heads only with `headsOnly`) ranked by score(spurious descriptions) -
// score(core descriptions), computed on `reference`; the top `k` returned with their differences.
std::vector<ComponentScore> discoverSpuriousComponents(const CacheView& reference, const at::Tensor& spurious, const at::Tensor& core,
                                                       int k, bool headsOnly = false);

}  // namespace vitscope
