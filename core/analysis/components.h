#pragma once
// Components of a cached decomposition (heads, MLPs, the embedding) by name, and their terms
// in CLIP's joint space: as cached for CLIP models, through an aligner for the others.
#include "analysis/alignment.h"
#include "analysis/cache.h"

#include <optional>
#include <string>
#include <vector>

namespace vitscope {

struct Component {
    // PoolHead / PoolMlp: the attention-pooling head of SigLIP models ("pool.hK", "pool.mlp").
    // The pooling heads are another decomposition of the same output (TextSpan's level): sums
    // and ablations do not mix them with the encoder's components; pool.mlp belongs to both.
    // Conv: a MaxViT block's MBConv residual branch ("conv.K", K = block index in `layer`).
    enum class Kind { Head, Mlp, Embed, PoolHead, PoolMlp, Conv };
    Kind kind = Kind::Head;
    int layer = -1, head = -1;
    std::string name() const;  // "L.H" (zero-based layer and head), "mlp.L", "embed", "pool.hK", "pool.mlp"
    bool operator==(const Component& o) const { return kind == o.kind && layer == o.layer && head == o.head; }
};

// Every term of a decomposition [B, C, D] in the order the per-component aligners use: heads
// "L.H" (layer-major; only the heads each layer has), "mlp.L", MaxViT's "conv.K", "embed",
// "attn_bias" (all layers; Swin: with the patch mergings' offsets, MaxViT: with the shortcut
// convs' biases), "post_bias"; names filled.
at::Tensor stackedTerms(const Decomposition& dec, std::vector<std::string>* names);

class CacheView {
public:
    // `aligner` (may be null) maps the cache's D-dimensional terms into CLIP space.
    CacheView(const DatasetCache& cache, const Aligner* aligner);

    const DatasetCache& cache() const { return m_cache; }
    int64_t size() const { return m_cache.size(); }
    int64_t embedDim() const;  // of the terms as returned (CLIP space)
    bool aligned() const { return m_aligner != nullptr; }

    // "L.H", "mlp.L", "embed"; throws InputError naming the text ("unknown head '12.0': the
    // model has 4 layers x 4 heads; cached layers 0..3").
    Component parse(const std::string& name) const;
    std::vector<Component> parseList(const std::string& commaSeparated) const;
    std::vector<Component> heads() const;          // every cached head
    // Cached heads, every MLP, the embedding (and pool.mlp for SigLIP): with the bias terms, the
    // encoder-level decomposition of the output.
    std::vector<Component> allComponents() const;
    std::vector<Component> poolHeads() const;      // SigLIP's pooling heads; empty for other models

    // [R, E] float32 terms of a component for rows [start, start + count) (all rows by default).
    at::Tensor terms(const Component& c, int64_t start = 0, int64_t count = -1) const;
    // The stored fp16 terms of a component [R, D] (a strided view into the mapped cache, not
    // aligned), and the vector v such that <aligned term, t> = <stored term, v> (W_c t, or t).
    at::Tensor storedTerms(const Component& c, int64_t start = 0, int64_t count = -1) const;
    at::Tensor pullBack(const Component& c, const at::Tensor& t) const;
    // The model's output in CLIP space [R, E] (aligned: output W + b).
    at::Tensor output(int64_t start = 0, int64_t count = -1) const;

private:
    at::Tensor align(const at::Tensor& x, bool withBias) const;
    at::Tensor alignComponent(const at::Tensor& x, const std::string& name) const;
    const DatasetCache& m_cache;
    const Aligner* m_aligner;
};

}  // namespace vitscope
