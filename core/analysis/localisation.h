#pragma once
// Localisation metrics of heatmaps against ground-truth masks: pixel accuracy and mIoU of the
// map thresholded at half its range, mAP of the pixel ranking, and the pointing game.
#include <ATen/ATen.h>

namespace vitscope {

class LocalisationMeter {
public:
    // map [S, S] float (any scale), mask [S, S] (non-zero = object). Throws InputError on a size
    // mismatch; images whose mask is empty or full are skipped (no ranking to score).
    void add(const at::Tensor& map, const at::Tensor& mask);
    int64_t images() const { return m_images; }
    double pixelAccuracy() const;  // mean over images
    double meanIoU() const;        // mean of the object and background IoU, pixel totals over images
    double meanAveragePrecision() const;
    double pointingGame() const;   // fraction of images whose maximum falls on the object

private:
    int64_t m_images = 0;
    double m_accuracy = 0, m_ap = 0, m_hits = 0;
    double m_interFg = 0, m_unionFg = 0, m_interBg = 0, m_unionBg = 0;
};

// Average precision of scores [P] against binary labels [P].
double averagePrecision(const at::Tensor& scores, const at::Tensor& labels);

}  // namespace vitscope
