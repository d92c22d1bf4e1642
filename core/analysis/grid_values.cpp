#include "analysis/grid_values.h"

#include <ATen/ATen.h>

namespace vitscope {

FloatGrid toFloatGrid(const at::Tensor& t) {
    const at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
    FloatGrid g;
    g.rows = static_cast<int>(c.dim() == 2 ? c.size(0) : 1);
    g.cols = static_cast<int>(c.dim() == 2 ? c.size(1) : c.numel());
    g.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    return g;
}

}  // namespace vitscope
