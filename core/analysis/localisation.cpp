#include "analysis/localisation.h"

#include "error.h"

namespace vitscope {

double averagePrecision(const at::Tensor& scores, const at::Tensor& labels) {
    const at::Tensor order = std::get<1>(scores.flatten().to(at::kFloat).sort(0, true));
    const at::Tensor sorted = labels.flatten().to(at::kDouble).index_select(0, order);
    const double positives = sorted.sum().item<double>();
    if (positives <= 0) return 0;
    const at::Tensor tp = sorted.cumsum(0);
    const at::Tensor rank = at::arange(1, sorted.size(0) + 1, sorted.options());
    return ((tp / rank) * sorted).sum().item<double>() / positives;
}

void LocalisationMeter::add(const at::Tensor& mapIn, const at::Tensor& maskIn) {
    if (mapIn.sizes() != maskIn.sizes()) throw InputError("heatmap", "map and mask sizes differ");
    const at::Tensor map = mapIn.to(at::kCPU, at::kFloat);
    const at::Tensor mask = maskIn.to(at::kCPU).ne(0);
    const int64_t fg = mask.sum().item<int64_t>();
    if (fg == 0 || fg == mask.numel()) return;
    const double lo = map.min().item<double>(), hi = map.max().item<double>();
    const at::Tensor unit = hi > lo ? (map - lo) / (hi - lo) : at::zeros_like(map);
    const at::Tensor pred = unit.gt(0.5);
    m_accuracy += pred.eq(mask).to(at::kDouble).mean().item<double>();
    m_interFg += (pred & mask).sum().item<double>();
    m_unionFg += (pred | mask).sum().item<double>();
    m_interBg += (~pred & ~mask).sum().item<double>();
    m_unionBg += (~pred | ~mask).sum().item<double>();
    m_ap += averagePrecision(map, mask);
    m_hits += mask.flatten()[map.flatten().argmax().item<int64_t>()].item<bool>() ? 1.0 : 0.0;
    ++m_images;
}

double LocalisationMeter::pixelAccuracy() const { return m_images ? m_accuracy / m_images : 0; }
double LocalisationMeter::meanIoU() const {
    if (m_images == 0) return 0;
    return 0.5 * (m_interFg / std::max(1.0, m_unionFg) + m_interBg / std::max(1.0, m_unionBg));
}
double LocalisationMeter::meanAveragePrecision() const { return m_images ? m_ap / m_images : 0; }
double LocalisationMeter::pointingGame() const { return m_images ? m_hits / m_images : 0; }

}  // namespace vitscope
