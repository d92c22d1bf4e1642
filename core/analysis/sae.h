#pragma once
// Sparse autoencoders (SAEs) on a vision model's activations, read as users have them, encoded
// exactly as each project's own code does, and the exact attribution of every active latent's
// pre-activation to the model's components and image tokens.
//
// Files (loadSae; one-line FormatError / InputError naming the file and what is missing):
// - vitscope's own: one .safetensors, W_enc [D, S], b_enc [S], W_dec [S, D], b_dec [D] and
//   __metadata__ format = "vitscope-sae", version, site, activation, k, normalize, objective,
//   groups, model, seed, steps (README, "Sparse autoencoders"; writeSae writes it).
// - ViT-Prisma (Prisma-Multimodal/ViT-Prisma, sae/sae.py): a folder with config.json and
//   weights.pt or n_images_N.pt (torch.save of the state dict W_enc, b_enc, W_dec, b_dec; the
//   largest N when there are several), config keys hook_point_layer, layer_subtype, d_in,
//   activation_fn_str ("relu", "topk" with activation_fn_kwargs.k), normalize_activations.
// - SAELens (cfg.json + sae_weights.safetensors): architecture "standard" / "topk" (k,
//   rescale_acts_by_decoder_norm, folded into W_enc and b_enc here) or pre-6.0 activation_fn_str,
//   apply_b_dec_to_input, normalize_activations, hook_name (metadata.hook_name from 6.0).
// - MSAE (WolodjaZ/MSAE, train.py): a .pth holding {"model": {pre_bias, encoder, latent_bias,
//   decoder}, "mean_center", "scaling_factor", "target_norm"}, its settings in its file name
//   ("{latents}_{inputs}_{activation}[_k][_RW|_UW]_{tied}_{normalize}_{soft_cap}_{data}.pth"),
//   encoded as its SAE class does: (x - mean_center) * scaling_factor, then the model's encode.
//
// Hook points (Prisma / SAELens names) map to vitscope's sites: blocks.L.hook_resid_post ->
// "layer:L" (the residual stream after block L at the class token), blocks.L.hook_resid_pre ->
// "layer:L-1" (L >= 1), hook_post_head_pre_normalize -> "output" (the image embedding before L2
// normalisation, Decomposition::output). Other hook points (hook_mlp_out, hook_resid_mid, ln
// outputs, attention patterns) have no exact vitscope equivalent and are refused.
//
// Encoding (every layout, each step as its project does it; encodeSae):
//   x <- (x - inputMean) * inputScale                 MSAE only (identity otherwise)
//   x <- normalise(x)                                  layer_norm: (x - mean) / (std_unbiased + 1e-5);
//                                                      constant_norm: x * sqrt(D) / |x|
//   pre = (x - b_dec) @ W_enc + b_enc                  b_dec subtracted unless SAELens says not
//   latents = TopK(pre, k) then ReLU (or ReLU(pre); MSAE "TopK": no ReLU), then MSAE's soft cap
//   softCap * tanh(latents / softCap) when it is positive.
//
// Exact attribution (attributeSae). With the normalisation's statistics frozen for each image (as
// the decomposition freezes the model's norms), the pre-activation is affine in x: with
// s = inputScale * (1 / (std + 1e-5) | sqrt(D) / |x'| | 1) and P the centring x -> x - mean(x)
// under layer_norm (the identity otherwise),
//   pre_j = sum_c s P(t_c) . W_enc[:, j]  +  sae_bias_j,
//   sae_bias_j = b_enc_j - b_dec . W_enc[:, j] - s P(inputMean) . W_enc[:, j]
// for terms t_c summing to x (the decomposition's components). Each term is centred by its own
// mean (linear, like the exact convention); P(t) . w = t . P(w). Without MSAE's input mean the
// constant column is the b_enc - b_dec W_enc.
#include "model/forward.h"

#include <map>
#include <string>
#include <vector>

namespace vitscope {

class DatasetCache;

enum class SaeActivation { TopKReLU, TopK, ReLU };
enum class SaeNormalize { None, LayerNorm, ConstantNorm };
const char* saeActivationName(SaeActivation a);  // "topk" / "topk-no-relu" / "relu"
const char* saeNormalizeName(SaeNormalize n);    // "none" / "layer_norm" / "constant_norm"

struct SparseAutoencoder {
    std::string path;
    std::string layout;       // "vitscope", "prisma", "saelens", "msae"
    std::string hookName;     // as the file names it (Prisma / SAELens); empty otherwise
    int layer = -1;           // site "layer:L": L; -1 for "output"
    at::Tensor W_enc, b_enc;  // [D, S], [S]
    at::Tensor W_dec, b_dec;  // [S, D], [D]
    SaeActivation activation = SaeActivation::ReLU;
    int k = 0;  // TopK's k
    SaeNormalize normalize = SaeNormalize::None;
    bool subtractDecoderBias = true;
    at::Tensor inputMean;                         // [D] MSAE's mean_center; undefined otherwise
    double inputScale = 1.0;                      // MSAE's scaling_factor
    double softCap = 0.0;                         // MSAE's latent_soft_cap (0: none)
    std::string objective = "topk";               // vitscope files: "topk" / "matryoshka"
    std::vector<int64_t> groups;                  // Matryoshka prefix widths (vitscope files, MSAE nesting)
    std::map<std::string, std::string> metadata;  // vitscope files: every metadata entry

