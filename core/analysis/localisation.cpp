#include "analysis/localisation.h"

#include "error.h"

#include <algorithm>

namespace vitscope {

double averagePrecision(const at::Tensor& scores, const at::Tensor& labels) {
    const auto sorted = scores.flatten().to(at::kDouble).sort(0, true);
    const at::Tensor s = std::get<0>(sorted).contiguous();
    const at::Tensor l = labels.flatten().to(at::kDouble).index_select(0, std::get<1>(sorted)).contiguous();
    const double* sp = s.data_ptr<double>();
    const double* lp = l.data_ptr<double>();
    const int64_t n = s.numel();
    double positives = 0;
    for (int64_t i = 0; i < n; ++i) positives += lp[i] > 0 ? 1 : 0;
    if (positives <= 0) return 0;
    double tp = 0, fp = 0, recall = 0, ap = 0;
    for (int64_t i = 0; i < n;) {
        const double value = sp[i];
        for (; i < n && sp[i] == value; ++i) (lp[i] > 0 ? tp : fp) += 1;  // a group of tied scores
        const double r = tp / positives;
        ap += (r - recall) * (tp / (tp + fp));
        recall = r;
    }
    return ap;
}

LocalisationSample LocalisationMeter::add(const at::Tensor& mapIn, const at::Tensor& maskIn) {
    if (mapIn.sizes() != maskIn.sizes()) throw InputError("heatmap", "map and mask sizes differ");
    const at::Tensor raw = mapIn.to(at::kCPU, at::kDouble);
    const at::Tensor mask = maskIn.to(at::kCPU).ne(0);
    // Clip at 0 (unless asked not to), then min-max normalise; a flat map (0 / 0 in the
    // reference) is all zero.
    const at::Tensor clipped = m_clip ? raw.clamp_min(0) : raw;
    const double lo = clipped.min().item<double>(), hi = clipped.max().item<double>();
    const bool flat = !(hi > lo);
    const at::Tensor unit = flat ? at::zeros_like(clipped) : (clipped - lo) / (hi - lo);
    // Foreground above the map's mean, or above 0.5 (a flat map predicts background everywhere).
    const double threshold = m_threshold == ForegroundThreshold::Half ? 0.5 : (flat ? 0.0 : unit.mean().item<double>());
    const at::Tensor pred = flat ? at::zeros_like(mask) : unit.gt(threshold);
    LocalisationSample x;
    x.correct = pred.eq(mask).sum().item<double>();
    x.pixels = static_cast<double>(mask.numel());
    x.interFg = (pred & mask).sum().item<double>();
    x.unionFg = (pred | mask).sum().item<double>();
    x.interBg = (~pred & ~mask).sum().item<double>();
    x.unionBg = (~pred | ~mask).sum().item<double>();
    // Two channels: background scored by 1 - map, foreground by the map.
    const at::Tensor scores = at::cat({(1.0 - unit).flatten(), unit.flatten()});
    const at::Tensor targets = at::cat({(~mask).flatten(), mask.flatten()});
    x.ap = averagePrecision(flat ? at::zeros_like(scores) : scores, targets);
    x.hit = mask.flatten()[raw.flatten().argmax().item<int64_t>()].item<bool>() ? 1.0 : 0.0;
    add(x);
    return x;
}

void LocalisationMeter::add(const LocalisationSample& x) {
    m_correct += x.correct;
    m_pixels += x.pixels;
    m_interFg += x.interFg;
    m_unionFg += x.unionFg;
    m_interBg += x.interBg;
    m_unionBg += x.unionBg;
    m_ap += x.ap;
    m_hits += x.hit;
    ++m_images;
}

double LocalisationMeter::pixelAccuracy() const { return m_pixels > 0 ? m_correct / m_pixels : 0; }
double LocalisationMeter::meanIoU() const {
    if (m_images == 0) return 0;
    return 0.5 * (m_interFg / std::max(1.0, m_unionFg) + m_interBg / std::max(1.0, m_unionBg));
}
double LocalisationMeter::meanAveragePrecision() const { return m_images ? m_ap / static_cast<double>(m_images) : 0; }
double LocalisationMeter::pointingGame() const { return m_images ? m_hits / static_cast<double>(m_images) : 0; }

}  // namespace vitscope
