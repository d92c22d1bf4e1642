// Parity with ../shared/oracle, written by OpenAI's reference CLIP code and torchvision. The models
// run on VITSCOPE_TEST_DEVICE (bench/run-gpu-check.sh sets cuda); the references stay on the CPU.
#include "image/preprocess.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "error.h"
#include "test_util.h"

#include <QtTest/QtTest>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::oracle;
using vitscope::test::testModel;

class TestParity : public QObject {
    Q_OBJECT

private slots:
    void clipLayouts_data() {
        QTest::addColumn<QString>("spec");
        QTest::newRow("openai-torchscript") << QString::fromStdString(oracle("clip-tiny/openai/ViT-tiny.pt"));
        QTest::newRow("open_clip-f16-safetensors") << QString::fromStdString(oracle("clip-tiny/open_clip"));
        QTest::newRow("hf-directory") << QString::fromStdString(oracle("clip-tiny/hf"));
    }

    void clipLayouts() {
        QFETCH(QString, spec);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        QVERIFY(model.isClip());
        const at::Tensor pixels = readNpyTensor(oracle("clip-tiny/pixels.npy"));
        const at::Tensor images = encodeImages(model, pixels).output.cpu();
        const double imageErr = maxAbsDiff(images, readNpyTensor(oracle("clip-tiny/image_embeds.npy")));
        qInfo("image embeds max abs diff %.3g", imageErr);
        QVERIFY(imageErr < 1e-4);

        const at::Tensor tokens = readNpyTensor(oracle("clip-tiny/tokens.npy"));
        const at::Tensor texts = encodeTexts(model, tokens).cpu();
        const double textErr = maxAbsDiff(texts, readNpyTensor(oracle("clip-tiny/text_embeds.npy")));
        qInfo("text embeds max abs diff %.3g", textErr);
        QVERIFY(textErr < 1e-4);

        const at::Tensor in = images / images.norm(2, 1, true);
        const at::Tensor tn = texts / texts.norm(2, 1, true);
        const at::Tensor cosines = at::matmul(in, tn.t()).to(at::kDouble);
        const at::Tensor expected = readNpyTensor(oracle("clip-tiny/logits_per_image.npy")).to(at::kDouble);
        // The oracle's logit scale, fitted; the F16 open_clip file stores it rounded to F16.
        const double scale = (expected * cosines).sum().item<double>() / (cosines * cosines).sum().item<double>();
        QVERIFY(maxAbsDiff(scale * cosines, expected) < 1e-3);
        const double tolerance = spec.contains("open_clip") ? 2e-2 : 1e-4;
        QVERIFY(std::abs(model.logitScale - scale) < tolerance * scale);
    }

    void decompositionTerms_data() { clipLayouts_data(); }

    void decompositionTerms() {
        QFETCH(QString, spec);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        const at::Tensor pixels = readNpyTensor(oracle("clip-tiny/pixels.npy"));
        DecomposeOptions opts;
        opts.tokens = true;
        const Decomposition d = decomposeImages(model, pixels, opts);
        const std::pair<at::Tensor, const char*> terms[] = {{d.heads, "decomp_heads.npy"},
                                                            {d.attnBias, "decomp_attn_bias.npy"},
                                                            {d.mlps, "decomp_mlps.npy"},
                                                            {d.embed, "decomp_embed.npy"},
                                                            {d.postBias, "decomp_post_bias.npy"}};
        for (const auto& [term, file] : terms) {
            const at::Tensor expected = readNpyTensor(oracle(std::string("clip-tiny/") + file));
            QVERIFY2(vitscope::test::sameShape(term, expected), file);
            const double err = maxAbsDiff(term, expected);
            qInfo("%s max abs diff %.3g", file, err);
            QVERIFY2(err < 1e-4, file);
        }
        QVERIFY(d.maxAbsError < 1e-4);
        // Per-head terms without tokens are the per-token terms summed over tokens.
        const Decomposition pooled = decomposeImages(model, pixels);
        QCOMPARE(pooled.heads.sizes().vec(), (std::vector<int64_t>{3, 3, 2, 32}));
        QVERIFY(maxAbsDiff(pooled.heads, d.heads.sum(3)) < 1e-5);
    }

