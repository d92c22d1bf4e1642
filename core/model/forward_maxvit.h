#pragma once
// MaxViT's forward pass and exact decomposition (used by forward.cpp's entry points).
#include "model/forward.h"

namespace vitscope::maxvit {

// Checks that an H x W input halves down to grids its partitions tile; throws InputError.
void checkSize(const VisionTower& v, int64_t height, int64_t width);
VisionResult encode(const VisionTower& v, const at::Tensor& pixels);
Decomposition decompose(const VisionTower& v, const DecompositionMaps& maps, const at::Tensor& pixels,
                        const DecomposeOptions& options);
// vit-decompose's terms (Convention::VitDecompose, vit_decompose.h) from options.fromStage / fromBlock on.
Decomposition decomposeReference(const VisionTower& v, const at::Tensor& pixels, const DecomposeOptions& options);
// Per stage s the readout map [1, C_s, E], then the stem's (index S) (DecompositionMaps::swinG).
std::vector<at::Tensor> readoutMaps(const VisionTower& v);
// The last stage's tokens [B, N, C] and that stage's grid.
at::Tensor lastTokens(const VisionTower& v, const at::Tensor& pixels, int* gridH, int* gridW);

}  // namespace vitscope::maxvit
