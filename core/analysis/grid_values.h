#pragma once
// Torch-free result values that front-ends (the GUI, the CLI's JSON) take from analyses.
#include <algorithm>
#include <vector>

namespace at {
class Tensor;
}

namespace vitscope {

// Row-major float grid (a heatmap, an L x H metric).
struct FloatGrid {
    int rows = 0, cols = 0;
    std::vector<float> values;
    float at(int r, int c) const { return values[static_cast<std::size_t>(r) * cols + c]; }
    float minValue() const { return values.empty() ? 0.f : *std::min_element(values.begin(), values.end()); }
    float maxValue() const { return values.empty() ? 0.f : *std::max_element(values.begin(), values.end()); }
    bool empty() const { return values.empty(); }
};

// A [rows, cols] tensor (a vector: one row) as a float grid, copied to the CPU.
FloatGrid toFloatGrid(const at::Tensor& t);

// One value per cell of the layer x head grid and its side columns, as the grid draws them:
// heads [rows, H] (NaN: no head there), one MLP value per row, and MaxViT's MBConv per row (block
// K on the row of its first attention unit; NaN elsewhere; empty for other models).
struct GridValues {
    FloatGrid heads;
    std::vector<float> mlp, side;
    bool empty() const { return heads.values.empty(); }
};

}  // namespace vitscope
