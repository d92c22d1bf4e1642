#pragma once
// What the second-order lens does with every neuron's effects over a dataset (second_order_lens):
// - compute_pcas.py: per neuron, centre its effects over the images, keep the top-k images by the
//   centred effect's norm, and take their first principal direction (no second centring), signed
//   so that more than k/2 of those images project positively (k: the requested top-k, as the
//   reference compares with top_k_pca // 2 even when fewer images exist);
// - compute_sparse_decomposition.py: each direction as a sparse combination of texts by
//   orthogonal matching pursuit (sklearn's SparseCoder, "omp", a fixed number of non-zero
//   coefficients) over a dictionary of text embeddings centred over the texts and with every
//   *column* (embedding dimension) scaled to norm `coefficient` (its np.linalg.norm(axis=0));
//   the texts listed by |coefficient|, largest first.
#include "job.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace vitscope {

struct NeuronDirections {
    at::Tensor directions;  // [M, E] unit principal directions
    at::Tensor topNorms;    // [M, k] the top-k centred norms, ascending (its np.sort(...)[-k:])
    at::Tensor topImages;   // [M, k] int64 their images, in the same order
    at::Tensor mean;        // [M, E] each neuron's mean effect over the images
};

// effects [N, M, E] (float32, may be a memory map of second-order's effects.npy): read in slices
// of neurons, so a dataset's tensor need not fit in memory. Cancellable (JobCancelled).
NeuronDirections neuronPrincipalDirections(const at::Tensor& effects, int topK, const JobContext& job = {});

// The reference's text dictionary: texts [T, E] centred over the texts, each column scaled to
// norm `coefficient`.
at::Tensor referenceTextDictionary(const at::Tensor& texts, double coefficient = 100.0);

// Orthogonal matching pursuit of every row of targets [M, E] over the rows of dictionary [T, E]
// (the atoms are used as they are, not normalised): `nonzero` steps of picking the atom with the
// largest |correlation| with the residual, then least squares on the atoms picked so far; a row
// whose residual is gone stops early (index -1 after that). float64 arithmetic.
struct SparseCodes {
    at::Tensor indices;  // [M, nonzero] int64 atom per step, in the order picked; -1 where a row stopped
    at::Tensor values;   // [M, nonzero] float64 their final coefficients
};
SparseCodes orthogonalMatchingPursuit(const at::Tensor& dictionary, const at::Tensor& targets, int nonzero);

// One row's texts: the `count` largest |coefficients|, largest first (the reference's json lists).
struct NeuronText {
    int64_t index = 0;
    double coefficient = 0;
    std::string text;
};
std::vector<NeuronText> topTexts(const SparseCodes& codes, int64_t row, const std::vector<std::string>& texts, int count);

}  // namespace vitscope
