// Heatmaps: linearity of the decomposition map over heads and reference texts, attention and
// rollout as distributions, the overlay's layout, bad input; localisation metrics on hand-made
// cases; and on the bundled shapes-clip model, that decomposition and CLIP Surgery localise the
// object far better than raw patch-text similarity (ground-truth masks).
#include "analysis/heatmap.h"
#include "analysis/localisation.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "error.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "shapes/world.h"
#include "shapes/zero_shot.h"
#include "test_util.h"

#include <QtTest/QtTest>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

class TestHeatmap : public QObject {
    Q_OBJECT

private:
    Model m_model;
    std::unique_ptr<TextEncoder> m_text;

    at::Tensor scenePixels(uint64_t index, shapes::Scene* out = nullptr) {
        shapes::Scene s = shapes::generateScene(99, index, {});
        const at::Tensor px = shapes::scenesToPixels({s}, m_model.preprocess);
        if (out) *out = s;
        return px;
    }

private slots:
    void initTestCase() {
        m_model = loadModel(test::source("models/shapes-clip"));
        m_text = std::make_unique<TextEncoder>(m_model);
    }

    void decompositionMapIsLinear() {
        const at::Tensor px = scenePixels(1);
        const at::Tensor t = m_text->encode({"a red object"})[0];
        HeatmapParams p;
        const Heatmap all = computeHeatmap(m_model, px, t, p);
        QCOMPARE(all.patches.sizes().vec(), (std::vector<int64_t>{8, 8}));
        QCOMPARE(all.pixels.sizes().vec(), (std::vector<int64_t>{64, 64}));
        at::Tensor sum = at::zeros({8, 8});
        for (int l = 0; l < 4; ++l)
            for (int h = 0; h < 4; ++h) {
                p.heads = {{l, h}};
                sum += computeHeatmap(m_model, px, t, p).patches;
            }
        QVERIFY(maxAbsDiff(sum, all.patches) < 1e-5);
        // Reference texts: the map of t minus the mean map of the references.
        const at::Tensor refs = m_text->encode({"a blue object", "a green object"});
        p.heads = {{3, 1}, {2, 0}};
        HeatmapParams withRefs = p;
        withRefs.referenceTexts = refs;
        const at::Tensor a = computeHeatmap(m_model, px, t, withRefs).patches;
        const at::Tensor b = computeHeatmap(m_model, px, t, p).patches -
                             0.5 * (computeHeatmap(m_model, px, refs[0], p).patches + computeHeatmap(m_model, px, refs[1], p).patches);
        QVERIFY(maxAbsDiff(a, b) < 1e-5);
    }

    void attentionMapsAreDistributions() {
        const at::Tensor px = scenePixels(2);
        const at::Tensor none;
        for (HeatmapMethod m : {HeatmapMethod::Attention, HeatmapMethod::Rollout}) {
            HeatmapParams p;
            p.method = m;
            const Heatmap map = computeHeatmap(m_model, px, none, p);
            QVERIFY(map.patches.min().item<double>() >= 0);
            const double total = map.patches.sum().item<double>();
            QVERIFY2(total > 0 && total <= 1.0 + 1e-5, qPrintable(QString::number(total)));
        }
    }

