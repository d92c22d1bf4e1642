#pragma once
// Matching the heads of two models over the same images, in the shared CLIP space (each cache
// through its aligner when its model is not CLIP): linear CKA (Kornblith et al. 2019) of every
// head pair's contributions, the overlap of their TextSpan descriptions, and a one-to-one
// assignment (Hungarian) maximising the summed CKA.
//
//   const CacheView a(cacheA, alignerA), b(cacheB, alignerB);
//   HeadMatching m = matchHeads(a, b, HeadMatchParams{}, job);
//   // m.cka [heads of A, heads of B] (view.heads() order = components.txt order); m.assignment
#include "analysis/components.h"
#include "job.h"

#include <string>
#include <utility>
#include <vector>

namespace vitscope {

struct HeadMatchParams {
    // Images the CKA is computed over: all when 0 or when the caches hold fewer; otherwise this
    // many rows evenly spaced over the caches (deterministic).
    int64_t maxImages = 2000;
    void validate() const;  // throws InputError naming the field
    std::string toString() const;
};

struct HeadPair {
    int a = -1, b = -1;  // indices into HeadMatching::headsA / headsB
    double cka = 0;
};

struct HeadMatching {
    std::vector<Component> headsA, headsB;  // every cached head of each model, layer-major
    std::vector<double> cka;                // [headsA, headsB] row-major linear CKA
    std::vector<HeadPair> assignment;       // one-to-one, min(headsA, headsB) pairs, in A's order
    std::vector<int64_t> rowsA, rowsB;      // the cache rows used (the same images, in the same order)
    double ckaAt(std::size_t i, std::size_t j) const { return cka[i * headsB.size() + j]; }
};

// The rows of two caches that hold the same images, in A's order. Throws InputError naming both
// caches unless they hold exactly the same image paths (in any order).
std::pair<std::vector<int64_t>, std::vector<int64_t>> sharedRows(const DatasetCache& a, const DatasetCache& b);

// Linear CKA of every pair: a [HA, R, Ea], b [HB, R, Eb] (the same R rows; any widths); each
// head's terms centred over the rows. Returns [HA, HB] float64; a constant head scores 0.
at::Tensor linearCka(const at::Tensor& a, const at::Tensor& b, const JobContext& job);

// A one-to-one assignment maximising the summed score (rectangular allowed: min(rows, cols)
// pairs). score is row-major [rows, cols]; returns each row's column, -1 for a row left out.
// Shortest augmenting paths with potentials, O(rows^2 cols).
std::vector<int> maximumAssignment(const std::vector<double>& score, int rows, int cols);

// Jaccard overlap |A n B| / |A u B| of every pair of text lists ([a.size(), b.size()] row-major);
// NaN where either head has no texts.
std::vector<double> textOverlap(const std::vector<std::vector<std::string>>& a, const std::vector<std::vector<std::string>>& b);

HeadMatching matchHeads(const CacheView& a, const CacheView& b, const HeadMatchParams& params, const JobContext& job);

}  // namespace vitscope
