#pragma once
// The completeness ledger: an image's score for a text, <output, t>, broken into the score of
// every term of the image's decomposition (embedding, each head, each layer's attention bias and
// MLP, the final biases; SigLIP's pool MLP; MaxViT's MBConv branches; an aligner's bias), with the
// model's own score and the residual of the sum. The GUI's ledger panel and `vitscope-cli ledger`
// both come from computeLedger.
//
//   const Decomposition dec = decomposeImages(model, pixels, {});
//   const Ledger g = computeLedger(model, dec, text.encode({"a red circle"})[0], alignerOrNull);
//   // g.total == g.sumOfTerms + g.residual; g.residual ~ float rounding
#include "analysis/grid_values.h"

#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace vitscope {

struct Aligner;
struct Decomposition;
struct Model;

struct LedgerRow {
    std::string name;  // "L.H", "mlp.L", "embed", "attn_bias.L", "post_bias", ...
    int layer = -1, head = -1;
    double score = 0;  // <term, text> in CLIP space
};

struct Ledger {
    std::string text;
    double total = 0;       // <output, text> of the model's actual output (aligned for non-CLIP models)
    double sumOfTerms = 0;  // sum of every row's score
    double residual = 0;    // total - sumOfTerms
    std::vector<LedgerRow> rows;
    FloatGrid headScores;             // [L, H] (SigLIP: [L + 1, H], the pooling heads as the last row, not in the sum)
    std::vector<double> layerTotals;  // heads + attention bias + MLP per layer
};

// `dec`: the decomposition of one image (batch 1; per-token or per-head terms); `text`: [E] in
// CLIP space; `aligner`: the map of a non-CLIP model's terms into CLIP space (null for CLIP).
Ledger computeLedger(const Model& model, const Decomposition& dec, const at::Tensor& text, const Aligner* aligner);

}  // namespace vitscope