    void preprocessingMatchesReference() {
        const Model model = testModel(oracle("clip-tiny/open_clip"));
        const at::Tensor expected = readNpyTensor(oracle("clip-tiny/pixels.npy"));
        const at::Tensor pixels = loadAndPreprocess(
            {oracle("clip-tiny/image0.png"), oracle("clip-tiny/image1.png"), oracle("clip-tiny/image2.png")},
            model.preprocess);
        QVERIFY(vitscope::test::sameShape(pixels, expected));
        // One 8-bit step is 1/255/std ~ 0.015 after normalisation; PIL's resampler is reproduced.
        const double err = maxAbsDiff(pixels, expected);
        qInfo("preprocessed pixels max abs diff %.3g", err);
        QVERIFY(err < 0.016);
        at::NoGradGuard guard;
        const double cosine = vitscope::test::minRowCosine(encodeImages(model, pixels).output,
                                                           readNpyTensor(oracle("clip-tiny/image_embeds.npy")));
        qInfo("embeddings from image files: min cosine %.6f", cosine);
        QVERIFY(cosine > 0.999);
    }

    void vitTiny_data() {
        QTest::addColumn<QString>("spec");
        QTest::newRow("torchvision-pth") << QString::fromStdString(oracle("vit-tiny/torchvision_vit.pth"));
        QTest::newRow("timm-safetensors") << QString::fromStdString(oracle("vit-tiny/timm_vit.safetensors"));
    }

    void vitTiny() {
        QFETCH(QString, spec);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        QCOMPARE(model.vision.heads(), 2);
        const at::Tensor pixels = readNpyTensor(oracle("vit-tiny/pixels.npy"));
        const VisionResult r = encodeImages(model, pixels);
        const double featErr = maxAbsDiff(r.output, readNpyTensor(oracle("vit-tiny/features.npy")));
        const double logitErr = maxAbsDiff(r.logits, readNpyTensor(oracle("vit-tiny/logits.npy")));
        qInfo("features %.3g logits %.3g", featErr, logitErr);
        QVERIFY(featErr < 1e-4);
        QVERIFY(logitErr < 1e-4);
        const Decomposition d = decomposeImages(model, pixels, {true, Convention::Exact});
        QVERIFY(d.maxAbsError < 1e-4);
        QVERIFY(maxAbsDiff(d.output, r.output) < 1e-6);
    }

    // SigLIP vision towers (timm's and Hugging Face's code wrote the oracle): the pooled
    // embedding, and both exact decompositions summing to it.
    void siglipTiny_data() {
        QTest::addColumn<QString>("spec");
        QTest::newRow("timm") << QString::fromStdString(oracle("siglip-tiny"));
        QTest::newRow("hf") << QString::fromStdString(oracle("siglip-tiny/hf"));
    }

    void siglipTiny() {
        QFETCH(QString, spec);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        QCOMPARE(model.info.family, std::string("siglip"));
        QVERIFY(!model.vision.hasClassToken());
        QCOMPARE(model.vision.pool.heads, 2);
        QVERIFY(model.preprocess.squash);
        QCOMPARE(model.preprocess.mean[0], 0.5f);
        const at::Tensor pixels = readNpyTensor(oracle("siglip-tiny/pixels.npy"));
        const at::Tensor expected = readNpyTensor(oracle("siglip-tiny/features.npy"));
        const VisionResult r = encodeImages(model, pixels);
        const double rel = maxAbsDiff(r.output, expected) / expected.abs().max().item<double>();
        qInfo("pooled embedding: max relative error %.3g", rel);
        QVERIFY(rel < 1e-4);
        for (bool tokens : {false, true}) {
            const Decomposition d = decomposeImages(model, pixels, {tokens, Convention::Exact});
            QVERIFY(d.pooled());
            QVERIFY2(d.maxAbsError < 1e-4, std::to_string(d.maxAbsError).c_str());
            QVERIFY(maxAbsDiff(d.output, r.output) < 1e-6);
            const int64_t n = model.vision.tokensFor(32);
            QCOMPARE(n, int64_t{16});
            QCOMPARE(d.heads.sizes().vec(), tokens ? (std::vector<int64_t>{3, 2, 2, n, 64}) : (std::vector<int64_t>{3, 2, 2, 64}));
            QCOMPARE(d.poolHeads.sizes().vec(), tokens ? (std::vector<int64_t>{3, 2, n, 64}) : (std::vector<int64_t>{3, 2, 64}));
        }
    }

