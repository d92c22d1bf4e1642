#pragma once
// Windowed attention shared by the hierarchical towers (Swin's shifted windows, MaxViT's block
// and grid partitions) and the readout helpers of their decompositions (forward_swin.cpp,
// forward_maxvit.cpp).
#include "model/forward.h"
#include "model/model.h"

#include <vector>

namespace vitscope::windows {

// Window layout of one block's token grid: window position -> token (a shift's roll or a grid
// partition's stride included), and back.
struct Geometry {
    int gh = 0, gw = 0, w = 0, windows = 0;
    at::Tensor pos;   // [W * w^2] int64
    at::Tensor inv;   // [N] int64: token -> window position
    at::Tensor mask;  // [W, 1, w^2, w^2] shifted-window mask (-100 across regions); undefined without shift
    at::Tensor rel;   // [w^2, w^2] int64 index into a [(2w-1)^2, H] bias table; undefined: dense [H, w^2, w^2] bias
};

// Swin: w x w windows, rolled by half a window when `shifted` (not along a side the window covers).
Geometry shiftedWindows(int gh, int gw, int w, bool shifted, const at::Device& device);
// MaxViT: P x P blocks of neighbours (grid = false), or P x P tokens spaced gh / P apart (grid).
Geometry partition(int gh, int gw, int p, bool grid, const at::Device& device);

// What a decomposition keeps of one block.
struct BlockRecord {
    at::Tensor attn;    // [B, W, H, w^2, w^2]
    at::Tensor values;  // [B, W, H, w^2, dh]
    at::Tensor o;       // [B, W * w^2, C] head outputs before the output projection (window layout)
    at::Tensor mlp;     // [B, N, C]
    at::Tensor input;   // [B, N, C] the block's input (vit-decompose's head terms re-normalise it)
};

// One pre-norm block over windows: x [B, N, C] on the token grid. `bias`: Swin's table
// [(2w-1)^2, H] (g.rel set) or a dense [H, w^2, w^2] bias. `scale` multiplies q.
at::Tensor runBlock(const Block& b, const at::Tensor& bias, int heads, const Geometry& g, const Encoder& enc, double scale,
                    const at::Tensor& x, BlockRecord* rec);

at::Tensor activate(const at::Tensor& x, Activation act);

// The two-layer MLP fc2(act(fc1(x))) over x [..., D]. Without autograd on the CPU the activation
// runs in place, with `split` over row ranges on every core (parallel.h); QuickGELU as one SiLU
// pass: x sigmoid(1.702 x) = silu(1.702 x) / 1.702, the 1.702 taken into fc1's product (its
// alpha, and the bias scaled) and the 1 / 1.702 into fc2's alpha: one elementwise pass over the
// hidden layer instead of three (rounding differs from the three-pass form by an ulp or so);
// GELU's tanh form (SigLIP) as x sigmoid(2a) over cache-sized row blocks (windows.cpp).
// `split` pays where the products around it are large (ViT blocks); between Swin's small
// products it made a Swin-T forward at batch 1 2.2x slower (the products after a split ran
// slower; README, Performance), so the windowed blocks and the attention pool pass false.
at::Tensor mlp(const at::Tensor& x, const at::Tensor& fc1W, const at::Tensor& fc1B, const at::Tensor& fc2W,
               const at::Tensor& fc2B, Activation act, bool split);

// A block's MLP (mlp above); with the block's reduced-precision weights (model/precision.h) its
// products run in the reduced type and the output comes back as fp32.
at::Tensor blockMlp(const Block& b, const at::Tensor& x, Activation act, bool split);

// x (fp32) through a reduced-precision weight w and bias b: the product in w's type, on every core
// (runtime.h, ReducedPrecisionThreads); the result stays in w's type.
at::Tensor reducedLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// sum over tokens t of weight[b, t] * field[b, t] grouped by class: [B, K, C].
at::Tensor classPool(const at::Tensor& field, const at::Tensor& weight, const at::Tensor& cls, int64_t classes);
// [B, K] per-class readout weight sums (a constant write at every token).
at::Tensor classWeights(const at::Tensor& weight, const at::Tensor& cls, int64_t classes);

// Class-pooled fields of one stage, [B, n, K, C] each, sent through the stage's readout maps in
// one product (the maps are read once per stage, not once per term).
class StageTerms {
public:
    // Returns the index of the field's first term among this stage's terms.
    int64_t add(const at::Tensor& pooled);
    at::Tensor through(const at::Tensor& G) const;  // [B, n_total, E]

private:
    std::vector<at::Tensor> m_parts;
    int64_t m_count = 0;
};

// A per-token field on a stage grid [B, H, N_s, E] spread evenly over a grid `factor` times
// finer: [B, H, N_s * factor^2, E].
at::Tensor spread(const at::Tensor& t, int gh, int gw, int factor);

// A windowed block's heads per source token: source j of window n gets sum over the window's
// query tokens i of class k of rho_i a[i, j], times v_j^h W_O[:, h]^T G[k]; put back on the
// token grid and spread `factor` times finer: [B, H, N * factor^2, E]. wWin / cWin: readout
// weight and class of every window position.
at::Tensor headTokenTerms(const BlockRecord& rec, const Geometry& g, const at::Tensor& wWin, const at::Tensor& cWin, const at::Tensor& G,
                          const at::Tensor& outW, int64_t heads, int factor);

// One windowed block's share of its stage's terms: its heads [B, H, K, C], attention bias and
// MLP class-pooled into `stage` (their indices returned); with `tokens` defined ([B, H, N0, E]
// of the decomposition), its per-token head terms written there; with `factors`, its score
// factors appended. rho / cls: the stage's readout weights [B, N] and classes [N]; G its maps.
struct BlockTerms {
    int64_t heads = -1, bias = -1, mlp = -1;
};
BlockTerms addBlockTerms(StageTerms& stage, const Block& b, const BlockRecord& rec, const Geometry& g, const at::Tensor& rho,
                         const at::Tensor& cls, const at::Tensor& G, int64_t heads, int stageIndex, at::Tensor tokens,
                         std::vector<SwinLayerFactors>* factors);

// The sum identity of a hierarchical decomposition: max |sum of terms - output| (the heads
// through `headSum` [B, E]), and with per-token heads also max |their sum - headSum|.
double sumIdentityError(const Decomposition& dec, const at::Tensor& headSum, bool tokens);

}  // namespace vitscope::windows
