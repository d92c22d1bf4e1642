#pragma once
// How much a reduced precision (model/precision.h) changes what vitscope reports: the same model
// opened in fp32 and in the reduced precision, run on held-out shapes-world scenes, compared figure
// by figure. bench/precision_agreement prints the table (README, "Reduced precision"); a test keeps
// the bundled model's bf16 figures above floors.
//
//   Model f = openModelOn(spec, "cpu", {}, {}, "fp32"), r = openModelOn(spec, "cpu", {}, {}, "bf16");
//   AgreementResult a = measureAgreement(f, r, AgreementParams{});
#include "model/model.h"

#include <string>

namespace vitscope {

struct AgreementParams {
    int images = 128;  // held-out shapes-world scenes (resized to the model's input)
    int batch = 16;
    int heatmapImages = 16;     // decomposition heatmaps compared (the scene's shape as the text)
    int textspanLayers = 4;     // TextSpan over every head of the last k layers
    int perHead = 10;           // TextSpan's texts per head (the list compared)
    int retrievalQueries = 32;  // texts used as retrieval queries (top-10 of the images)
    int zeroShotImages = 500;   // CLIP models with a tokenizer: the model card's zero-shot protocol; 0: skipped
    int randomTexts = 256;      // models without a text tower: random unit directions as the text pool
    void validate() const;      // throws InputError
};

// -1 marks a figure that was not measured (no text tower for zero-shot, no masks for pointing).
struct AgreementResult {
    std::string precision;
    int images = 0;
    double identityFp32 = 0, identityReduced = 0;  // max |sum of terms - output| / max |output|, each precision's own
    double cosineMean = 0, cosineMin = 0;          // output features vs fp32's
    int textspanHeads = 0;
    double firstPick = 0, sameList = 0;  // share of heads with fp32's first pick / whole ordered list
    double rankCorrelation = 0;          // Spearman of every component's property score, mean over properties
    double retrievalOverlap = 0;         // top-10 overlap, mean over the queries
    double heatmapCorrelation = 0;       // Pearson of the patch maps, mean over images
    double pointingFp32 = -1, pointingReduced = -1;  // pointing game on the scenes' object masks
    double zeroShotFp32 = -1, zeroShotReduced = -1;  // mean accuracy over the six attributes
};

// `fp32` and `reduced`: the same weights opened in fp32 and in the reduced precision, on one device.
AgreementResult measureAgreement(const Model& fp32, const Model& reduced, const AgreementParams& params);

}  // namespace vitscope