    // Swin (timm's and torchvision's code wrote the oracle): pooled features and logits, and the
    // exact decomposition (per head and per token) summing to the features.
    void swinTiny_data() {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("dir");
        QTest::addColumn<QString>("layout");
        QTest::newRow("timm") << QString::fromStdString(oracle("swin-timm")) << "swin-timm" << "timm";
        QTest::newRow("torchvision") << QString::fromStdString(oracle("swin-tiny/torchvision_swin.pth")) << "swin-tiny" << "torchvision";
    }

    void swinTiny() {
        QFETCH(QString, spec);
        QFETCH(QString, dir);
        QFETCH(QString, layout);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        QCOMPARE(model.info.family, std::string("swin"));
        QCOMPARE(model.info.layout, layout.toStdString());
        const VisionTower& v = model.vision;
        QVERIFY(v.hierarchical());
        QCOMPARE(v.swin.window, 4);
        QCOMPARE(v.layers(), 6);
        QCOMPARE(headsPerLayer(v), (std::vector<int>{2, 2, 4, 4, 8, 8}));  // oracle.json: heads 2, 4, 8; depths 2, 2, 2
        QCOMPARE(v.width, 128);
        // Without a config (torchvision's .pth), the nearest size to 224 the windows tile: 4 x 4 x 4 = 64 px units.
        QCOMPARE(model.preprocess.imageSize, layout == "timm" ? 64 : 256);
        const std::string d = dir.toStdString();
        const at::Tensor pixels = readNpyTensor(oracle(d + "/pixels.npy"));
        const at::Tensor features = readNpyTensor(oracle(d + "/features.npy"));
        const at::Tensor logits = readNpyTensor(oracle(d + "/logits.npy"));
        const VisionResult r = encodeImages(model, pixels);
        const double featRel = maxAbsDiff(r.output, features) / features.abs().max().item<double>();
        const double logitRel = maxAbsDiff(r.logits, logits) / logits.abs().max().item<double>();
        qInfo("%s: features rel %.3g, logits rel %.3g", qPrintable(layout), featRel, logitRel);
        QVERIFY(featRel < 1e-4);
        QVERIFY(logitRel < 1e-4);
        for (bool tokens : {false, true}) {
            const Decomposition dec = decomposeImages(model, pixels, {tokens, Convention::Exact});
            qInfo("tokens %d: sum identity %.3g", int(tokens), dec.maxAbsError);
            QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
            QVERIFY(maxAbsDiff(dec.output, features) / features.abs().max().item<double>() < 1e-4);
            const int64_t b = pixels.size(0);
            QCOMPARE(dec.heads.sizes().vec(), tokens ? (std::vector<int64_t>{b, 6, 8, 256, 128}) : (std::vector<int64_t>{b, 6, 8, 128}));
            // Heads a layer lacks are zero.
            QCOMPARE(dec.heads.select(1, 0).narrow(1, 2, 6).abs().max().item<double>(), 0.0);
        }
    }

    // MaxViT (timm's TF-ported code and torchvision's wrote the oracle): the head's pre-logits
    // (features), the normed pool the decomposition sums to, logits; the decomposition.
    void maxvitTiny_data() {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("dir");
        QTest::addColumn<QString>("layout");
        QTest::newRow("timm") << QString::fromStdString(oracle("maxvit-timm")) << "maxvit-timm" << "timm";
        QTest::newRow("torchvision") << QString::fromStdString(oracle("maxvit-tiny/torchvision_maxvit.pth")) << "maxvit-tiny" << "torchvision";
    }

