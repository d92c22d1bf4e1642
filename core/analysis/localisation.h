#pragma once
// Localisation metrics of heatmaps against ground-truth masks, with the reference definitions
// (TextSpan's compute_segmentations.py and the segmentation utilities it shares with Chefer et
// al.'s code): the map is clipped at 0 and min-max normalised (a flat map becomes all zero);
// foreground is where it exceeds its own mean; pixel accuracy and the IoU of each of the two
// classes are pooled over the dataset (mIoU = mean of the background and foreground IoU); AP is
// computed per image over both channels ([1 - map, map] scored against [background, foreground],
// ties grouped as sklearn's average_precision_score does) and averaged over images. The
// pointing game (does the raw map's maximum fall on the object?) is an extra column.
// second_order_lens's compute_segmentation.py shares these utilities but thresholds its min-max
// map at 0.5 instead of its mean (ForegroundThreshold::Half).
#include <ATen/ATen.h>

namespace vitscope {

// Where the normalised map turns foreground: above its own mean (TextSpan, Chefer et al.) or above
// 0.5 (second_order_lens's compute_segmentation.py).
enum class ForegroundThreshold { Mean, Half };

// One image's share of every pooled sum (kept by benchmark runs so that they resume).
struct LocalisationSample {
    double correct = 0, pixels = 0, interFg = 0, unionFg = 0, interBg = 0, unionBg = 0, ap = 0, hit = 0;
};

class LocalisationMeter {
public:
    // clipNegatives false: min-max only, as Chefer et al.'s imagenet_seg_eval.py (its relevance
    // maps are non-negative); TextSpan's compute_segmentations.py clips at 0 first (the default).
    explicit LocalisationMeter(bool clipNegatives = true, ForegroundThreshold threshold = ForegroundThreshold::Mean)
        : m_clip(clipNegatives), m_threshold(threshold) {}
    // map [S, S] float (any scale), mask [S, S] (non-zero = object). Throws InputError on a size
    // mismatch.
    LocalisationSample add(const at::Tensor& map, const at::Tensor& mask);  // returns the image's share
    void add(const LocalisationSample& sample);
    int64_t images() const { return m_images; }
    double pixelAccuracy() const;  // correct pixels / pixels, pooled over images
    double meanIoU() const;        // mean of the background and foreground IoU, areas pooled over images
    double meanAveragePrecision() const;  // mean over images of the two-channel AP
    double pointingGame() const;   // fraction of images whose maximum falls on the object

private:
    bool m_clip = true;
    ForegroundThreshold m_threshold = ForegroundThreshold::Mean;
    int64_t m_images = 0;
    double m_correct = 0, m_pixels = 0, m_ap = 0, m_hits = 0;
    double m_interFg = 0, m_unionFg = 0, m_interBg = 0, m_unionBg = 0;
};

// Average precision of scores [P] against binary labels [P] as sklearn computes it: precision
// at each distinct score (tied scores enter together) weighted by the recall it adds. 0 when
// there is no positive label.
double averagePrecision(const at::Tensor& scores, const at::Tensor& labels);

}  // namespace vitscope
