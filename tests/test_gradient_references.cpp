// Gradient heatmaps against the authors' code, not against our own formulas: tests/data/gradient-maps
// holds two tiny models and the maps that make_reference.py computes on them by porting
// Transformer-MM-Explainability's notebooks (Chefer et al., both start layers; the ViT notebook's
// class logit), pytorch-grad-cam's CLIP and ViT recipes (the label's probability over a label list,
// the text logit, the class logit), LeGrad's compute_legrad_clip and compute_legrad_siglip, each as
// the reference returns it (upsampled to the image, then min-max normalised; SigLIP's LeGrad the
// other way round), and the SigLIP decomposition map TextSpan's demo_siglip.ipynb draws. vitscope's defaults
// (HeatmapParams as the CLI and the GUI leave them) must give those maps within 1e-4.
#include "analysis/gradient_maps.h"
#include "analysis/heatmap.h"
#include "error.h"
#include "explore/explorer.h"
#include "io/tensor_io.h"
#include "model/loader.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <nlohmann/json.hpp>

#include <fstream>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::source;

namespace {

const char* kDir = "tests/data/gradient-maps/";

at::Tensor reference(const std::string& name) {
    return readNpyTensor(source(kDir + name + ".npy"));
}

nlohmann::json manifest() {
    std::ifstream in(source(std::string(kDir) + "reference.json"));
    return nlohmann::json::parse(in);
}

at::Tensor minMax(const at::Tensor& x) {
    return (x - x.min()) / (x.max() - x.min());
}

struct Case {
    Model model;
    at::Tensor pixels, labels;
    int64_t targetLabel = 0, targetClass = 0;
};

Case load(const char* model) {
    const nlohmann::json j = manifest();
    Case c;
    c.model = loadModel(source(std::string(kDir) + model));
    c.pixels = readNpyTensor(source(std::string(kDir) + "pixels.npy"));
    c.labels = readNpyTensor(source(std::string(kDir) + "labels.npy"));
    c.targetLabel = j.at("target_label").get<int64_t>();
    c.targetClass = j.at("target_class").get<int64_t>();
    return c;
}

// The map as computeHeatmap returns it (no normalisation added here: the reference's own min-max
// after upsampling is part of what is compared) against the reference, with the gap printed.
double gridGap(const FloatGrid& a, const FloatGrid& b) {
    double d = a.values.size() == b.values.size() ? 0.0 : 1e9;
    for (std::size_t i = 0; i < a.values.size() && i < b.values.size(); ++i)
        d = std::max(d, std::abs(double(a.values[i]) - b.values[i]));
    return d;
}

double gap(const Heatmap& h, const std::string& name) {
    const at::Tensor ref = reference(name);
    const double d = maxAbsDiff(h.pixels, ref);
    qInfo("%s: max |ours - reference| %.3g (patch map min-maxed then upsampled: %.3g)", name.c_str(), d,
          maxAbsDiff(at::upsample_bilinear2d(minMax(h.patches).view({1, 1, h.patches.size(0), h.patches.size(1)}),
                                             {ref.size(0), ref.size(1)}, false)[0][0],
                     ref));
    return d;
}

}  // namespace

class TestGradientReferences : public QObject {
    Q_OBJECT

private slots:
    void referencesAreDistinct() {
        // Each option changes the map on these models by far more than the tolerance (else the
        // comparisons below could not tell the defaults apart).
        QVERIFY(maxAbsDiff(reference("clip_chefer_last"), reference("clip_chefer_all")) > 100 * 1e-4);
        QVERIFY(maxAbsDiff(reference("clip_gradcam_probability"), reference("clip_gradcam_logit")) > 100 * 1e-4);
    }

    void cheferClipDefaultsToTheLastLayer() {
        const Case c = load("clip");
        HeatmapParams p;
        p.method = HeatmapMethod::Chefer;
        const at::Tensor text = c.labels[c.targetLabel];
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_chefer_last") < 1e-4);
        p.cheferStartLayer = -1;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_chefer_last") < 1e-4);
        p.cheferStartLayer = 0;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_chefer_all") < 1e-4);
        QCOMPARE(defaultCheferStartLayer(c.model), -1);
    }

