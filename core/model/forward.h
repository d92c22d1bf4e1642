#pragma once
// One forward pass for every family, and the exact decomposition of the image representation
// into embedding, per-layer / per-head (/ per-token) attention, attention-bias, MLP and final-bias
// terms (../shared/design.md, "Decomposition"). Only the class-token query row of attention is
// kept; per-token terms are formed only when asked for.
#include "model/model.h"

namespace vitscope {

// exact: vitscope's (each term centred by its own mean, biases their own terms); textspan: the
// TextSpan reference's (plain ViTs); vitdecompose: vit-decompose's (SriramB-98/vit-decompose,
// helpers/linear_decompose.py) for Swin and MaxViT (vit_decompose.h says what it computes).
enum class Convention { Exact, TextSpan, VitDecompose };
const char* conventionName(Convention c);
Convention parseConvention(const std::string& name);  // throws InputError
// "--from-block S,B" (vit-decompose's detach block: stage S, block B, zero-based); throws InputError.
void parseFromBlock(const std::string& text, int* stage, int* block);

struct VisionResult {
    at::Tensor output;  // [B, E]: CLIP image embedding (unnormalised) or classifier features (E = D)
    at::Tensor logits;  // [B, C] for classifiers with a head; undefined otherwise
    at::Tensor features;  // MaxViT: the head's pre-logits (tanh of a Linear of `output`); undefined otherwise
};

struct DecomposeOptions {
    bool tokens = false;  // keep per-token head terms [B, L, H, N, E] instead of [B, L, H, E]
    Convention convention = Convention::Exact;
    // vit-decompose only: its detach block (stage, block). Everything before it is one `init`
    // term (the residual entering that block); the reference's Swin-B runs use (2, 14), its
    // MaxViT-S runs (2, 3).
    int fromStage = 0, fromBlock = 0;
    // Attention-pooled models, with tokens = false: keep what per-token *scores* need instead of
    // the per-token terms (Decomposition::poolTokenFactors; pooledTokenScores), and the pooling
    // heads per token. Materialising the encoder's per-token terms through the pool costs about
    // one more forward; scores for one text direction cost little.
    bool tokenFactors = false;
};

// Attention-pooled models (SigLIP) have two exact decompositions of the same output:
// - TextSpan's, at the pooling head: output = sum over pooling heads p (and tokens t) of
//   poolHeads + poolBias + poolMlp (the MAP MLP stays one non-linear term, as in the reference);
// - through the encoder: with the final norm's per-token sigma and the pooling attention frozen,
//   the attention-pooling output is linear in every token's residual stream, so embed, heads,
//   attnBias, mlps are the encoder's writes through the frozen pool; postBias is the constant
//   (final-norm offset and value bias through the pool, plus the out-projection bias); poolMlp
//   completes the sum. Per-token head terms attribute to the source tokens (no class token: N
//   counts patch tokens only).
// What per-token scores of one Swin layer need (DecomposeOptions::tokenFactors): the block's
// window attention and values, and for every window position its token on the stage grid, its
// readout class and readout weight (forward_swin.cpp, "Readout").
struct SwinLayerFactors {
    at::Tensor attn;    // [B, W, H, w^2, w^2] (W windows)
    at::Tensor values;  // [B, W, H, w^2, dh] (value bias included)
    at::Tensor weight;  // [B, W * w^2] readout weight rho of each window position's token
    at::Tensor cls;     // [W * w^2] int64 readout class
    at::Tensor pos;     // [W * w^2] int64 token index on the stage grid (row-major)
    int stage = 0, gridH = 0, gridW = 0;  // the stage's grid
};

struct Decomposition {
    // [B, L, H, E] or [B, L, H, N, E]. Swin: H is the largest head count, the heads a layer lacks
    // are zero; N counts the first stage's patches (a stage-s term is spread evenly over the
    // 2^s x 2^s patches its token covers).
    at::Tensor heads;
    at::Tensor attnBias;  // [B, L, E]
    at::Tensor mlps;      // [B, L, E]
    at::Tensor embed;     // [B, E]
    at::Tensor postBias;  // [B, E]
    at::Tensor output;    // [B, E] the model's output (divided by its norm under textspan)
    at::Tensor logits;    // classifiers only
    double maxAbsError = 0;  // max |sum of terms - output| (both decompositions of pooled models)
    // vit-decompose: the terms sum to the reference walker's own value (maxAbsError), which misses
    // the model's output by this much: max over images of |sum of terms - output| / |output|.
    double outputMiss = 0;
    Convention convention = Convention::Exact;
    // vit-decompose: `embed` is the reference's `init` (the residual entering its detach block,
    // through the rest of the tower); layers before firstLayer and MBConvs before firstConv are
    // part of it (zero here, not components); no bias terms.
    int firstLayer = 0, firstConv = 0;
    // Attention-pooled models only (undefined otherwise).
    at::Tensor poolHeads;  // [B, P, E] or [B, P, N, E]
    at::Tensor poolBias;   // [B, E]
    at::Tensor poolMlp;    // [B, E]
    // DecomposeOptions::tokenFactors: per layer, r [B, P, H, N] (the pool's weights mixed through
    // the head's attention rows) and the head values [B, H, N, dh]; poolHeads is then per token.
    std::vector<at::Tensor> poolTokenMix, poolTokenValues;
    // Swin: the patch mergings' LayerNorm offsets through their Linear, [B, S - 1, E]
    // ("merge_bias.s" for stages s >= 1); MaxViT: each stage's downsampling shortcut conv's bias,
    // [B, S, E] ("shortcut_bias.s", zero where the width stays). Per layer the per-token score
    // factors (Swin and MaxViT).
    at::Tensor stageBias;
    std::string stageBiasName = "merge_bias";
    int stageBiasFirst = 1;
    // MaxViT: each block's MBConv residual branch [B, blocks, E] ("conv.k"; block k precedes the
    // attention units layersPerConv * k and the next).
    at::Tensor convs;
    int layersPerConv = 0;
    std::vector<SwinLayerFactors> swinFactors;
    std::vector<int> headCounts;  // heads of each layer when they differ (Swin); empty: all H
    int headsIn(int64_t layer) const {
        return headCounts.empty() ? static_cast<int>(heads.size(2)) : headCounts[static_cast<std::size_t>(layer)];
    }
    bool pooled() const { return poolHeads.defined(); }
};

// Every term of a decomposition as one array [B, C, E] summing over C to the output, with one
// stable name per component (`decompose` writes them as terms.npy + components.txt):
//   "embed", then per layer l: "l.h" for each head h, "attn_bias.l", "mlp.l"; then "post_bias";
//   attention-pooled models add "pool.mlp" (the MAP MLP); Swin adds "merge_bias.s" (stages s >= 1)
//   before "post_bias" and lists only the heads each layer has (Decomposition::headsIn).
//   Per-token heads are summed over tokens.
at::Tensor termsByComponent(const Decomposition& dec, std::vector<std::string>* names);
// Heads of every layer (VisionTower::headsIn), for termsByComponent.
std::vector<int> headsPerLayer(const VisionTower& v);
// The pooling head's level of an attention-pooled model [B, P + 2, E]: "pool.h0".., "pool.bias",
// "pool.mlp" (TextSpan's decomposition of SigLIP). Throws for models without a pool.
at::Tensor poolTermsByComponent(const Decomposition& dec, std::vector<std::string>* names);

// The model-only part of the decomposition, computed once per model and convention:
// G = C diag(gamma) P (exact: C centres over channels) or diag(gamma) P (textspan), and per
// layer the head maps F[l] = W_O[l]^T G as [H, dh, E] and the output-bias term b_O[l] G.
struct DecompositionMaps {
    at::Tensor G;                        // [D, E]
    at::Tensor P;                        // [D, E] (identity for classifiers)
    std::vector<at::Tensor> headMaps;    // L x [H, dh, E]
    std::vector<at::Tensor> biasTerms;   // L x [E]
    // Attention-pooled models: Mv = C diag(gamma) W_V^T of the pool as [D, P, dp], and per layer
    // Q[l] = W_O^l[:, h]^T Mv[:, p] as [H, P, dh, dp] (the encoder head's value to the pooling
    // head's value space).
    at::Tensor poolMv;
    std::vector<at::Tensor> poolQ;
    // Swin: per stage s the readout maps G_s [K_s, C_s, E], K_s = 4^(S-1-s) classes (forward_swin.cpp).
    std::vector<at::Tensor> swinG;
};
const DecompositionMaps& decompositionMaps(const Model& model, Convention convention);

// pixels [B, 3, Hpx, Wpx], normalised; sides must be multiples of the patch size (position
// embeddings are interpolated bicubically for sizes other than the checkpoint's).
VisionResult encodeImages(const Model& model, const at::Tensor& pixels);
Decomposition decomposeImages(const Model& model, const at::Tensor& pixels, const DecomposeOptions& options = {});

// How one image is decomposed for the GUI's views and the ledger: per-token head terms for plain
// ViTs; per-head terms and token factors for attention-pooled (SigLIP) and windowed (Swin,
// MaxViT) models, whose per-token terms would cost about one more forward (SigLIP) or 4^s times a
// stage's tokens (Swin).
DecomposeOptions imageDecomposeOptions(const Model& model);

// What the second-order effects of block `layer`'s MLP neurons need from one forward pass (plain
// ViTs with a class token; analysis/second_order.h): the block's MLP activations, and for every
// later block its class-token attention row and its first norm's statistics at every token.
struct NeuronTrace {
    int layer = 0;
    at::Tensor hidden;                  // [B, N, M] block `layer`'s MLP activations (after the non-linearity)
    std::vector<at::Tensor> attnRow;    // blocks layer+1.. : [B, H, N] class-token attention rows
    std::vector<at::Tensor> lnMean;     // blocks layer+1.. : [B, N] mean of the residual entering the block
    std::vector<at::Tensor> lnSigma;    // blocks layer+1.. : [B, N] sqrt(biased variance + eps) of it
    at::Tensor cls;                     // [B, D] final class-token residual
    VisionResult result;
};
NeuronTrace traceNeurons(const Model& model, const at::Tensor& pixels, int layer);

// The MLP activations (after the non-linearity) of the given blocks at every token, [B, N, M]
// each, in the order asked; the blocks after the last one asked for are not run. Plain ViTs.
std::vector<at::Tensor> mlpActivations(const Model& model, const at::Tensor& pixels, const std::vector<int>& layers);

// Everything token-level heatmaps need: the residual stream entering each block (and after the
// last) and every block's full attention.
struct ImageTrace {
    std::vector<at::Tensor> residuals;  // L + 1 x [B, N, D]
    std::vector<at::Tensor> attention;  // L x [B, H, N, N]
    at::Tensor poolAttention;           // [B, P, N]: the pooling probe's attention (SigLIP); undefined otherwise
    std::vector<at::Tensor> hidden;     // keepHidden: L x [B, N, M] MLP activations (after any register intervention)
    int gridH = 0, gridW = 0;
    int prefix = 0;  // tokens before the patch tokens (class, distillation, registers)
    int suffix = 0;  // test-time register tokens after the patch tokens
};
ImageTrace traceImages(const Model& model, const at::Tensor& pixels, bool keepHidden = false);

// The test-time-register intervention on one block's MLP activations hidden [B, N, M] (the last
// r.count tokens are the registers), as the reference's activate_on_registers does it per image:
// s = sign_max over every token and every neuron of `neurons` (int64 [k]; the larger in magnitude
// of the max and the min, the min on a tie); the registers get r.scale * s at those neurons, the
// tokens between the first and the registers get r.normalValues. Returns a new tensor.
at::Tensor activateOnRegisters(const at::Tensor& hidden, const at::Tensor& neurons, const TestTimeRegisters& r);
// The final norm and projection applied to every token of a residual [B, N, D] -> [B, N, E].
// Attention-pooled models: each token's feature is the output the pooling head would give if
// its probe attended to that token alone (value and output projections, then the MAP MLP).
at::Tensor finalTokens(const Model& model, const at::Tensor& residual);

// For gradient methods (analysis/gradient_maps.h), plain ViTs only:
// the residual entering block 0 [B, N, D];
at::Tensor embedImageTokens(const Model& model, const at::Tensor& pixels);
// one block on x [B, N, D], keeping its first norm's output [B, N, D] and attention probabilities
// [B, H, N, N]; with attentionLeaf the attention is a detached copy that requires grad, so the
// gradient of anything computed from the block's output with respect to it is the block's own;
struct BlockTaps {
    at::Tensor normed, attention;
    bool attentionLeaf = false;
};
at::Tensor runVisionBlock(const Model& model, int layer, const at::Tensor& x, BlockTaps* taps);
// the output (and classifier logits) from a final residual;
VisionResult outputsFromResidual(const Model& model, const at::Tensor& residual);
// SigLIP's attention pool on a residual (after the final norm, or on the residual itself as LeGrad
// pools intermediate layers), its probe attention [B, P, N] kept (a leaf with attentionLeaf).
at::Tensor pooledWithAttention(const Model& model, const at::Tensor& residual, bool attentionLeaf, bool finalNorm, at::Tensor* attention);

// The model's output from a final residual [B, N, D] -> [B, E]: the class token through the final
// norm and projection, or (SigLIP) the attention pool over every token.
at::Tensor pooledOutput(const Model& model, const at::Tensor& residual);

// Per-token scores [N] of encoder head (layer, head) of image `index` for a direction [E] in the
// model's output space: <per-token term, direction> for every source token, from the factors a
// decomposition with tokenFactors kept (equal to the materialised terms' scores).
at::Tensor pooledTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, int head,
                             const at::Tensor& direction);