    void badInput() {
        const at::Tensor px = scenePixels(3);
        HeatmapParams p;
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(m_model, px, at::ones({7}), p));
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(m_model, at::cat({px, px}), m_text->encode({"a circle"})[0], p));
        p.heads = {{4, 0}};
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(m_model, px, m_text->encode({"a circle"})[0], p));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeatmapMethod("saliency"));
        QVERIFY_THROWS_EXCEPTION(InputError, parseColormap("rainbow"));
    }

    // SigLIP (no class token): every method runs on the patch grid (no prefix tokens); the
    // decomposition map is linear over heads, its default sums the encoder's heads only, and the
    // pooling row reproduces the pooling heads' per-token terms; the probe's attention and its
    // rollout are distributions over the patches.
    void siglipMaps() {
        at::manual_seed(9120);  // the draws below are part of the test: fixed
        RandomVitSpec s;
        s.layout = RandomLayout::TimmSiglip, s.imageSize = 32, s.patchSize = 8, s.width = 64, s.layers = 3, s.seed = 41;
        const Model model = buildModel(randomVitStateDict(s), {{"model_args", {{"num_heads", 2}}}}, "siglip");
        at::NoGradGuard guard;
        const at::Tensor px = at::randn({1, 3, 32, 32});
        at::Tensor t = at::randn({64});
        t = t / t.norm();
        HeatmapParams p;
        p.pooledMap = PooledMap::Encoder;  // the encoder level: every encoder head through the frozen pool
        const Heatmap all = computeHeatmap(model, px, t, p);
        QCOMPARE(all.patches.sizes().vec(), (std::vector<int64_t>{4, 4}));
        at::Tensor sum = at::zeros({4, 4});
        for (int l = 0; l < 3; ++l)
            for (int h = 0; h < 2; ++h) {
                p.heads = {{l, h}};
                sum += computeHeatmap(model, px, t, p).patches;
            }
        QVERIFY(maxAbsDiff(sum, all.patches) < 1e-5);
        // The lazy per-token scores equal the materialised per-token terms' scores, head by head.
        {
            DecomposeOptions lazy;
            lazy.tokenFactors = true;
            const Decomposition f = decomposeImages(model, px, lazy);
            const Decomposition full = decomposeImages(model, px, {true, Convention::Exact});
            QCOMPARE(f.heads.dim(), int64_t(4));  // per-head terms only
            double worst = 0;
            for (int l = 0; l < 3; ++l)
                for (int h = 0; h < 2; ++h)
                    worst = std::max(worst, maxAbsDiff(pooledTokenScores(model, f, 0, l, h, t), at::matmul(full.heads[0][l][h], t)));
            QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
            QVERIFY(maxAbsDiff(f.poolHeads, full.poolHeads) < 1e-6);
            QVERIFY(f.maxAbsError < 1e-4);
        }
        p.heads = {{3, 0}, {3, 1}};  // the pooling row
        const at::Tensor poolMap = computeHeatmap(model, px, t, p).patches;
        const Decomposition dec = decomposeImages(model, px, {true, Convention::Exact});
        const at::Tensor expected = at::matmul(dec.poolHeads[0].sum(0), t).view({4, 4});  // [N] -> grid
        QVERIFY(maxAbsDiff(poolMap, expected) < 1e-5);
        QVERIFY(maxAbsDiff(poolMap, all.patches) > 1e-4);  // another decomposition, not a copy
        // By default (no heads chosen) the map is the pooling heads', as TextSpan's SigLIP demo draws it.
        QVERIFY(maxAbsDiff(computeHeatmap(model, px, t, HeatmapParams{}).patches, expected) < 1e-5);
        QCOMPARE(parsePooledMap(pooledMapName(PooledMap::Encoder)), PooledMap::Encoder);
        QVERIFY_THROWS_EXCEPTION(InputError, parsePooledMap("tokens"));
        p.heads = {{4, 0}};
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(model, px, t, p));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeadPairs("pool.h2", 3, 2, 2));
        QCOMPARE(parseHeadPairs("pool.h1,2.0", 3, 2, 2), (std::vector<std::pair<int, int>>{{3, 1}, {2, 0}}));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeadPairs("pool.h0", 3, 2, 0));
        for (HeatmapMethod m : {HeatmapMethod::Attention, HeatmapMethod::Rollout}) {
            HeatmapParams q;
            q.method = m;
            const Heatmap map = computeHeatmap(model, px, at::Tensor(), q);
            QVERIFY(map.patches.min().item<double>() >= 0);
            QVERIFY(std::abs(map.patches.sum().item<double>() - 1.0) < 1e-5);  // no class token to leave out
        }
        const ImageTrace trace = traceImages(model, px);
        HeatmapParams att;
        att.method = HeatmapMethod::Attention;
        QVERIFY(maxAbsDiff(computeHeatmap(model, px, at::Tensor(), att).patches, trace.poolAttention[0].mean(0).view({4, 4})) < 1e-6);
        for (HeatmapMethod m : {HeatmapMethod::Raw, HeatmapMethod::Surgery}) {
            HeatmapParams q;
            q.method = m;
            q.surgeryBlocks = 2;
            const at::Tensor refs = at::randn({3, 64});
            q.referenceTexts = refs / refs.norm(2, 1, true);
            const Heatmap map = computeHeatmap(model, px, t, q);
            QCOMPARE(map.patches.sizes().vec(), (std::vector<int64_t>{4, 4}));
            QVERIFY(at::isfinite(map.patches).all().item<bool>());
            QVERIFY(map.patches.max().item<double>() - map.patches.min().item<double>() > 1e-6);
        }
        // Raw: each token's feature is the pooled output with the probe on that token alone.
        HeatmapParams raw;
        raw.method = HeatmapMethod::Raw;
        const at::Tensor feats = finalTokens(model, trace.residuals.back())[0];  // [N, E]
        const at::Tensor one = feats[5] / feats[5].norm();
        QVERIFY(std::abs(computeHeatmap(model, px, t, raw).patches.view({16})[5].item<double>() - at::dot(one, t).item<double>()) < 1e-5);
    }

    // Swin: the decomposition map over the first stage's patches equals the materialised
    // per-token terms' scores and sums over heads; heads a layer lacks and the attention-based
    // methods are refused; raw similarity reads the last stage's tokens.
    void swinMaps() {
        at::manual_seed(9123);  // the draws below are part of the test: fixed
        RandomVitSpec s;
        s.layout = RandomLayout::TimmSwin, s.patchSize = 4, s.width = 16, s.swinDepths = {2, 2}, s.swinHeads = {2, 4};
        s.window = 2, s.seed = 43;
        const Model model = buildModel(randomVitStateDict(s), {{"img_size", 32}}, "swin");
        at::NoGradGuard guard;
        const at::Tensor px = at::randn({1, 3, 32, 32});
        at::Tensor t = at::randn({32});
        t = t / t.norm();
        HeatmapParams p;
        const Heatmap all = computeHeatmap(model, px, t, p);
        QCOMPARE(all.patches.sizes().vec(), (std::vector<int64_t>{8, 8}));
        const Decomposition full = decomposeImages(model, px, {true, Convention::Exact});
        const at::Tensor expected = at::matmul(full.heads[0].sum(at::IntArrayRef{0, 1}), t).view({8, 8});
        QVERIFY(maxAbsDiff(all.patches, expected) < 1e-5);
        at::Tensor sum = at::zeros({8, 8});
        for (int l = 0; l < 4; ++l)
            for (int h = 0; h < model.vision.headsIn(l); ++h) {
                p.heads = {{l, h}};
                sum += computeHeatmap(model, px, t, p).patches;
            }
        QVERIFY(maxAbsDiff(sum, all.patches) < 1e-5);
        // A stage-1 head's map is constant over each 2 x 2 block of patches.
        p.heads = {{3, 2}};
        const at::Tensor stage1 = computeHeatmap(model, px, t, p).patches;
        QVERIFY(maxAbsDiff(stage1.narrow(0, 0, 1).narrow(1, 0, 1), stage1.narrow(0, 1, 1).narrow(1, 1, 1)) < 1e-7);
        p.heads = {{0, 3}};  // layer 0 has 2 heads
        QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(model, px, t, p));
        for (HeatmapMethod m : {HeatmapMethod::Attention, HeatmapMethod::Rollout, HeatmapMethod::Surgery}) {
            HeatmapParams q;
            q.method = m;
            QVERIFY_THROWS_EXCEPTION(InputError, computeHeatmap(model, px, t, q));
        }
        HeatmapParams raw;
        raw.method = HeatmapMethod::Raw;
        const Heatmap r = computeHeatmap(model, px, t, raw);
        QCOMPARE(r.patches.sizes().vec(), (std::vector<int64_t>{4, 4}));  // the last (second) stage's grid
        int gh = 0, gw = 0;
        const at::Tensor tokens = lastStageTokens(model, px, &gh, &gw)[0];
        QVERIFY(maxAbsDiff(tokens.mean(0), encodeImages(model, px).output[0]) < 1e-5);  // what the output averages
        QCOMPARE(gh, 4);
        QVERIFY(std::abs(r.patches.view({16})[3].item<double>() - at::dot(tokens[3] / tokens[3].norm(), t).item<double>()) < 1e-5);
    }

    void overlayLayout() {
        shapes::Scene s;
        const at::Tensor px = scenePixels(4, &s);
        const cv::Mat& rgb = s.image;  // scenes are RGB
        const Heatmap map = computeHeatmap(m_model, px, m_text->encode({"a circle"})[0], {});
        const cv::Mat png = renderOverlay(cropForModel(rgb, m_model.preprocess), map.pixels, 0.5, Colormap::Viridis, 4, "a circle");
        QCOMPARE(png.rows, 64 * 4 + 24 + 8);
        QCOMPARE(png.cols, 64 * 4 + 8 + 14 + 64);
        QCOMPARE(png.type(), CV_8UC3);
    }

    void surgeryPromptEnsembleAndSquash() {
        // BPE models: Surgery's texts through its template ensemble, as encode_text_with_prompt_ensemble
        // does (each filled template encoded and normalised, the mean normalised); word
        // vocabularies: plain texts.
        HeatmapSessionOptions o;
        o.model = test::oracle("clip-tiny/hf");
        o.device = "cpu";
        const HeatmapSession bpe = openHeatmapSession(o);
        QVERIFY(bpe.surgeryEnsemble);
        const std::vector<std::string> templates = readTextList(test::source("resources/templates/surgery.txt"));
        QCOMPARE(templates.size(), std::size_t(85));
        for (const std::string& target : {std::string("a dog"), std::string("")}) {
            at::Tensor sum = at::zeros({bpe.redundant.size(0)});
            for (const std::string& t : templates) {
                std::string filled = t;
                filled.replace(filled.find("{}"), 2, target);
                const at::Tensor e = bpe.text->encode({filled})[0];
                sum += e / e.norm();
            }
            const at::Tensor expected = sum / sum.norm();
            const at::Tensor got = target.empty() ? bpe.redundant : bpe.textsFor(HeatmapMethod::Surgery, {target})[0];
            QVERIFY(maxAbsDiff(got, expected) < 1e-5);
        }
        QVERIFY(maxAbsDiff(bpe.textsFor(HeatmapMethod::Decomposition, {"a dog"}), bpe.text->encode({"a dog"})) == 0);
        o.surgeryEnsemble = "off";
        QVERIFY(maxAbsDiff(openHeatmapSession(o).redundant, bpe.text->encode({""})[0]) == 0);
        o.model = test::source("models/shapes-clip");
        o.surgeryEnsemble = "auto";
        QVERIFY(!openHeatmapSession(o).surgeryEnsemble);
        // The squash preprocessing: the whole image resized to the input size, no crop.
        const cv::Mat rgb = loadImageRgb(test::oracle("clip-tiny/image0.png"));  // 300 x 200
        ImagePreprocess prep;
        prep.squash = true;
        const cv::Mat squashed = cropForModel(rgb, prep);
        QCOMPARE(squashed.cols, 224);
        QCOMPARE(squashed.rows, 224);
        QCOMPARE(cv::norm(squashed, resizeBicubicAntialias(rgb, 224, 224), cv::NORM_INF), 0.0);
    }

    void modelInputIsDescribed() {
        // What of an image the model sees, in words, for the crops torchvision's Resize +
        // CenterCrop make: CLIP's (224 / 224) and ImageNet's (256 / 224); squash; square.
        ImagePreprocess clip;
        QCOMPARE(describeModelInput(640, 480, clip), std::string("the centre 480 x 480 of the 640 x 480 image (80 px cut at the left and right)"));
        QCOMPARE(describeModelInput(300, 600, clip), std::string("the centre 300 x 300 of the 300 x 600 image (150 px at the top and bottom)"));
        QCOMPARE(describeModelInput(500, 500, clip), std::string());
        QCOMPARE(describeModelInput(0, 480, clip), std::string());  // no image, no words (and no division by zero)
        ImagePreprocess imagenet;
        imagenet.resizeShortest = 256;
        // 224 / 256 of the short side: 420 of 480, so 110 px of 640 and 30 px of 480 go at each end.
        QCOMPARE(describeModelInput(640, 480, imagenet),
                 std::string("the centre 420 x 420 of the 640 x 480 image (110 px cut at the left and right, 30 px at the top and bottom)"));
        ImagePreprocess squash;
        squash.squash = true;
        QCOMPARE(describeModelInput(640, 480, squash), std::string("the whole 640 x 480 image, squashed to 224 x 224"));
        // The words match the pixels: a 640 x 480 image green in its centre 480 columns and red /
        // blue in the 80 at either side crops (CLIP's preprocessing) to green.
        cv::Mat rgb(480, 640, CV_8UC3, cv::Scalar(0, 200, 0));
        rgb.colRange(0, 80).setTo(cv::Scalar(200, 0, 0));
        rgb.colRange(560, 640).setTo(cv::Scalar(0, 0, 200));
        const cv::Mat crop = cropForModel(rgb, clip);
        int green = 0;
        for (int y = 0; y < crop.rows; ++y)
            for (int x = 0; x < crop.cols; ++x) {
                const cv::Vec3b v = crop.at<cv::Vec3b>(y, x);
                green += v[1] > 150 && v[0] < 50 && v[2] < 50;
            }
        QVERIFY2(green >= crop.rows * (crop.cols - 2), qPrintable(QString::number(green)));
        // Transparency is noticed in PNGs with an alpha channel, not in opaque PNGs or JPEGs.
        QTemporaryDir dir;
        auto bytesOf = [&](const cv::Mat& image, const std::string& name) {
            const std::string path = dir.path().toStdString() + "/" + name;
            writeImage(path, image);
            return readFileBytes(path);
        };
        QVERIFY(pngHasTransparency(bytesOf(cv::Mat(8, 8, CV_8UC4, cv::Scalar(10, 20, 30, 0)), "rgba.png")));
        QVERIFY(!pngHasTransparency(bytesOf(cv::Mat(8, 8, CV_8UC3, cv::Scalar(10, 20, 30)), "rgb.png")));
        QVERIFY(!pngHasTransparency(bytesOf(cv::Mat(8, 8, CV_8UC3, cv::Scalar(10, 20, 30)), "rgb.jpg")));
        QVERIFY(!pngHasTransparency({0x89, 'P', 'N', 'G'}));  // a truncated file is not read past its end
    }

    void localisationMetrics() {
        QVERIFY(std::abs(averagePrecision(at::tensor({0.9, 0.8, 0.7, 0.6}), at::tensor({1, 0, 1, 0})) - (1.0 + 2.0 / 3.0) / 2) < 1e-9);
        QVERIFY(std::abs(averagePrecision(at::tensor({0.1, 0.8, 0.7}), at::tensor({0, 1, 1})) - 1.0) < 1e-9);
        // Tied scores enter together (sklearn): all tied -> the positive share.
        QVERIFY(std::abs(averagePrecision(at::tensor({0.5, 0.5, 0.5, 0.5}), at::tensor({1, 0, 0, 0})) - 0.25) < 1e-9);
        at::Tensor mask = at::zeros({10, 10}, at::kByte);
        mask.narrow(0, 2, 3).narrow(1, 2, 3).fill_(1);
        LocalisationMeter perfect, inverted;
        perfect.add(mask.to(at::kFloat), mask);
        inverted.add(1.0 - mask.to(at::kFloat), mask);
        QCOMPARE(perfect.pixelAccuracy(), 1.0);
        QCOMPARE(perfect.meanIoU(), 1.0);
        QCOMPARE(perfect.meanAveragePrecision(), 1.0);
        QCOMPARE(perfect.pointingGame(), 1.0);
        QCOMPARE(inverted.pointingGame(), 0.0);
        QCOMPARE(inverted.pixelAccuracy(), 0.0);
        QVERIFY_THROWS_EXCEPTION(InputError, perfect.add(at::zeros({3, 3}), mask));
        // Chefer et al.'s imagenet_seg_eval.py normalises without clipping: a map whose object is
        // less negative than its background still finds it; clipped at 0 (TextSpan's rule) the
        // whole map is 0 and nothing is found.
        const at::Tensor negative = at::where(mask.to(at::kBool), at::full({10, 10}, -0.2), at::full({10, 10}, -1.0));
        LocalisationMeter chefer(false), textspan;
        chefer.add(negative, mask);
        textspan.add(negative, mask);
        QCOMPARE(chefer.pixelAccuracy(), 1.0);
        QCOMPARE(chefer.meanIoU(), 1.0);
        QCOMPARE(textspan.pixelAccuracy(), 0.91);  // all background predicted: the 9 object pixels missed
    }

    void localisationMatchesReferenceFormula() {
        // The reference's steps written out per pixel (compute_segmentations.py eval_batch,
        // batch_pix_accuracy, batch_intersection_union, get_ap_scores with sklearn's AP), on maps
        // with negative values, ties, a flat map and masks with no object or no background.
        at::manual_seed(17);
        LocalisationMeter meter;
        double correct = 0, labeled = 0, inter[2] = {0, 0}, uni[2] = {0, 0}, apSum = 0;
        int images = 0;
        for (int i = 0; i < 12; ++i) {
            const int64_t s = 8 + i % 3;
            at::Tensor map = at::randn({s, s}, at::kDouble);
            if (i % 4 == 1) map = at::round(map * 2) / 2;          // ties
            if (i == 5) map = at::full({s, s}, 0.3, at::kDouble);  // flat
            at::Tensor mask = at::rand({s, s}).gt(0.6).to(at::kByte);
            if (i == 7) mask.zero_();
            if (i == 9) mask.fill_(1);
            meter.add(map.to(at::kFloat), mask);
            // Reference, step by step.
            const int64_t n = s * s;
            std::vector<double> res(static_cast<std::size_t>(n));
            double mx = -1e300, mn = 1e300;
            for (int64_t p = 0; p < n; ++p) {
                const double v = std::max(0.0, static_cast<double>(map.flatten()[p].item<float>()));
                res[static_cast<std::size_t>(p)] = v;
                mx = std::max(mx, v);
                mn = std::min(mn, v);
            }
            const bool nan = !(mx - mn > 0);
            double mean = 0;
            for (double& v : res) v = nan ? 0 : (v - mn) / (mx - mn), mean += v;
            mean /= static_cast<double>(n);
            std::vector<std::pair<double, int>> apPairs;  // (score, label) over both channels
            for (int64_t p = 0; p < n; ++p) {
                const double v = res[static_cast<std::size_t>(p)];
                const double r1 = nan ? 0 : (v > mean ? 1 : 0), r0 = nan ? 0 : (v <= mean ? 1 : 0);
                const int predicted = r1 > r0 ? 1 : 0;  // torch.max: the first index on ties
                const int target = mask.flatten()[p].item<uint8_t>() ? 1 : 0;
                correct += predicted == target;
                labeled += 1;
                for (int c = 0; c < 2; ++c) {
                    inter[c] += (predicted == c && target == c);
                    uni[c] += (predicted == c || target == c);
                }
                apPairs.emplace_back(nan ? 0 : 1 - v, 1 - target);
                apPairs.emplace_back(nan ? 0 : v, target);
            }
            // sklearn average_precision_score: sum over distinct thresholds of (R_k - R_k-1) P_k.
            std::vector<double> thresholds;
            double positives = 0;
            for (const auto& [score, label] : apPairs) thresholds.push_back(score), positives += label;
            std::sort(thresholds.begin(), thresholds.end(), std::greater<double>());
            thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
            double ap = 0, lastRecall = 0;
            for (double t : thresholds) {
                double tp = 0, fp = 0;
                for (const auto& [score, label] : apPairs)
                    if (score >= t) (label ? tp : fp) += 1;
                ap += (tp / positives - lastRecall) * tp / (tp + fp);
                lastRecall = tp / positives;
            }
            apSum += ap;
            ++images;
        }
        QCOMPARE(meter.images(), int64_t(images));
        QVERIFY(std::abs(meter.pixelAccuracy() - correct / labeled) < 1e-12);
        QVERIFY(std::abs(meter.meanIoU() - 0.5 * (inter[0] / uni[0] + inter[1] / uni[1])) < 1e-12);
        QVERIFY(std::abs(meter.meanAveragePrecision() - apSum / images) < 1e-9);
    }

    // Ground truth on the bundled model: the object's color prompt localises the object.
    void decompositionAndSurgeryBeatRawOnShapes() {
        const std::vector<HeatmapMethod> methods{HeatmapMethod::Decomposition, HeatmapMethod::Surgery, HeatmapMethod::Raw};
        std::vector<LocalisationMeter> meters(methods.size());
        const at::Tensor redundant = m_text->encode({""})[0];
        for (uint64_t i = 0; i < 60; ++i) {
            shapes::Scene s;
            const at::Tensor px = scenePixels(100 + i, &s);
            const std::string color = shapes::attributeValues(shapes::Attribute::Color)[static_cast<std::size_t>(s.labels.value(shapes::Attribute::Color))];
            const at::Tensor t = m_text->encode({"a " + color + " object"})[0];
            const at::Tensor mask = at::from_blob(s.mask.data, {s.mask.rows, s.mask.cols}, at::kByte).clone();
            for (std::size_t m = 0; m < methods.size(); ++m) {
                HeatmapParams p;
                p.method = methods[m];
                p.redundantText = redundant;
                meters[m].add(computeHeatmap(m_model, px, t, p).pixels, mask);
            }
        }
        qInfo("mIoU decomposition %.3f surgery %.3f raw %.3f", meters[0].meanIoU(), meters[1].meanIoU(), meters[2].meanIoU());
        QVERIFY(meters[0].meanIoU() > meters[2].meanIoU() + 0.2);
        QVERIFY(meters[1].meanIoU() > meters[2].meanIoU() + 0.1);
        QVERIFY(meters[0].pointingGame() > 0.7);
    }
};

QTEST_GUILESS_MAIN(TestHeatmap)
#include "test_heatmap.moc"