    void maxvitTiny() {
        QFETCH(QString, spec);
        QFETCH(QString, dir);
        QFETCH(QString, layout);
        at::NoGradGuard guard;
        const Model model = testModel(spec.toStdString());
        QCOMPARE(model.info.family, std::string("maxvit"));
        QCOMPARE(model.info.layout, layout.toStdString());
        const VisionTower& v = model.vision;
        // oracle.json: block channels 32, 64; layers 1, 2; two attention units per block.
        QCOMPARE(v.layers(), 6);
        QCOMPARE(v.maxvit.stages.size(), std::size_t(2));
        QCOMPARE(v.maxvit.partition, layout == "timm" ? 2 : 4);
        const std::string d = dir.toStdString();
        const at::Tensor pixels = readNpyTensor(oracle(d + "/pixels.npy"));
        auto rel = [](const at::Tensor& a, const at::Tensor& b) { return maxAbsDiff(a, b) / b.abs().max().item<double>(); };
        const VisionResult r = encodeImages(model, pixels);
        const at::Tensor pooled = readNpyTensor(oracle(d + "/pooled.npy"));
        const double featRel = rel(r.features, readNpyTensor(oracle(d + "/features.npy")));
        const double pooledRel = rel(r.output, pooled), logitRel = rel(r.logits, readNpyTensor(oracle(d + "/logits.npy")));
        qInfo("%s: pre-logits rel %.3g, pooled rel %.3g, logits rel %.3g", qPrintable(layout), featRel, pooledRel, logitRel);
        QVERIFY(featRel < 1e-4 && pooledRel < 1e-4 && logitRel < 1e-4);
        for (bool tokens : {false, true}) {
            const Decomposition dec = decomposeImages(model, pixels, {tokens, Convention::Exact});
            qInfo("tokens %d: sum identity %.3g", int(tokens), dec.maxAbsError);
            QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
            QVERIFY(rel(dec.output, pooled) < 1e-4);
            QCOMPARE(dec.convs.sizes().vec(), (std::vector<int64_t>{pixels.size(0), 3, 64}));
        }
    }

    // The checkpoints' own resampling filter: Hugging Face's preprocessor_config "resample" 2 is
    // PIL's BILINEAR (siglip-tiny/hf says so), timm's pretrained_cfg says "bicubic". The filter
    // is PIL's antialiased triangle: a 2-pixel ramp upsampled to 4 gives 0, 64, 191, 255 (worked
    // out by hand from PIL's coefficient rule), and a flat image stays flat at any scale.
    void siglipResampleFilter() {
        QVERIFY(loadModel(oracle("siglip-tiny/hf")).preprocess.bilinear);
        QVERIFY(!loadModel(oracle("siglip-tiny")).preprocess.bilinear);
        cv::Mat ramp(1, 2, CV_8UC3);
        ramp.at<cv::Vec3b>(0, 0) = {0, 0, 0};
        ramp.at<cv::Vec3b>(0, 1) = {255, 255, 255};
        const cv::Mat up = resizeAntialias(ramp, 4, 1, true);
        QCOMPARE(int(up.at<cv::Vec3b>(0, 0)[0]), 0);
        QCOMPARE(int(up.at<cv::Vec3b>(0, 1)[0]), 64);
        QCOMPARE(int(up.at<cv::Vec3b>(0, 2)[0]), 191);
        QCOMPARE(int(up.at<cv::Vec3b>(0, 3)[0]), 255);
        QVERIFY(cv::norm(up, resizeAntialias(ramp, 4, 1, false), cv::NORM_INF) > 0);  // bicubic overshoots differently
        const cv::Mat flat(37, 53, CV_8UC3, cv::Scalar(10, 120, 240));
        for (const auto& [w, h] : {std::pair{16, 16}, std::pair{128, 90}}) {
            const cv::Mat r = resizeAntialias(flat, w, h, true);
            QCOMPARE(cv::norm(r, cv::Mat(h, w, CV_8UC3, cv::Scalar(10, 120, 240)), cv::NORM_INF), 0.0);
        }
    }

    // open_clip stores the same timm tower under visual.trunk. (no text tower here: the layout's
    // vision half is what this file can show; the text half is tested in test_decompose).
    void siglipOpenClipTrunkNames() {
        at::NoGradGuard guard;
        const StateDict timm = readSafetensorsFloat(oracle("siglip-tiny/model.safetensors"));
        StateDict sd;
        for (const auto& [name, t] : timm) sd["visual.trunk." + name] = t;
        try {
            buildModel(sd, nlohmann::json(), "trunk.safetensors");
            QFAIL("an open_clip SigLIP without its text tower loaded");
        } catch (const ModelError& e) {
            QVERIFY2(std::string(e.what()).find("text.token_embedding.weight") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestParity)
#include "test_parity.moc"
