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
#include "analysis/ordered_sum.h"
#include "analysis/second_order.h"
#include "model/model.h"
#include "job.h"

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <utility>
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

// The four arrays in `dir` (what `neurons describe` and `neurons summarise` write, and the GUI's
// neuron cache keeps): directions.npy, top_norms.npy, top_images.npy, mean.npy. Reading checks
// their shapes agree ([M, E], [M, k], [M, k] int64, [M, E]); FormatError naming `dir` otherwise.
void writeNeuronDirections(const std::string& dir, const NeuronDirections& d);
NeuronDirections readNeuronDirections(const std::string& dir);

// The same summary without the [N, M, E] tensor: the effects arrive a batch at a time in two
// passes over the images (the first for each neuron's mean, the second for its top-k centred
// effects), and finish() gives what neuronPrincipalDirections gives on the whole tensor (the mean
// accumulated in float64). Holds M x k x E floats of top effects (ViT-B/16, k = 100: 629 MB).
// save() / restore() keep the state between runs (a safetensors file), so a cancelled build
// resumes where it stopped.
//
// Shards: a builder of a part [from, to) of the images (from a multiple of kChunk) runs pass 1 on
// its images and then waits for the mean of all of them (meanOf every part's sums(), in image
// order; setMean), runs pass 2 on its images, and absorb() joins finished parts in image order.
// The joined parts finish() to one builder's result bit for bit: the sums are OrderedSums of
// kChunk-image leaves (their rounding fixed by the images' positions), and the top-k is a total
// order (larger centred norm first, the earlier image among equal norms), kept in image order.
class NeuronSummaryBuilder {
public:
    static constexpr int64_t kChunk = 64;  // images per leaf of the sums; parts start at a multiple
    // A summary of all `images`, or of the part [from, to) of them (to -1: all).
    NeuronSummaryBuilder(int64_t images, int64_t neurons, int64_t dim, int topK, int64_t from = 0, int64_t to = -1);
    int pass() const { return m_pass; }       // 1: means, 2: top effects, 3: finished
    int64_t done() const { return m_done; }   // images of the part of the current pass added
    int64_t images() const { return m_images; }
    int64_t from() const { return m_from; }
    int64_t to() const { return m_to; }
    bool whole() const { return m_from == 0 && m_to == m_images; }
    // A part whose pass 1 is finished, before setMean.
    bool waitingForMean() const { return m_pass == 2 && !m_mean.defined(); }
    // effects [B, M, E] of the part's next B images of the current pass (pass 1 then pass 2, each in
    // image order from `from`); the pass ends after the part's last image. A whole builder starts
    // pass 2 by itself.
    void add(const at::Tensor& effects);
    const OrderedSum& sums() const { return m_sum; }  // pass 1's (closed once it ended)
    // The mean over `images` images of closed parts' sums, given in image order: [M, E] float32.
    static at::Tensor meanOf(const std::vector<OrderedSum>& parts, int64_t images);
    void setMean(const at::Tensor& mean);  // starts pass 2 of a waiting part
    // A finished part that starts where this finished one ends, summarised with the same mean.
    void absorb(const NeuronSummaryBuilder& later);
    NeuronDirections finish() const;  // after pass 2 of all images (one builder or joined parts)
    void save(const std::string& path, const std::string& key) const;
    // False (and nothing changed) when `path` does not exist; FormatError naming it when it holds
    // another build's state (its key, sizes or part differ) or is damaged.
    bool restore(const std::string& path, const std::string& key);
    // The pass-1 sums saved in `path` by a builder of this one's sizes, part and key, when that
    // builder's pass 1 is finished (false otherwise, and when there is no file); reads nothing else.
    bool finishedSums(const std::string& path, const std::string& key, OrderedSum& out) const;

private:
    std::string shapeText() const;
    int64_t size() const { return m_to - m_from; }
    void startPassTwo();

    int64_t m_images, m_neurons, m_dim, m_k;
    int m_topK;
    int64_t m_from, m_to;
    int m_pass = 1;
    int64_t m_done = 0;
    OrderedSum m_sum{kChunk};         // pass 1: [M, E] float64 per leaf
    at::Tensor m_mean;                // from pass 2: [M, E] float32
    at::Tensor m_topNorms;            // [M, k] float32, in image order (-inf until filled)
    at::Tensor m_topImages;           // [M, k] int64 (-1 until filled)
    at::Tensor m_topEffects;          // [M, k, E] float32 centred
};

// Both passes of a NeuronSummaryBuilder over `count` images (pixels(start, n) -> [n, 3, S, S]) through
// `lens`, `batch` images per forward; with a state path, the state is saved there every
// `saveEvery` images and when cancelled (then JobCancelled), and a saved state of the same key
// is resumed.
using NeuronPixelBatches = std::function<at::Tensor(int64_t start, int64_t n)>;
NeuronDirections summariseNeurons(const SecondOrderLens& lens, int64_t count, const NeuronPixelBatches& pixels, int topK, int batch,
                                  const JobContext& job, const std::string& statePath = {}, const std::string& key = {},
                                  int64_t saveEvery = 512);