    void gradCamClipTargetsTheLabelProbability() {
        const Case c = load("clip");
        HeatmapParams p;
        p.method = HeatmapMethod::GradCam;
        const at::Tensor text = c.labels[c.targetLabel];
        p.labels = c.labels;  // --labels
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_gradcam_probability") < 1e-4);
        p.labels = at::Tensor();
        p.referenceTexts = c.labels;  // --reference-texts stand in for the label list
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_gradcam_probability") < 1e-4);
        // A label list without the text: the text is prepended (the same softmax, reordered).
        std::vector<at::Tensor> others;
        for (int64_t i = 0; i < c.labels.size(0); ++i)
            if (i != c.targetLabel) others.push_back(c.labels[i]);
        p.referenceTexts = at::stack(others);
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_gradcam_probability") < 1e-4);
        p.gradcamTarget = GradCamTarget::Logit;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_gradcam_logit") < 1e-4);
        p.referenceTexts = at::Tensor();
        p.gradcamTarget = GradCamTarget::Auto;  // no label list: the logit
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, text, p), "clip_gradcam_logit") < 1e-4);
        p.gradcamTarget = GradCamTarget::Probability;  // asked for, with no list: refused
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(c.model, c.pixels, text, p));
    }

    void legradClip() {
        const Case c = load("clip");
        HeatmapParams p;
        p.method = HeatmapMethod::LeGrad;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, c.labels[c.targetLabel], p), "clip_legrad") < 1e-4);
    }

    void supervisedVitKeepsEveryLayerAndTheClassLogit() {
        const Case c = load("vit");
        QCOMPARE(defaultCheferStartLayer(c.model), 0);
        HeatmapParams p;
        p.classIndex = c.targetClass;
        p.method = HeatmapMethod::Chefer;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, at::Tensor(), p), "vit_chefer_class") < 1e-4);
        p.method = HeatmapMethod::GradCam;
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, at::Tensor(), p), "vit_gradcam_class") < 1e-4);
        p.classIndex = 99;  // not a class of the model
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(c.model, c.pixels, at::Tensor(), p));
    }

    void legradAtAnotherInputSize() {
        // LeGrad's LePreprocess squashes to image_size and resamples the position embeddings.
        Case c = load("clip");
        const at::Tensor pixels = readNpyTensor(source(std::string(kDir) + "pixels_20px.npy"));
        setInputSize(c.model, static_cast<int>(pixels.size(2)));
        QCOMPARE(c.model.preprocess.imageSize, static_cast<int>(pixels.size(2)));
        HeatmapParams p;
        p.method = HeatmapMethod::LeGrad;
        QVERIFY(gap(computeHeatmap(c.model, pixels, c.labels[c.targetLabel], p), "clip_legrad_20px") < 1e-4);
        c.model.vision.posAntialias = false;  // plain bicubic, for comparison
        const double plain = maxAbsDiff(computeHeatmap(c.model, pixels, c.labels[c.targetLabel], p).pixels, reference("clip_legrad_20px"));
        qInfo("plain bicubic positions: max |map - reference| %.3g", plain);
        QVERIFY(plain > 100 * 1e-4);  // the resampling kernel matters at this tolerance
        QVERIFY_THROWS_EXCEPTION(InputError, setInputSize(c.model, 21));  // not a multiple of the patch
    }

    void legradSiglipWithItsCorrection() {
        const Case c = load("siglip");
        const at::Tensor texts =
            readNpyTensor(source(std::string(kDir) + "siglip_texts.npy"));  // the text, the empty prompt
        HeatmapParams p;
        p.method = HeatmapMethod::LeGrad;
        p.legradEmptyText = texts[1];
        QVERIFY(gap(computeHeatmap(c.model, c.pixels, texts[0], p), "siglip_legrad") < 1e-4);
        p.legradEmptyText = at::Tensor();  // without the correction: another map
        QVERIFY(maxAbsDiff(computeHeatmap(c.model, c.pixels, texts[0], p).pixels, reference("siglip_legrad")) >
                100 * 1e-4);
    }

    void siglipDecompositionMapIsThePoolHeads() {
        const Case c = load("siglip");
        const at::Tensor text = readNpyTensor(source(std::string(kDir) + "siglip_texts.npy"))[0];
        HeatmapParams p;  // decomposition, no heads chosen
        const at::Tensor ours = computeHeatmap(c.model, c.pixels, text, p).patches;
        const at::Tensor ref = reference("siglip_textspan_pool");
        const double d = maxAbsDiff(minMax(ours), minMax(ref));
        qInfo("siglip_textspan_pool: max |ours - reference| after min-max %.3g, raw %.3g", d, maxAbsDiff(ours, ref));
        QVERIFY(d < 1e-4);
        p.pooledMap = PooledMap::Encoder;  // the encoder level: a named option, another map
        QVERIFY(maxAbsDiff(minMax(computeHeatmap(c.model, c.pixels, text, p).patches), minMax(ref)) > 100 * 1e-4);
    }

    // What the GUI calls (Explorer::heatmap) carries the same settings, on the bundled models.
    void explorerRequestCarriesTheSettings() {
        QTemporaryDir dir;
        Explorer x(dir.path().toStdString());
        x.openModel(source("models/shapes-clip"), "cpu");
        QCOMPARE(x.model().heatmapMethodSummaries.size(), x.model().heatmapMethods.size());
        QCOMPARE(x.model().cheferDefaultStartLayer, -1);
        x.analyseImage(vitscope::test::oracle("clip-tiny/image1.png"));
        HeatmapRequest q;
        q.text = "a red object";
        q.method = "chefer";
        const HeatmapResult byDefault = x.heatmap(q);
        q.cheferStartLayer = -1;
        QCOMPARE(gridGap(x.heatmap(q).pixels, byDefault.pixels), 0.0);  // CLIP: the last layer by default
        q.cheferStartLayer = 0;
        QVERIFY(gridGap(x.heatmap(q).pixels, byDefault.pixels) > 1e-3);
        q.method = "gradcam";
        q.cheferStartLayer.reset();
        const HeatmapResult logit = x.heatmap(q);
        q.labels = {"a red object", "a blue object", "a green object"};
        const HeatmapResult probability = x.heatmap(q);
        QVERIFY(gridGap(probability.pixels, logit.pixels) > 1e-3);
        q.gradcamTarget = "logit";
        QCOMPARE(gridGap(x.heatmap(q).pixels, logit.pixels), 0.0);
        q.method = "legrad";  // LeGrad's reference input: a larger grid for this map only
        const int native = x.heatmap(q).patches.rows;
        q.inputSize = 2 * native * x.model().patchSize;
        QCOMPARE(x.heatmap(q).patches.rows, 2 * native);
        q.method = "decomposition";
        QVERIFY_THROWS_EXCEPTION(InputError, x.heatmap(q));
        q.inputSize = 0;
        q.method = "gradcam";
        q.gradcamTarget = "auto";
        q.classIndex = 1;  // a CLIP model has no classifier
        QVERIFY_THROWS_EXCEPTION(InputError, x.heatmap(q));
        x.openModel(source("models/shapes-vit"), "cpu");
        QCOMPARE(x.model().cheferDefaultStartLayer, 0);  // a supervised ViT: every layer
        x.analyseImage(vitscope::test::oracle("clip-tiny/image1.png"));
        HeatmapRequest c;
        c.method = "chefer";
        c.classIndex = 1;  // no text: the class logit
        const HeatmapResult one = x.heatmap(c);
        c.classIndex = 9;
        QVERIFY(gridGap(x.heatmap(c).pixels, one.pixels) > 1e-3);
    }

    void siglipPoolTermsAreTextSpans() {
        // compute_siglip.py's per-token pooling-head terms ('pooling_head.attention.out.post').
        const Case c = load("siglip");
        at::NoGradGuard guard;
        const Decomposition dec = decomposeImages(c.model, c.pixels, {true, Convention::Exact});
        const at::Tensor ours = dec.poolHeads[0];  // [P, N, E]
        const at::Tensor ref = readNpyTensor(source(std::string(kDir) + "siglip_pool_terms.npy"));
        const double d = maxAbsDiff(ours, ref), scale = ref.abs().max().item<double>();
        qInfo("siglip pool terms: max |ours - reference| %.3g (largest term %.3g)", d, scale);
        QCOMPARE(ours.sizes().vec(), ref.sizes().vec());
        QVERIFY(d < 1e-5 * scale);
    }

    void startLayerOutOfRangeIsRefused() {
        const Case c = load("clip");
        HeatmapParams p;
        p.method = HeatmapMethod::Chefer;
        p.cheferStartLayer = c.model.vision.layers();
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(c.model, c.pixels, c.labels[0], p));
        p.cheferStartLayer = -2;
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(c.model, c.pixels, c.labels[0], p));
    }
};

QTEST_GUILESS_MAIN(TestGradientReferences)
#include "test_gradient_references.moc"
