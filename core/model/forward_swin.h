#pragma once
// Swin's forward pass and exact decomposition (used by forward.cpp's entry points).
#include "model/forward.h"

namespace vitscope::swin {

// Checks that every stage's grid of an H x W input tiles into the model's windows; throws InputError.
void checkSize(const VisionTower& v, int64_t height, int64_t width);
VisionResult encode(const VisionTower& v, const at::Tensor& pixels);
Decomposition decompose(const VisionTower& v, const DecompositionMaps& maps, const at::Tensor& pixels,
                        const DecomposeOptions& options);
// vit-decompose's terms (Convention::VitDecompose, vit_decompose.h) from options.fromStage / fromBlock on.
Decomposition decomposeReference(const VisionTower& v, const at::Tensor& pixels, const DecomposeOptions& options);
// Per stage, the readout maps G_s [K_s, C_s, E] (DecompositionMaps::swinG).
std::vector<at::Tensor> readoutMaps(const VisionTower& v);
// The final norm applied to every last-stage token: [B, N_last, E] and that stage's grid.
at::Tensor finalTokens(const VisionTower& v, const at::Tensor& pixels, int* gridH, int* gridW);

}  // namespace vitscope::swin
