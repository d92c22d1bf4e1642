#pragma once
// Linear maps from a non-CLIP model's representation into a CLIP model's image-embedding space.
// Two kinds (../shared/design.md, "CLIP-space alignment"): one shared map fitted in closed form
// (ridge least squares, the fast baseline), and per-component maps W_c with a shared bias, trained
// so that the normalised sum_c x_c W_c + b matches the CLIP embedding (loss 1 - cosine plus a soft
// orthonormality penalty lambda * ||W_c^T W_c - I||_F^2).
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace vitscope {

struct Aligner {
    at::Tensor weight;  // [D, E]: the shared map (per-component aligners keep the ridge fit they start
    at::Tensor bias;    // [E]    from, for whole vectors such as patch tokens)
    std::map<std::string, std::string> settings;  // how it was made (stored with it)
    // Per-component maps [C, D, E], their bias [E] and the components' names ("L.H", "mlp.L",
    // "embed", "attn_bias", "post_bias"); undefined / empty for a shared aligner.
    at::Tensor componentWeights;
    at::Tensor componentBias;
    std::vector<std::string> components;

    // The components whose aligned terms each carry componentBias / n (n = their count), as the
    // reference's per-component Aligner adds its bias (vit-decompose helpers/model_utils.py:
    // x_c W_c + b / C); empty: the bias is kept whole, beside the terms (vitscope's procedure).
    // The reference procedure shares it over the components whose training terms are not all zero
    // (vitscope's always-zero bias slots under the vit-decompose convention carry none).
    std::vector<std::string> biasSharedBy;

    bool perComponent() const { return componentWeights.defined(); }
    // The bias share a component's aligned term carries [E] (zeros when it carries none).
    at::Tensor biasShare(const std::string& component) const;
    // The part of the bias that none of `components` carries (all of it for vitscope's aligners).
    at::Tensor biasLeft(const std::vector<std::string>& components) const;
    at::Tensor apply(const at::Tensor& x) const { return at::matmul(x, weight) + bias; }
    // The map of one component by name (the shared map for a shared aligner); throws InputError
    // when a per-component aligner has no map of that name.
    at::Tensor weightFor(const std::string& component) const;
};

// Least squares (ridge `lambda`) from features [N, D] to targets [N, E] (targets are
// normalised first, as the aligned output is compared by cosine).
Aligner fitSharedAligner(const at::Tensor& features, const at::Tensor& clipEmbeddings, double lambda = 1e-3);

// How the per-component maps are fitted (both minimise the same loss):
// - Vitscope: from the shared ridge map, full-batch Adam for `steps` steps at `learningRate`.
// - Reference: vit-decompose's helpers/model_utils.py align_with_clip with the settings its
//   get_clip_and_aligner passes: weights and bias drawn from N(0, 0.02^2), Adam (lr 3e-4, weight
//   decay 1e-6) on shuffled minibatches of 32 for 2 epochs, stopped after 50 batches without a new
//   lowest batch loss.
enum class AlignProcedure { Vitscope, Reference };
const char* alignProcedureName(AlignProcedure p);
AlignProcedure parseAlignProcedure(const std::string& name);  // throws InputError

struct ComponentAlignParams {
    AlignProcedure procedure = AlignProcedure::Vitscope;
    int steps = 300;             // Vitscope
    double learningRate = 1e-3;  // Vitscope
    // lambda of the reference's loss (vit-decompose, cos_sim_loss with orthonormalize = 1):
    // mean(1 - cos) + lambda * E * mean over C x E x E of (W_c^T W_c - I)^2.
    double orthoPenalty = 1.0;
    // Reference: its settings (get_clip_and_aligner) and the seed of its draws and shuffles.
    double referenceLearningRate = 3e-4, weightDecay = 1e-6, initScale = 0.02;
    int batch = 32, epochs = 2, patience = 50;
    uint64_t seed = 0;
    void validate() const;
};

// The orthonormality term of the loss for per-component maps [C, D, E]: E * mean((W^T W - I)^2).
double orthonormalityPenalty(const at::Tensor& componentWeights);

// terms [N, C, D] (the exact decomposition of each image: their sum is the model's output),
// names C component names, targets [N, E] CLIP embeddings. Starts from the shared ridge map.
Aligner fitComponentAligner(const at::Tensor& terms, const std::vector<std::string>& names, const at::Tensor& clipEmbeddings,
                            const ComponentAlignParams& params);
// sum_c terms[:, c] W_c + b for a per-component aligner (x W + b of the summed terms otherwise).
at::Tensor applyToTerms(const Aligner& aligner, const at::Tensor& terms);
// One component's term [E or D] in CLIP space: through the aligner's map of that component (as
// it is without an aligner), on the CPU in float.
at::Tensor alignedTerm(const at::Tensor& term, const std::string& component, const Aligner* aligner);
// Whether a component's term can be shown in CLIP space: a per-component aligner maps the
// encoder's components only, not SigLIP's pooling heads (another decomposition).
bool alignerMaps(const Aligner* aligner, const std::string& component);

double meanCosine(const at::Tensor& a, const at::Tensor& b);

void saveAligner(const Aligner& aligner, const std::string& path);
Aligner loadAligner(const std::string& path);  // validates shapes; throws FormatError naming the file

}  // namespace vitscope
