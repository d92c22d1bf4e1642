#pragma once
// UMAP's internals shared by umap.cpp and umap_spectral.cpp: the symmetric fuzzy graph as a
// list of directed edges (both directions of each pair, sorted by head then tail).
#include "analysis/projection.h"

#include <cstdint>
#include <random>
#include <vector>

namespace vitscope::umap_detail {

struct Graph {
    int64_t n = 0;
    std::vector<int32_t> head, tail;
    std::vector<double> weight;
};

// A seeded generator with our own uniform / normal draws (std's distributions differ between
// standard libraries; these do not).
class Random {
public:
    explicit Random(uint64_t seed) : m_engine(seed) {}
    double uniform() { return static_cast<double>(m_engine() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    double normal();
    uint64_t next() { return m_engine(); }

private:
    std::mt19937_64 m_engine;
};

// Spectral initialisation [N, dim] (umap-learn's spectral_layout): eigenvectors 1..dim of the
// normalised Laplacian; per connected component around a meta layout when the graph is not connected.
Eigen::MatrixXd spectralLayout(const PointMatrix& x, const Graph& g, int dim, Random& rng, const JobContext& job);

}  // namespace vitscope::umap_detail