// Feeds `b` its part's images (pixels(start, n), start counted over all images) until it finishes
// or waits for the mean: batches of at most `batch` that never straddle a multiple of kChunk, so
// every image has the same batch neighbours however the images are cut into parts (a batched
// matmul's rows may differ in the last bit with their neighbours). With a state path: saved every
// `saveEvery` images, when pass 1 ends, when a part (not the whole) finishes, and when cancelled
// (then JobCancelled).
void feedNeuronSummary(NeuronSummaryBuilder& b, const SecondOrderLens& lens, const NeuronPixelBatches& pixels, int batch,
                       const JobContext& job, const std::string& statePath = {}, const std::string& key = {}, int64_t saveEvery = 512);

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

// The representation the effects of one convention add up within: the reference's effects are in
// units of coefficient / |output| (the whole is coefficient * output / |output|); exact: the output.
at::Tensor neuronTotal(const at::Tensor& output, NeuronConvention convention, double coefficient);

// Beyond CLIP's property score (analysis/property.h propertyScore) of every neuron, with the images
// arriving a batch at a time: the neuron's effects and the total projected on the orthonormal basis
// of the descriptions' span, and per direction the correlation over the images from running sums
// (float64), averaged over the directions. Holds [M, r] sums, not the effects.
class NeuronPropertyScorer {
public:
    NeuronPropertyScorer(const at::Tensor& descriptions, int64_t neurons);
    // effects [B, M, E] and the same images' total [B, E].
    void add(const at::Tensor& effects, const at::Tensor& total);
    int64_t images() const { return m_images; }
    std::vector<std::pair<int64_t, double>> ranked() const;  // (neuron, score), best first

private:
    at::Tensor m_basis;          // [r, E]
    at::Tensor m_s, m_ss, m_st;  // [M, r] float64: sums of s, s^2, s * t
    at::Tensor m_t, m_tt;        // [r] float64
    int64_t m_images = 0;
};

// Every neuron's running sums of its effects and the total projected on a fixed orthonormal basis
// U [R, E] (float64: sum s, sum s s^T, sum s t^T per neuron; sum t, sum t t^T), over the images
// added. Any property whose descriptions lie in span(U) then gets NeuronPropertyScorer's scores
// from these sums alone: along a unit direction q = a U, sum (e.q)^2 = a^T (sum s s^T) a and so on.
// The images are read once for every such property (the GUI's ranking cache); the size does not
// grow with the images: 8 (M R + 2 M R^2 + R + R^2) bytes (bytes()).
class NeuronSpanStatistics {
public:
    NeuronSpanStatistics(const at::Tensor& basis, int64_t neurons);  // basis [R, E], orthonormal rows
    // The orthonormal basis of the span of `descriptions` [k, E] rows, in order, as far as it fits
    // `maxRank` (the rows after the first that would exceed it are left out): a ranking cache's U.
    static at::Tensor spanBasis(const at::Tensor& descriptions, int64_t maxRank);
    // The largest R whose sums for `neurons` fit `bytes`.
    static int64_t rankForBudget(int64_t neurons, int64_t bytes);
    void add(const at::Tensor& effects, const at::Tensor& total);  // [B, M, E], [B, E]
    // NeuronPropertyScorer's ranking for `descriptions` [k, E] (propertyBasis of them); empty when
    // their span leaves span(U) (a direction's part outside it over `tolerance`) or no image was added.
    std::vector<std::pair<int64_t, double>> ranked(const at::Tensor& descriptions, double tolerance = 1e-4) const;
    int64_t images() const { return m_images; }
    int64_t rank() const { return m_basis.size(0); }
    int64_t bytes() const;

private:
    at::Tensor m_basis;     // [R, E] float32
    at::Tensor m_s;         // [M, R] float64
    at::Tensor m_ss, m_st;  // [M, R, R] float64
    at::Tensor m_t, m_tt;   // [R], [R, R] float64
    int64_t m_images = 0;
};

// Every neuron's property score: effects [N, M, E] (may be memory-mapped) against the total [N, E]
// along the descriptions' span, through a NeuronPropertyScorer (what `neurons rank` and the GUI's
// ranking over a dataset compute). Returns (neuron, score), best first.
std::vector<std::pair<int64_t, double>> rankNeurons(const at::Tensor& effects, const at::Tensor& total, const at::Tensor& descriptions,
                                                    const JobContext& job = {});

// Every image's score for a direction [E] through a set of neurons: sum over them of
// <effect, direction> [N].
at::Tensor neuronDirectionScores(const at::Tensor& effects, const std::vector<int64_t>& neurons, const at::Tensor& direction);

