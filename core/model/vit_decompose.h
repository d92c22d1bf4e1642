#pragma once
// vit-decompose's convention for Swin and MaxViT (Convention::VitDecompose): the terms its walker
// (SriramB-98/vit-decompose, helpers/linear_decompose.py) gives as its experiments call it, i.e.
// with every block from the detach block on having its norm1 / norm2 (MaxViT: also its MBConv's
// pre_norm) inputs detached, heads expanded and tokens not. The walker's rules, as they act there:
// - a LayerNorm over n terms t_i of x: coeff = gamma / sqrt(unbiased var(x) + 1e-5) and
//   konst = beta - coeff * mean(x) per token; term i becomes coeff * t_i + konst / n. No term is
//   centred by its own mean; the variance is the unbiased one and eps is 1e-5 whatever the model's;
// - a Linear or conv with bias b over n terms: W t_i + b / n (Swin's mergings have no bias;
//   MaxViT's downsampling shortcut conv has one);
// - attention: the softmax output ends the walk (the forward's probabilities); the heads split at
//   the output projection, b_O / H on each; the values come from the block's detached input through
//   the LayerNorm rule above (one term), so head h writes
//   W_O[:, h] (A_h (W_V LN'(x) + b_V)_h) + b_O / H with LN' the unbiased-variance, 1e-5 norm;
// - a GELU ends the walk with its forward value: an MLP branch is one term, the model's own MLP
//   output, and MaxViT's MBConv branch (GELU, then the SE gate) is one term, its own output;
// - average pooling, reshapes, rolls and the mean over tokens act on every term.
// Components: `init` (the residual entering the detach block, true values), then per block from
// it on the heads and the MLP (MaxViT: the MBConv branch first). The output points: Swin, the mean
// over the last tokens of the final LayerNorm (pushed through by the rule above); MaxViT, the mean
// of the last tokens before the head's LayerNorm. The terms sum to the walker's own value, which
// misses the model's output (Decomposition::outputMiss) by the norms' unbiased variance.
#include "model/windows.h"

#include <functional>
#include <vector>

namespace vitscope::vitdecompose {

// Term fields over a token grid, [B, k, N, C] per part, in the order they were written.
class Fields {
public:
    void add(const at::Tensor& fields);  // [B, k, N, C]
    int64_t count() const { return m_count; }
    // Every part through f ([B, k, N, C] -> [B, k, N', C']).
    void map(const std::function<at::Tensor(const at::Tensor&)>& f);
    // A LayerNorm over the channels whose input, the sum of the terms, is x [B, N, C].
    void layerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
    // A Linear (or 1x1 conv) over the channels, w [C', C], its bias shared over the terms.
    void linear(const at::Tensor& w, const at::Tensor& bias);
    at::Tensor sum() const;            // [B, N, C]
    at::Tensor meanOverTokens() const;  // [B, K, C]

private:
    std::vector<at::Tensor> m_parts;
    int64_t m_count = 0;
};

// One windowed block's heads as the reference writes them, [B, H, N, C] on the token grid
// (rec.input and rec.attn of the forward).
at::Tensor headFields(const Block& b, const windows::BlockRecord& rec, const windows::Geometry& g, int64_t heads);

// Where each component's term is in the final [B, K, E] terms: the tower's layers and MBConv
// blocks, -1 before the detach block.
struct TermIndex {
    std::vector<int64_t> heads, mlps, convs;  // first head's term per layer; per layer; per block
};
// The Decomposition's arrays from the terms: embed = init (term 0), heads, mlps, convs; the bias
// arrays zero. `walker` [B, E] is the reference's own value of the output point, `output` the model's.
void fill(Decomposition& dec, const at::Tensor& terms, const TermIndex& index, const at::Tensor& walker, int64_t heads);

}  // namespace vitscope::vitdecompose
