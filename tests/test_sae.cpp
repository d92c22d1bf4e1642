// Sparse autoencoders (analysis/sae.h): files written in each project's layout by
// tests/data/sae/make_sae_files.py load and encode to the generator's ports of each project's
// encode; attribution rows sum to the pre-activations (site output and layer:L, with and without
// layer_norm); decomposeResidual's terms sum to the traced residual; active ordering and padding;
// bad files give one-line errors naming the file.
#include "analysis/cache.h"
#include "analysis/sae.h"
#include "analysis/sae_train.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/residual_decompose.h"
#include "shapes/dataset.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::source;

namespace {

std::string data(const std::string& name) {
    return source("tests/data/sae/" + name);
}

const Model& shapesClip() {
    static const Model model = loadModel(source("models/shapes-clip"));
    return model;
}

at::Tensor pixels(int64_t batch, uint64_t seed) {
    at::manual_seed(seed);
    return at::randn({batch, 3, 64, 64});
}

// `count` shapes-world scenes in DIR/world and their exact-convention cache by shapes-clip in
// DIR/cache; the scenes' paths.
std::vector<std::string> shapesCache(const std::string& dir, int64_t count, uint64_t seed) {
    shapes::GenerateParams g;
    g.outDir = dir + "/world";
    g.count = count;
    g.seed = seed;
    shapes::generateDataset(g, {});
    const std::vector<std::string> images = listImages(g.outDir + "/images");
    CacheBuildParams p;
    p.outDir = dir + "/cache";
    buildCache(shapesClip(), images, p, {});
    return images;
}

// The message of what `f` throws as E ("" when it throws nothing or something else).
template <typename E, typename F>
std::string errorOf(F f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (...) {
        return "(another exception)";
    }
    return "";
}

// An SAE's pre-activations at x computed in double from its definition (sae.h, "Encoding").
at::Tensor preInDouble(const SparseAutoencoder& sae, const at::Tensor& xIn) {
    at::Tensor x = xIn.to(at::kDouble);
    if (sae.inputMean.defined()) x = (x - sae.inputMean.to(at::kDouble)) * sae.inputScale;
    if (sae.normalize == SaeNormalize::LayerNorm) {
        x = x - x.mean(-1, true);
        x = x / (x.std(-1, true, true) + 1e-5);
    } else if (sae.normalize == SaeNormalize::ConstantNorm) {
        x = x * std::sqrt(static_cast<double>(x.size(1))) / x.norm(2, 1, true);
    }
    if (sae.subtractDecoderBias) x = x - sae.b_dec.to(at::kDouble);
    return at::matmul(x, sae.W_enc.to(at::kDouble)) + sae.b_enc.to(at::kDouble);
}

// Checks one attribution: shapes, ordering, padding, and every row summing to its pre-activation.
void checkAttribution(const SaeAttribution& a, int64_t components) {
    QCOMPARE(a.attribution.size(2), components + 1);
    QCOMPARE(a.components.back(), std::string("sae_bias"));
    double worst = 0, scale = 1;
    for (int64_t b = 0; b < a.active.size(0); ++b) {
        const int64_t count = (a.latents.select(0, b) != 0).sum().item<int64_t>();
        for (int64_t r = 0; r < a.active.size(1); ++r) {
            const int64_t j = a.active[b][r].item<int64_t>();
            if (r >= count) {
                QCOMPARE(j, int64_t(-1));
                QCOMPARE(a.attribution[b][r].abs().sum().item<double>(), 0.0);
                continue;
            }
            QVERIFY(j >= 0);
            if (r > 0)
                QVERIFY(a.latents[b][a.active[b][r - 1].item<int64_t>()].item<float>() >=
                        a.latents[b][j].item<float>());
            const double pre = a.pre[b][j].item<double>();
            worst = std::max(worst, std::abs(a.attribution[b][r].to(at::kDouble).sum().item<double>() - pre));
            scale = std::max(scale, a.attribution[b][r].abs().max().item<double>());
        }
    }
    QVERIFY2(worst <= 2e-6 * scale * components,
             qPrintable(QString("row sums miss by %1 (scale %2)").arg(worst).arg(scale)));
}

}  // namespace

