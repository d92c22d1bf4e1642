#pragma once
// Training small sparse autoencoders (SAEs) on a dataset cache's activations, written in
// vitscope's own SAE file through writeSae (analysis/sae.h: one safetensors, W_enc [d_in, d_sae],
// b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], metadata format "vitscope-sae"); read it
// back with loadSae, encode with encodeSae, reconstruct with decodeSae.
//
//   SaeTrainParams p;  p.kind = SaeKind::TopK;  p.k = 8;  p.width = 256;
//   at::Tensor x = saeActivations(cache, "output", nullptr, job);   // [N, D]
//   SaeTrainResult r = trainSae(x, p, job);                         // writes p.out
//
// Two objectives, each as its reference defines it:
// - topk (Gao et al. 2024, openai/sparse_autoencoder train.py): latents = ReLU(TopK_k((x - b_pre)
//   W_enc + b_enc)), recon = latents W_dec + b_pre; loss = MSE(recon, x) / mean((mean(x) - x)^2)
//   (the scale from the data) + auxk_coef * NMSE of the AuxK reconstruction (the top aux_k of the
//   dead latents' pre-activations, decoded, against x - recon.detach() + b_pre.detach()); a latent
//   is dead after dead_tokens / batch steps without a value > 1e-3 among its top-k. Adam (lr 1e-4,
//   eps 6.25e-10), no clipping; after backward the decoder rows are set to unit norm and their
//   gradient's parallel part removed. Init: encoder as nn.Linear (U(+-1/sqrt(D))), W_dec =
//   W_enc^T with unit rows, b_pre the geometric median of (up to 32,768) rows, W_enc divided by the
//   mean reconstruction norm of 256 random unit vectors around b_pre. Batches drop the last partial one.
// - matryoshka (Zaigrajew et al. 2025, WolodjaZ/MSAE train.py, MSAE_UW / MSAE_RW): data mean-
//   centred and scaled by sqrt(D) / mean ||x - mean||^2 (SAEDataset, target_norm None), one
//   pre-activation and several TopK-ReLU levels with nested k (its nesting_list: k, 2k, 4k, ...,
//   width); loss = sum_i w_i NMSE(recon_i, x) / sum w (NMSE: mean over rows of mean (r - x)^2 /
//   mean x^2); w uniform (UW) or reversed 1..n (RW: the smallest k weighs most). AdamW (lr 1e-4,
//   betas 0.9 / 0.999, eps 6.25e-10, no decay), gradient norm clipped at 1, learning rate constant
//   for 80% of the epochs then linearly to 0 (LinearDecayLR, per epoch); before each step the
//   decoder rows are scaled to unit norm (encoder columns and latent bias scaled the other way)
//   and the decoder gradient's parallel part removed. Init: kaiming-uniform decoder rows scaled
//   to norm 0.1, W_enc = W_dec^T, biases 0. The last partial batch is kept (DataLoader).
//   Beyond the reference, nesting = prefix: one TopK_k, and the levels decode the latents of the
//   nested prefixes `groups` of the dictionary (Bussmann et al. / Nabeshima's Matryoshka SAE).
//   The file folds the standardisation into the weights (W_enc * s, W_dec / s, b_dec = mean +
//   b_pre / s) and records k = the smallest level's k (as MSAE's file name does).
//
// Where this is not the references: the rows are read in epochs in a seeded order (Gao streams
// activations; MSAE shuffles with torch's generator); CPU float32 (no fp16 GradScaler, no EMA,
// which Gao's Config leaves off); the geometric median is Weiszfeld's iteration as geom_median
// runs it; the two Adam updates are written out (the same arithmetic as torch's single-tensor path).
//
// Deterministic for a seed (torch::manual_seed for the initialisation, a seeded permutation per
// epoch), checkpointed to OUT.ckpt every `checkpointEvery` steps and on cancellation (weights,
// Adam moments, dead-latent counters, step); a run with the same settings resumes from it and
// ends with the file an uninterrupted run writes.
#include "job.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

class DatasetCache;
struct Model;

enum class SaeKind { TopK, Matryoshka };
enum class SaeNesting { K, Prefix };  // matryoshka levels: nested k (MSAE) or dictionary prefixes

struct SaeTrainParams {
    std::string site = "output";  // "output" or "layer:L" (recorded in the file)
    SaeKind kind = SaeKind::TopK;
    int k = 32;       // TopK's k (matryoshka, nesting k: the first level's)
    int width = 256;  // d_sae
    int epochs = 50;  // passes over the rows
    int batch = 256;
    double lr = 1e-4;  // both references' defaults for these objectives
    uint64_t seed = 0;
    std::string normalize = "none";  // or "layer_norm" (per vector, before everything else)
    // topk
    int auxK = 256;  // clipped to the width
    double auxCoef = 1.0 / 32.0;
    int64_t deadTokens = 10'000'000;  // a latent is dead after deadTokens / batch idle steps
    // matryoshka
    SaeNesting nesting = SaeNesting::K;
    std::vector<int> groups;       // nested k's or prefix widths, ascending; empty: k, 2k, ..., width
    std::string weighting = "UW";  // UW (uniform) or RW (reversed 1..n)
    double clipGrad = 1.0;
    double decayTime = 0.8;
    // file and checkpointing
    std::string out;            // the SAE file; OUT.ckpt holds the checkpoint
    std::string model;          // recorded in the file
    int checkpointEvery = 200;  // steps; 0: only on cancellation
    bool resume = true;         // continue from OUT.ckpt when its settings match

    void validate() const;  // throws InputError naming the field
    std::string toString() const;
    // The levels the matryoshka loss sums over (validated params): nested k's or prefix widths.
    std::vector<int> levels() const;
};

struct SaeTrainResult {
    int64_t steps = 0, resumedAt = 0;  // resumedAt: the step the checkpoint held (0: fresh)
    double finalLoss = 0;
    double fvu = 0;    // fraction of variance unexplained over all rows
    int64_t dead = 0;  // latents never active over the rows
    double seconds = 0;
};

// Rows [N, D] float32 of a site: "output" is the cache's output.npy (the image embedding before
// L2 normalisation; caches built under the textspan convention are refused: theirs is
// normalised); "layer:L" is the residual stream after block L at the class token, which a cache
// does not hold: computed with `model` (required then) from the cache's images, in batches.
at::Tensor saeActivations(const DatasetCache& cache, const std::string& site, const Model* model,
                          const JobContext& job);

// Trains on rows [N, D] and writes params.out. Throws JobCancelled after checkpointing.
SaeTrainResult trainSae(const at::Tensor& rows, const SaeTrainParams& params, const JobContext& job);

// The matryoshka objective on one batch: sum_i w_i NMSE(recon_i, x) / sum w, recon_i =
// latents_i W_dec + b_pre with latents_i = ReLU(TopK_{levels[i]}(pre)) (nesting k) or
// ReLU(TopK_k(pre)) restricted to its first levels[i] latents (nesting prefix).
at::Tensor matryoshkaLoss(const at::Tensor& x, const at::Tensor& pre, const at::Tensor& wDec, const at::Tensor& bPre,
                          const SaeTrainParams& params);

}  // namespace vitscope