    int64_t dIn() const { return W_enc.size(0); }
    int64_t dSae() const { return W_enc.size(1); }
    bool atOutput() const { return layer < 0; }
    std::string site() const;      // "output" or "layer:L"
    std::string describe() const;  // one line: layout, site, widths, activation, normalisation
};

// "output" or "layer:L" -> the layer (-1 for output); throws InputError naming `where`.
int parseSaeSite(const std::string& site, const std::string& where);

// Detects the layout (above) of a file or folder and reads it. Throws IoError / FormatError /
// InputError naming the file: unknown layout, missing key, wrong shape, unmapped hook point.
SparseAutoencoder loadSae(const std::string& path);
// Writes vitscope's own format (sae.metadata is written too; the required keys from the fields).
void writeSae(const std::string& path, const SparseAutoencoder& sae);
// Checks the weights' shapes against each other (FormatError naming sae.path).
void validateSae(const SparseAutoencoder& sae);

struct SaeEncoding {
    at::Tensor pre;      // [B, S] what the activation reads
    at::Tensor latents;  // [B, S] after the activation (and soft cap)
};
// x [B, D] (any float type; computed in float32 on the SAE's device).
SaeEncoding encodeSae(const SparseAutoencoder& sae, const at::Tensor& x);
// The reconstruction of x [B, D] from its latents [B, S]: latents @ W_dec + b_dec, then the
// encoding's steps undone with x's statistics (as ViT-Prisma / SAELens / MSAE decode): layer_norm
// times x's std (without the 1e-5) plus its mean, constant_norm divided by sqrt(D) / |x|, MSAE's
// preprocessing by / inputScale + inputMean. [B, D] float32.
at::Tensor decodeSae(const SparseAutoencoder& sae, const at::Tensor& latents, const at::Tensor& x);

// The affine form of the pre-activation at x with the normalisation frozen: pre = s * P(x) @ W_enc
// + bias, per image.
struct SaeLinearForm {
    at::Tensor scale;  // [B] s
    bool centre = false;
    at::Tensor bias;  // [B, S] sae_bias
};
SaeLinearForm linearizeSae(const SparseAutoencoder& sae, const at::Tensor& x);

struct SaeAttribution {
    at::Tensor latents;      // [B, S]
    at::Tensor pre;          // [B, S]
    at::Tensor active;       // [B, R] int64: latent of each row, by activation (largest first); -1 past the count
    at::Tensor attribution;  // [B, R, C]: C - 1 components then sae_bias; zero rows past the count
    std::vector<std::string> components;  // C names, the last "sae_bias"
    double maxAbsError = 0;               // max |row sum - pre-activation| over active rows
};
// Active latents of x [B, D] (sum over C of terms [B, C, D]) with their pre-activations split
// over the terms. `names` names the C terms.
SaeAttribution attributeSae(const SparseAutoencoder& sae, const at::Tensor& terms,
                            const std::vector<std::string>& names, const at::Tensor& x);

// What an SAE's site reads from the model, decomposed: terms [B, C, D] summing to x [B, D].
// tokenHeads (tokens = true): the per-token head terms [B, L', H, N, D].
struct SaeSiteTerms {
    at::Tensor terms, x, tokenHeads;
    std::vector<std::string> names;
    double maxAbsError = 0;  // the decomposition's own sum check
};
// Site output: the exact decomposition (termsByComponent); site layer:L: decomposeResidual.
// Throws InputError when the SAE's width is not the site's.
SaeSiteTerms saeSiteTerms(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels,
                          bool tokens = false);
void checkSaeFitsModel(const Model& model, const SparseAutoencoder& sae);
// The whole attribution of images [B, 3, H, W].
SaeAttribution attributeSaeImages(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels);

// A latent's pre-activation split over image tokens: [B, N], the sum over layers and heads of
// the per-token head terms through s P(.) . W_enc[:, latent] (the heads' share of the
// pre-activation; embedding, biases and MLPs are not token-resolved).
at::Tensor saeLatentTokenMap(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels,
                             int64_t latent);
// The same for several latents per image (active [B, R] int64, -1 rows give zeros): [B, R, N],
// from one decomposition.
at::Tensor saeTokenMaps(const Model& model, const SparseAutoencoder& sae, const at::Tensor& pixels,
                        const at::Tensor& active);

// A latent's top images over a dataset cache (site output, exact-convention cache): the cached
// outputs encoded, the `count` rows with the largest activation (ties: lower row first).
struct SaeTopImages {
    std::vector<int64_t> rows;
    std::vector<float> values;
    std::vector<std::string> paths;
};
SaeTopImages topSaeImages(const DatasetCache& cache, const SparseAutoencoder& sae, int64_t latent, int count);

// MSAE's concept naming (sae_naming.py, compute_similarities with use_bias off): the decoder
// directions mapped back through the input preprocessing (W_dec[j] / inputScale + inputMean),
// their cosine similarity with each text embedding: [T, S] (MSAE's Concept_Interpreter matrix).
at::Tensor saeConceptSimilarity(const SparseAutoencoder& sae, const at::Tensor& textEmbeddings);
struct SaeLatentName {
    int64_t latent = 0;
    std::vector<int64_t> texts;  // best first
    std::vector<float> scores;
};
// Each latent's `top` texts by that similarity (the first is its name). latents empty: all.
std::vector<SaeLatentName> nameSaeLatents(const SparseAutoencoder& sae, const at::Tensor& textEmbeddings,
                                          const std::vector<int64_t>& latents, int top);

}  // namespace vitscope