// Swin: the last stage's tokens after the final norm [B, N, E] and that stage's grid (the
// features the output averages).
at::Tensor lastStageTokens(const Model& model, const at::Tensor& pixels, int* gridH, int* gridW);

// Swin: per-token scores [N] over the first stage's patches of head (layer, head) of image `index`
// for a direction [E], from a decomposition made with tokenFactors (equal to the scores of the
// materialised per-token terms).
at::Tensor swinTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, int head,
                           const at::Tensor& direction);
// Several heads of one layer at once, one direction each (directions [n, E]): [n, N].
// `projected`, when given, is readoutDirections(model, stage of the layer, directions).
at::Tensor swinTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, const std::vector<int>& heads,
                           const at::Tensor& directions, const at::Tensor& projected = at::Tensor());
// Stage s's readout maps applied to directions [n, E]: [K, C, n]. One read of the maps for the
// directions of every head of the stage (the maps are the large operand of per-token scores).
at::Tensor readoutDirections(const Model& model, int stage, const at::Tensor& directions);

// tokens [T, S] int64 -> text embeddings [T, E] (unnormalised). CLIP and SigLIP.
at::Tensor encodeTexts(const Model& model, const at::Tensor& tokens);

// Position embeddings for a grid of gh x gw patches: [posPrefix + gh*gw, D].
at::Tensor positionEmbeddings(const VisionTower& vision, int gh, int gw);

// LeGrad's input size (its README's LePreprocess(image_size=448)): the whole image squashed to
// size x size, the position embeddings resampled as timm's resample_abs_pos_embed (bicubic,
// antialias) does for its dynamic-size forward. Plain ViTs (CLIP, SigLIP, DeiT / DINO / timm);
// InputError for Swin / MaxViT and for a size that is not a multiple of the patch.
void setInputSize(Model& model, int size);

}  // namespace vitscope