class TestSae : public QObject {
    Q_OBJECT
private slots:
    void loadsAndEncodesEachLayout_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("width");
        QTest::addColumn<QString>("layout");
        QTest::addColumn<QString>("site");
        QTest::newRow("prisma weights.pt") << "prisma-output"
                                           << "prisma-output" << 64 << "prisma"
                                           << "output";
        QTest::newRow("prisma n_images") << "prisma-layer2"
                                         << "prisma-layer2" << 128 << "prisma"
                                         << "layer:2";
        QTest::newRow("prisma file") << "prisma-layer2/n_images_1000.pt"
                                     << "prisma-layer2" << 128 << "prisma"
                                     << "layer:2";
        QTest::newRow("saelens 6 topk") << "saelens-layer1"
                                        << "saelens-layer1" << 128 << "saelens"
                                        << "layer:1";
        QTest::newRow("saelens 3 relu") << "saelens-output"
                                        << "saelens-output" << 64 << "saelens"
                                        << "output";
        QTest::newRow("msae matryoshka") << "msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth"
                                         << "msae" << 64 << "msae"
                                         << "output";
        QTest::newRow("saelens constant norm") << "saelens-constnorm"
                                               << "saelens-constnorm" << 128 << "saelens"
                                               << "layer:0";
        QTest::newRow("vitscope") << "vitscope-layer3.safetensors"
                                  << "vitscope-layer3" << 128 << "vitscope"
                                  << "layer:3";
    }
    void loadsAndEncodesEachLayout() {
        QFETCH(QString, file);
        QFETCH(QString, name);
        QFETCH(int, width);
        QFETCH(QString, layout);
        QFETCH(QString, site);
        const SparseAutoencoder sae = loadSae(data(file.toStdString()));
        QCOMPARE(sae.layout, layout.toStdString());
        QCOMPARE(sae.site(), site.toStdString());
        QCOMPARE(sae.dIn(), int64_t(width));
        const at::Tensor x = readNpyTensor(data("inputs_" + std::to_string(width) + ".npy"));
        const SaeEncoding e = encodeSae(sae, x);
        const at::Tensor pre = readNpyTensor(data(name.toStdString() + ".pre.npy"));
        const at::Tensor latents = readNpyTensor(data(name.toStdString() + ".latents.npy"));
        QVERIFY(test::sameShape(e.pre, pre));
        QVERIFY2(maxAbsDiff(e.pre, pre) < 1e-5, qPrintable(QString::number(maxAbsDiff(e.pre, pre))));
        QVERIFY2(maxAbsDiff(e.latents, latents) < 1e-5, qPrintable(QString::number(maxAbsDiff(e.latents, latents))));
        QVERIFY((latents != 0).sum().item<int64_t>() > 0);
    }

    // What each layout's settings read as (the generator's choices).
    void layoutSettings() {
        const SparseAutoencoder prisma = loadSae(data("prisma-output"));
        QVERIFY(prisma.activation == SaeActivation::TopKReLU && prisma.k == 8 &&
                prisma.normalize == SaeNormalize::LayerNorm);
        const SparseAutoencoder lens = loadSae(data("saelens-output"));
        QVERIFY(!lens.subtractDecoderBias && lens.activation == SaeActivation::ReLU);
        const SparseAutoencoder msae = loadSae(data("msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth"));
        QCOMPARE(msae.objective, std::string("matryoshka"));
        QCOMPARE(msae.softCap, 30.0);
        QVERIFY(std::abs(msae.inputScale - 0.7) < 1e-12 && msae.inputMean.defined());
        QCOMPARE(loadSae(data("vitscope-layer3.safetensors")).metadata.at("seed"), std::string("7"));
    }

    void vitscopeFileRoundTrips() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("sae.safetensors").toStdString();
        SparseAutoencoder sae = loadSae(data("prisma-output"));
        sae.groups = {16, 64, 128};
        sae.objective = "matryoshka";
        writeSae(path, sae);
        const SparseAutoencoder back = loadSae(path);
        QCOMPARE(back.layout, std::string("vitscope"));
        QCOMPARE(back.site(), std::string("output"));
        QCOMPARE(back.k, 8);
        QVERIFY(back.normalize == SaeNormalize::LayerNorm);
        QVERIFY(back.groups == sae.groups);
        QCOMPARE(maxAbsDiff(back.W_enc, sae.W_enc), 0.0);
        QCOMPARE(maxAbsDiff(back.b_dec, sae.b_dec), 0.0);
        const at::Tensor x = readNpyTensor(data("inputs_64.npy"));
        QCOMPARE(maxAbsDiff(encodeSae(back, x).latents, readNpyTensor(data("prisma-output.latents.npy"))) < 1e-5, true);
        // MSAE's input scaling has no field in vitscope's format: refused, not dropped.
        const std::string err = errorOf<InputError>(
            [&] { writeSae(path, loadSae(data("msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth"))); });
        QVERIFY2(err.find(path) != std::string::npos, err.c_str());
    }

    void badFilesGiveOneLineErrors() {
        const std::string missing = errorOf<FormatError>([] { loadSae(data("bad/missing-key")); });
        QVERIFY2(missing.find("bad/missing-key/weights.pt") != std::string::npos &&
                     missing.find("b_enc") != std::string::npos,
                 missing.c_str());
        const std::string shape = errorOf<FormatError>([] { loadSae(data("bad/wrong-shape")); });
        QVERIFY2(shape.find("bad/wrong-shape") != std::string::npos && shape.find("b_dec is [63]") != std::string::npos,
                 shape.c_str());
        const std::string hook = errorOf<InputError>([] { loadSae(data("bad/mlp-out")); });
        QVERIFY2(hook.find("bad/mlp-out/config.json") != std::string::npos &&
                     hook.find("blocks.1.hook_mlp_out") != std::string::npos,
                 hook.c_str());
        QTemporaryDir dir;
        std::ofstream(dir.filePath("notes.txt").toStdString()) << "no SAE here\n";
        const std::string unknown = errorOf<FormatError>([&] { loadSae(dir.path().toStdString()); });
        QVERIFY2(unknown.find(dir.path().toStdString()) != std::string::npos &&
                     unknown.find("unknown SAE layout") != std::string::npos,
                 unknown.c_str());
        const std::string other =
            errorOf<FormatError>([] { loadSae(source("models/shapes-clip/open_clip_model.safetensors")); });
        QVERIFY2(other.find("unknown SAE layout") != std::string::npos, other.c_str());
        for (const std::string& m : {missing, shape, hook, unknown, other})
            QVERIFY2(m.find('\n') == std::string::npos, m.c_str());
    }

    void residualTermsSumToTheTrace() {
        const Model& model = shapesClip();
        const at::Tensor px = pixels(2, 5);
        const ImageTrace trace = traceImages(model, px);
        for (int layer : {0, 2, 3}) {
            const ResidualDecomposition dec = decomposeResidual(model, px, layer, false);
            std::vector<std::string> names;
            const at::Tensor terms = residualTermsByComponent(dec, &names);
            QCOMPARE(terms.size(1), int64_t(1 + (layer + 1) * (model.vision.heads() + 2)));
            QCOMPARE(names[1], std::string("0.0"));
            QCOMPARE(names.back(), "mlp." + std::to_string(layer));
            const at::Tensor traced = trace.residuals[static_cast<std::size_t>(layer + 1)].select(1, 0);
            QVERIFY2(maxAbsDiff(terms.sum(1), traced) < 1e-4,
                     qPrintable(QString::number(maxAbsDiff(terms.sum(1), traced))));
            const ResidualDecomposition perToken = decomposeResidual(model, px, layer, true);
            QVERIFY(maxAbsDiff(perToken.heads.sum(3), dec.heads) < 1e-5);
        }
        const std::string err = errorOf<InputError>([&] { decomposeResidual(model, px, 4); });
        QVERIFY2(err.find("layer:4") != std::string::npos, err.c_str());
    }

    // Other plain-ViT families the test builds: DINOv2 with LayerScale and registers, timm ViT,
    // HF CLIP; an SAE on DINOv2's residual attributes exactly too.
    void residualOfOtherFamilies() {
        std::vector<test::RandomCase> cases;
        RandomVitSpec s;
        s.layout = RandomLayout::Dinov2, s.imageSize = 28, s.patchSize = 14, s.width = 48, s.layers = 3,
        s.registers = 2, s.layerScale = true, s.seed = 23;
        cases.push_back({"dinov2-layerscale-registers", s, {{"num_heads", 3}}});
        s = {};
        s.layout = RandomLayout::Timm, s.imageSize = 32, s.patchSize = 16, s.width = 32, s.layers = 3, s.seed = 24;
        cases.push_back({"timm-vit", s, {{"num_heads", 2}}});
        s = {};
        s.layout = RandomLayout::HfClip, s.imageSize = 32, s.patchSize = 8, s.width = 48, s.layers = 3, s.embedDim = 20,
        s.seed = 22;
        cases.push_back({"hf-clip",
                         s,
                         {{"vision_config", {{"num_attention_heads", 3}, {"hidden_act", "gelu"}}},
                          {"text_config", {{"num_attention_heads", 1}}}}});
        for (const test::RandomCase& c : cases) {
            const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
            at::manual_seed(c.spec.seed);
            const at::Tensor px = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
            const ImageTrace trace = traceImages(model, px);
            const ResidualDecomposition dec = decomposeResidual(model, px, 1);
            const double err =
                maxAbsDiff(residualTermsByComponent(dec, nullptr).sum(1), trace.residuals[2].select(1, 0));
            QVERIFY2(err < 1e-4, qPrintable(QString("%1: %2").arg(c.name).arg(err)));
            SparseAutoencoder sae;
            sae.path = c.name;
            sae.layer = 1;
            at::manual_seed(1);
            sae.W_enc = at::randn({c.spec.width, 40}), sae.b_enc = at::randn({40}) * 0.1;
            sae.W_dec = sae.W_enc.t().contiguous(), sae.b_dec = at::randn({c.spec.width}) * 0.1;
            sae.activation = SaeActivation::TopKReLU, sae.k = 6, sae.normalize = SaeNormalize::LayerNorm;
            const SaeAttribution a = attributeSaeImages(model, sae, px);
            checkAttribution(a, 1 + 2 * (model.vision.heads() + 2));
        }
    }

    void attributionRowsSumToPreactivations_data() {
        QTest::addColumn<QString>("file");
        QTest::newRow("output, layer_norm, topk") << "prisma-output";
        QTest::newRow("output, layer_norm, no b_dec") << "saelens-output";
        QTest::newRow("output, msae mean and scale") << "msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth";
        QTest::newRow("layer:2, no norm, relu") << "prisma-layer2";
        QTest::newRow("layer:1, no norm, topk rescaled") << "saelens-layer1";
        QTest::newRow("layer:3, layer_norm, topk") << "vitscope-layer3.safetensors";
        QTest::newRow("layer:0 (resid_pre 1), constant norm, relu") << "saelens-constnorm";
    }
    void attributionRowsSumToPreactivations() {
        QFETCH(QString, file);
        const Model& model = shapesClip();
        const SparseAutoencoder sae = loadSae(data(file.toStdString()));
        const at::Tensor px = pixels(3, 11);
        const SaeSiteTerms site = saeSiteTerms(model, sae, px);
        const SaeAttribution a = attributeSaeImages(model, sae, px);
        checkAttribution(a, site.terms.size(1));
        QVERIFY(a.active.size(1) > 0);
        qInfo("%s: %lld active rows, max |row sum - pre| %.3g", qPrintable(file),
              static_cast<long long>(a.active.size(1)), a.maxAbsError);
        // The encoded site is the model's own value: the output, or the traced residual.
        const at::Tensor x =
            sae.atOutput() ? encodeImages(model, px).output
                           : traceImages(model, px).residuals[static_cast<std::size_t>(sae.layer + 1)].select(1, 0);
        QVERIFY(maxAbsDiff(a.pre, preInDouble(sae, x)) < 1e-4);
        // The constant column is the SAE's own: b_enc - b_dec W_enc (- the MSAE mean's share).
        if (!sae.inputMean.defined() && sae.subtractDecoderBias) {
            const int64_t j = a.active[0][0].item<int64_t>();
            const double want = sae.b_enc[j].item<double>() - at::dot(sae.b_dec, sae.W_enc.select(1, j)).item<double>();
            QVERIFY(std::abs(a.attribution[0][0][a.attribution.size(2) - 1].item<double>() - want) < 1e-5);
        }
    }

    // Rows by activation, -1 and zero rows past an image's count, on terms the test builds.
    void activeRowsAreOrderedAndPadded() {
        SparseAutoencoder sae;
        sae.path = "test-sae";
        sae.layout = "vitscope";
        sae.W_enc = at::eye(4).index_select(1, at::tensor({0, 1, 2, 3, 0}, at::kLong)).contiguous();  // [4, 5]
        sae.W_enc.select(1, 4).mul_(-1);
        sae.b_enc = at::zeros({5});
        sae.W_dec = sae.W_enc.t().contiguous();
        sae.b_dec = at::zeros({4});
        validateSae(sae);
        // image 0: x = (3, 1, 2, -1) -> latents 0, 2, 1 active; image 1: x = (-2, 0, 0, 5) -> 3, 4.
        const at::Tensor x = at::tensor({3.f, 1.f, 2.f, -1.f, -2.f, 0.f, 0.f, 5.f}).view({2, 4});
        const at::Tensor terms = at::stack({x * 0.25, x * 0.75}, 1);  // [2, 2, 4]
        const SaeAttribution a = attributeSae(sae, terms, {"a", "b"}, x);
        QCOMPARE(a.active.size(1), int64_t(3));
        QCOMPARE(a.active[0][0].item<int64_t>(), int64_t(0));
        QCOMPARE(a.active[0][1].item<int64_t>(), int64_t(2));
        QCOMPARE(a.active[0][2].item<int64_t>(), int64_t(1));
        QCOMPARE(a.active[1][0].item<int64_t>(), int64_t(3));
        QCOMPARE(a.active[1][1].item<int64_t>(), int64_t(4));
        QCOMPARE(a.active[1][2].item<int64_t>(), int64_t(-1));
        QCOMPARE(a.attribution[1][2].abs().sum().item<double>(), 0.0);
        QCOMPARE(a.attribution[0][0][0].item<float>(), 0.75f);
        QCOMPARE(a.attribution[0][0][1].item<float>(), 2.25f);
        QCOMPARE(a.attribution[1][1][1].item<float>(), 1.5f);
        checkAttribution(a, 2);
    }

    // A latent's token map sums to the heads' columns of its attribution row.
    void tokenMapSumsToTheHeadsShare() {
        const Model& model = shapesClip();
        const at::Tensor px = pixels(2, 17);
        for (const char* file : {"prisma-output", "vitscope-layer3.safetensors"}) {
            const SparseAutoencoder sae = loadSae(data(file));
            const SaeAttribution a = attributeSaeImages(model, sae, px);
            const int64_t j = a.active[1][0].item<int64_t>();
            const at::Tensor map = saeLatentTokenMap(model, sae, px, j);
            QCOMPARE(map.size(1), int64_t(1 + 8 * 8));
            double heads = 0;
            for (std::size_t c = 0; c < a.components.size(); ++c) {
                const std::string& n = a.components[c];
                if (n.find('.') != std::string::npos && std::isdigit(static_cast<unsigned char>(n[0])))
                    heads += a.attribution[1][0][static_cast<int64_t>(c)].item<double>();
            }
            QVERIFY2(std::abs(map[1].sum().item<double>() - heads) < 1e-4, file);
        }
    }

    // MSAE's naming: a text equal to a latent's postprocessed decoder direction names it (cosine 1).
    void namesLatentsByDecoderDirections() {
        const SparseAutoencoder sae = loadSae(data("msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth"));
        at::manual_seed(3);
        at::Tensor texts = at::randn({6, 64});
        texts[4] = (sae.W_dec[9] / sae.inputScale + sae.inputMean) * 2.0;
        const std::vector<SaeLatentName> names = nameSaeLatents(sae, texts, {9, 10}, 3);
        QCOMPARE(names.size(), std::size_t(2));
        QCOMPARE(names[0].texts[0], int64_t(4));
        QVERIFY(std::abs(names[0].scores[0] - 1.0f) < 1e-5);
        QVERIFY(names[0].scores[1] <= names[0].scores[0]);
        const at::Tensor sim = saeConceptSimilarity(sae, texts);
        QCOMPARE(sim.sizes().vec(), (std::vector<int64_t>{6, 128}));
        QCOMPARE(names[1].texts[0], sim.select(1, 10).argmax().item<int64_t>());
    }

    // A latent's top images over a cache: the cached outputs encoded, as encoding the images gives.
    void topImagesFromACache() {
        QTemporaryDir dir;
        const std::vector<std::string> images = shapesCache(dir.path().toStdString(), 12, 77);
        const Model& model = shapesClip();
        const DatasetCache cache(dir.path().toStdString() + "/cache");
        const SparseAutoencoder sae = loadSae(data("prisma-output"));
        at::NoGradGuard guard;
        const at::Tensor latents =
            encodeSae(sae, encodeImages(model, loadAndPreprocess(images, model.preprocess)).output).latents;
        const int64_t j = (latents != 0).sum(0).argmax().item<int64_t>();
        const SaeTopImages top = topSaeImages(cache, sae, j, 3);
        QCOMPARE(top.rows.size(), std::size_t(3));
        const auto want = at::topk(latents.select(1, j), 3);
        for (int i = 0; i < 3; ++i) {
            QVERIFY(std::abs(top.values[static_cast<std::size_t>(i)] - std::get<0>(want)[i].item<float>()) < 1e-5);
            QCOMPARE(top.paths[static_cast<std::size_t>(i)],
                     images[static_cast<std::size_t>(top.rows[static_cast<std::size_t>(i)])]);
        }
        QVERIFY(top.values[0] > 0 && top.values[0] >= top.values[2]);
        const std::string err = errorOf<InputError>([&] { topSaeImages(cache, loadSae(data("prisma-layer2")), 0, 3); });
        QVERIFY2(err.find("layer:2") != std::string::npos, err.c_str());
    }

    // A TopK SAE trained here on a small shapes-world cache at the output, and the bundled
    // models/shapes-clip/sae/ files: attributing scenes splits every active latent's
    // pre-activation exactly (rows sum to it within 1e-4), and the latents are encodeSae of the
    // model's own value at the site.
    void trainedSaeAttributesScenes() {
        QTemporaryDir dir;
        const std::vector<std::string> images = shapesCache(dir.path().toStdString(), 32, 31);
        const Model& model = shapesClip();
        SaeTrainParams t;
        t.k = 4, t.width = 32, t.epochs = 3, t.batch = 8, t.lr = 1e-3, t.seed = 3;
        t.out = dir.path().toStdString() + "/tiny.safetensors";
        const SaeTrainResult trained =
            trainSae(saeActivations(DatasetCache(dir.path().toStdString() + "/cache"), "output", nullptr, {}), t, {});
        QCOMPARE(trained.steps, int64_t(12));  // 3 epochs x 32 / 8
        const std::vector<std::string> files = {t.out, source("models/shapes-clip/sae/topk-output.safetensors"),
                                                source("models/shapes-clip/sae/matryoshka-output.safetensors"),
                                                source("models/shapes-clip/sae/topk-layer2.safetensors")};
        const at::Tensor px = loadAndPreprocess({images.begin(), images.begin() + 6}, model.preprocess);
        at::NoGradGuard guard;
        for (const std::string& file : files) {
            const SparseAutoencoder sae = loadSae(file);
            const SaeAttribution a = attributeSaeImages(model, sae, px);
            QVERIFY2(a.active.size(1) > 0, file.c_str());
            int64_t rows = 0;
            for (int64_t b = 0; b < a.active.size(0); ++b)
                for (int64_t r = 0; r < a.active.size(1); ++r) {
                    const int64_t j = a.active[b][r].item<int64_t>();
                    if (j < 0) continue;
                    const double sum = a.attribution[b][r].to(at::kDouble).sum().item<double>();
                    QVERIFY2(std::abs(sum - a.pre[b][j].item<double>()) <= 1e-4, file.c_str());
                    ++rows;
                }
            QCOMPARE(rows, (a.latents != 0).sum().item<int64_t>());
            const at::Tensor x =
                sae.atOutput() ? encodeImages(model, px).output
                               : traceImages(model, px).residuals[static_cast<std::size_t>(sae.layer + 1)].select(1, 0);
            const SaeEncoding e = encodeSae(sae, x);
            QVERIFY2(maxAbsDiff(a.latents, e.latents) < 1e-4, file.c_str());
            QVERIFY2(maxAbsDiff(a.pre, e.pre) < 1e-4, file.c_str());
        }
    }

    // decodeSae undoes each encoding step: through a dictionary that passes its input on
    // (W_enc = [I, -I], W_dec = [I; -I], ReLU: ReLU(y) - ReLU(-y) = y), decoding the latents gives
    // the input back through the inverse steps, computed here in double from sae.h's definition.
    void decodeUndoesTheEncoding() {
        const int64_t d = 6;
        SparseAutoencoder sae;
        sae.path = "pass-through";
        sae.W_enc = at::cat({at::eye(d), -at::eye(d)}, 1);
        sae.W_dec = sae.W_enc.t().contiguous();
        sae.b_enc = at::zeros({2 * d});
        sae.b_dec = at::linspace(-0.5, 0.5, d);
        at::manual_seed(5);
        const at::Tensor x = at::randn({4, d}) * 3 + 1;
        const at::Tensor xd = x.to(at::kDouble);
        for (SaeNormalize n : {SaeNormalize::None, SaeNormalize::LayerNorm, SaeNormalize::ConstantNorm})
            for (bool msae : {false, true}) {
                sae.normalize = n;
                sae.inputMean = msae ? at::linspace(0.2, -0.3, d) : at::Tensor();
                sae.inputScale = msae ? 0.7 : 1.0;
                at::Tensor y = msae ? (xd - sae.inputMean.to(at::kDouble)) * 0.7 : xd;
                at::Tensor want = y;  // normalise, then the inverse with the same statistics
                if (n == SaeNormalize::LayerNorm) {
                    const at::Tensor mu = y.mean(1, true), sd = (y - mu).std(1, true, true);
                    want = (y - mu) / (sd + 1e-5) * sd + mu;
                }
                if (msae) want = want / 0.7 + sae.inputMean.to(at::kDouble);
                const at::Tensor got = decodeSae(sae, encodeSae(sae, x).latents, x);
                QVERIFY(maxAbsDiff(got, want) < 1e-5);
            }
        // SAELens's apply_b_dec_to_input off: b_dec is added on decoding only.
        sae.normalize = SaeNormalize::None, sae.inputMean = at::Tensor(), sae.inputScale = 1.0;
        sae.subtractDecoderBias = false;
        QVERIFY(maxAbsDiff(decodeSae(sae, encodeSae(sae, x).latents, x), xd + sae.b_dec.to(at::kDouble)) < 1e-5);
        QVERIFY(!errorOf<InputError>([&] { decodeSae(sae, at::zeros({4, d}), x); }).empty());
    }

    void refusesWrongSite() {
        const SparseAutoencoder sae = loadSae(data("prisma-layer2"));
        SparseAutoencoder wide = sae;
        wide.layer = 7;
        const std::string err = errorOf<InputError>([&] { attributeSaeImages(shapesClip(), wide, pixels(1, 1)); });
        QVERIFY2(err.find("block 7") != std::string::npos, err.c_str());
    }
};

QTEST_GUILESS_MAIN(TestSae)
#include "test_sae.moc"
