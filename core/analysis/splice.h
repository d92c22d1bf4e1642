#pragma once
// SpLiCE: sparse non-negative decompositions of an image embedding over a text vocabulary
// (Bhalla et al., "Interpreting CLIP with Sparse Linear Concept Embeddings", NeurIPS 2024;
// reference: AI4LIFE-GROUP/SpLiCE, splice/splice.py + splice/model.py, solver `skl`).
//
//   const at::Tensor vocab = TextEncoder(clip).encode(readTextList("concepts.txt"));  // [V, E]
//   const at::Tensor mean = spliceMean(datasetEmbeddings);                             // [E]
//   const SpliceResult r = runSplice(vocab, mean, embeddings, SpliceParams{});        // [B, V], [B]
//
// What the reference computes, and so this:
// - dictionary D = normalize(normalize(T) - mean over the vocabulary of normalize(T)), T [V, E] the
//   concepts' plain text embeddings (no prompt template: the reference tokenizes each line as it is);
// - target y = normalize(normalize(x) - m), m [E] the mean of the L2-normalised embeddings of a
//   dataset (the reference ships one per backbone; spliceMean computes it);
// - weights w >= 0 minimising (1/(2E)) ||y - D^T w||^2 + alpha ||w||_1 with alpha = l1 / (2E): sklearn's
//   Lasso(alpha, fit_intercept=False, positive=True, max_iter=10000, tol=1e-6), i.e. its cyclic
//   coordinate descent from w = 0 with its duality-gap stopping rule, ported here (in double);
// - reconstruction cosine = cos(normalize(normalize(w D) + m), normalize(x)) (per image; the
//   reference sums it over the batch). w = 0 reconstructs normalize(m).
// The reference's alternative solver, ADMM (splice/admm.py: rho 5, tol 1e-6, 2000 iterations,
// random start), minimises the same objective scaled by 2E (||y - D^T w||^2 + l1 ||w||_1); it is
// SpliceSolver::Admm here, its (2 D D^T + rho I) solve done through the E x E Woodbury identity.
//
// Components (a head, an MLP, a head at one token, a neuron) are decomposed the same way with x =
// the component's term and m = the mean of that component's normalised term over a dataset: the
// analogue of the reference's image mean. A head's term has a large image-independent part (the
// direction it writes whatever the image); left in, it would dominate every decomposition and
// the texts would describe the head, not the image. Centring by the component's own mean keeps
// what varies with the image, as the reference's image mean does for the whole embedding.
#include "job.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vitscope {

enum class SpliceSolver { Skl, Admm };
const char* spliceSolverName(SpliceSolver s);
SpliceSolver parseSpliceSolver(const std::string& name);  // "skl" | "admm"; throws InputError

struct SpliceParams {
    double l1 = 0.01;  // the reference's SPLICE default l1_penalty (its examples use 0.15 to 0.35)
    SpliceSolver solver = SpliceSolver::Skl;
    int maxIter = 10000;     // skl: sklearn epochs (the reference's max_iter)
    double tol = 1e-6;       // skl: duality gap tolerance, relative to |y|^2; ADMM: residual tolerance
    double rho = 5.0;        // ADMM: the reference's rho
    int admmMaxIter = 2000;  // ADMM: the reference's max_iter
    uint64_t seed = 0;       // ADMM: seed of the random start (the reference draws randn)
    void validate() const;   // throws InputError naming the field
    std::string toString() const;
};

struct SpliceResult {
    at::Tensor weights;           // [B, V] float32, >= 0
    at::Tensor cosine;            // [B] float32
    std::vector<int> iterations;  // per image (skl: epochs; ADMM: the batch's iterations)
};

// D from the vocabulary's text embeddings [V, E]: normalise, centre over the vocabulary, normalise.
// [V, E] double.
at::Tensor spliceDictionary(const at::Tensor& vocabulary);
// The dataset mean of normalised embeddings [N, E] -> [E] float32.
at::Tensor spliceMean(const at::Tensor& embeddings);

// vocabulary [V, E] (raw text embeddings), mean [E], embeddings [B, E]. Images are solved in
// parallel (core/parallel.h); cancellation is checked between images.
SpliceResult runSplice(const at::Tensor& vocabulary, const at::Tensor& mean, const at::Tensor& embeddings,
                       const SpliceParams& params, const JobContext& job = {});

// sklearn's Lasso(positive=True, fit_intercept=False) by its coordinate descent, for one target:
// X = D^T (dictionary [V, E] double, contiguous), y [E] double; alpha as sklearn's. Returns w [V]
// and the epochs run in *epochs.
std::vector<double> lassoPositive(const at::Tensor& dictionary, const std::vector<double>& y, double alpha, int maxIter,
                                  double tol, int* epochs);

// The concepts of one row of weights, largest first, zero weights left out (at most `count`).
struct SpliceConcept {
    int64_t index = 0;
    std::string text;
    double weight = 0;
};
std::vector<SpliceConcept> spliceConcepts(const at::Tensor& weightsRow, const std::vector<std::string>& texts,
                                          int count);

struct Model;
struct Aligner;
// What SpLiCE decomposes for a batch of pixels [B, 3, H, W], in CLIP space [B, E] float32 on the
// CPU: the model's output (component empty) or one component's term under the exact convention:
// "embed", "L.H" (a head, summed over tokens), "L.H@T" (head L.H at source token T, 0 = class
// token), "mlp.L", "attn_bias.L", "post_bias" (termsByComponent's names), "neuron.L.N" (MLP
// neuron N of block L: its second-order effect, analysis/second_order.h, exact convention; plain
// CLIP ViTs). Non-CLIP models go through `aligner` (the output through the whole aligner, a
// component through its map); null for CLIP models. Throws InputError naming the component.
at::Tensor spliceTargetsFor(const Model& model, const Aligner* aligner, const at::Tensor& pixels,
                            const std::string& component);

}  // namespace vitscope
