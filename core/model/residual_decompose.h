#pragma once
// The residual stream after block `layer` at the class token, decomposed exactly over the
// embedding, every head (and source token), attention output bias and MLP of blocks 0..layer,
// in the model's width D (no final norm, no projection): what an SAE trained on ViT-Prisma's
// blocks.L.hook_resid_post reads. Plain ViTs with a class token (CLIP, DeiT, DINO, timm ViT,
// registers and LayerScale included); Swin, MaxViT and attention-pooled SigLIP are refused.
//
//   residual = embed + sum_{l <= layer} (sum_h heads[l, h] + attnBias[l] + mlps[l])
// heads[l, h] = sum_n A_l[h, 0, n] v_l[h, n] W_O[:, h]^T (LayerScale folded in); the MLP term is
// the block's MLP on the class token's mid-block residual (computed from these terms).
#include "model/model.h"

#include <string>
#include <vector>

namespace vitscope {

struct ResidualDecomposition {
    int layer = 0;
    at::Tensor embed;        // [B, D] the class token entering block 0 (after ln_pre)
    at::Tensor heads;        // [B, L', H, D] or [B, L', H, N, D] with tokens (L' = layer + 1)
    at::Tensor attnBias;     // [B, L', D]
    at::Tensor mlps;         // [B, L', D]
    at::Tensor residual;     // [B, D] the traced residual after block `layer` at the class token
    double maxAbsError = 0;  // max |sum of terms - residual|
};

ResidualDecomposition decomposeResidual(const Model& model, const at::Tensor& pixels, int layer, bool tokens = false);

// Every term as [B, C, D] with names "embed", then per layer l <= layer: "l.h", "attn_bias.l",
// "mlp.l" (termsByComponent's names; per-token heads summed over tokens).
at::Tensor residualTermsByComponent(const ResidualDecomposition& dec, std::vector<std::string>* names);

}  // namespace vitscope