// `neurons retrieve`'s two scores of every image for a text [E] (the GUI's neuron retrieval computes
// them a batch of images at a time): through the neurons (neuronDirectionScores) and global (the
// cosine of the output [N, E] with the text). float64 [N] each.
struct NeuronRetrievalScores {
    at::Tensor through, global;
};
NeuronRetrievalScores neuronRetrievalScores(const at::Tensor& effects, const at::Tensor& output,
                                            const std::vector<int64_t>& neurons, const at::Tensor& text);
// The `k` highest scores [N] as (image, score), highest first.
std::vector<std::pair<int64_t, double>> topScores(const at::Tensor& scores, int64_t k);

// One pass of `lens` over `count` images (pixels(start, n)), `batch` at a time: `add` gets each
// batch's first image and its effects. Cancellable (JobCancelled); progress reported as `stage`.
void forEachSecondOrderBatch(const SecondOrderLens& lens, int64_t count, const NeuronPixelBatches& pixels, int batch,
                             const JobContext& job, const std::string& stage,
                             const std::function<void(int64_t start, const SecondOrderEffects&)>& add);

// compute_ablations.py's table (second_order_lens), zero-shot top-1 over a classifier [C, E]:
// "baseline"; "all neurons mean-ablated" (every effect replaced by its training mean);
// "significant neurons mean-ablated" and "insignificant neurons mean-ablated" (significant: the
// centred effect's norm above the neuron's k-th largest training norm, topNorms[:, 0]);
// "neurons projected on their principal direction" (each centred effect replaced by its
// projection on the direction). vitscope adds "all neurons zero-ablated".
// The convention is the effects' (SecondOrderLens's, and the training statistics'):
// - reference (the default, compute_ablations.py's arithmetic): each image's representation is
//   coefficient * output / |output|, and the effects are in those units (the lens's coefficient);
// - exact: the representation is the output itself and the effects are in output units. What it
//   buys: the layer's effects then add up to exactly what its MLP writes (bias apart) into the
//   output through every later single head, so "zero-ablated" is the forward pass with that write
//   removed from those paths (attention and norm scales frozen), not the removal of the even shares
//   of biases and norm means that the reference's effects also carry.
class NeuronAblationMeter {
public:
    NeuronAblationMeter(const NeuronDirections& train, const at::Tensor& classifier, double coefficient = 100.0,
                        NeuronConvention convention = NeuronConvention::Reference);
    // effects [B, M, E] in the meter's convention (reference: with the same coefficient), output [B, E], labels [B].
    void add(const at::Tensor& effects, const at::Tensor& output, const at::Tensor& labels);
    // Each row's representation of each image: [B, 6, E] in the order of rowNames().
    at::Tensor representations(const at::Tensor& effects, const at::Tensor& output) const;
    // Whether each image is classified correctly under each row: [B, 6] bool (add() counts these).
    at::Tensor correct(const at::Tensor& effects, const at::Tensor& output, const at::Tensor& labels) const;
    static const std::vector<std::string>& rowNames();
    std::vector<std::pair<std::string, double>> top1() const;  // percent, in the order above
    int64_t images() const { return m_images; }
    NeuronConvention convention() const { return m_convention; }

private:
    at::Tensor m_mean, m_threshold, m_directions, m_classifier;
    double m_coefficient;
    NeuronConvention m_convention;
    std::vector<int64_t> m_correct;
    int64_t m_images = 0;
};

// second_order_lens's neuron segmentation (compute_segmentation.py): among the neurons of several
// layers, the `count` whose principal directions have the largest |<direction, text>| (its
// max_directions = pcas @ classifier, for one class column), and per image the mean of their
// activations at every patch token (unsigned, as its SwitchLogger records them) [B, gh, gw].
struct LayerNeuron {
    int layer = 0;
    int64_t neuron = 0;
    bool operator==(const LayerNeuron& o) const { return layer == o.layer && neuron == o.neuron; }
};
std::vector<LayerNeuron> neuronsForText(const std::vector<int>& layers, const std::vector<at::Tensor>& directions, const at::Tensor& text,
                                        int count);
at::Tensor neuronActivationMap(const Model& model, const at::Tensor& pixels, const std::vector<LayerNeuron>& neurons);
// Its max_per_class: neuronsForText for every class row of table [C, E] (image-independent).
std::vector<std::vector<LayerNeuron>> neuronsPerClass(const std::vector<int>& layers, const std::vector<at::Tensor>& directions,
                                                      const at::Tensor& table, int count);
// The maps of several neuron sets from one forward pass: [B, sets, gh, gw] (set s as
// neuronActivationMap of sets[s]).
at::Tensor neuronActivationMaps(const Model& model, const at::Tensor& pixels, const std::vector<std::vector<LayerNeuron>>& sets);

}  // namespace vitscope
