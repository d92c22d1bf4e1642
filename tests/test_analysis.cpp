// Dataset cache (content, resumption after cancel and torn writes, skipped images, bad caches),
// component names, TextSpan, property scores and retrieval, each checked against a naive
// reference written here or against the engine's own decomposition.
#include "analysis/cache.h"
#include "analysis/ablation.h"
#include "analysis/alignment.h"
#include "analysis/components.h"
#include "analysis/labels.h"
#include "analysis/session.h"
#include "analysis/property.h"
#include "analysis/retrieval.h"
#include "analysis/text_embed.h"
#include "analysis/textspan.h"
#include "analysis/waterbirds.h"
#include "error.h"
#include "explore/explorer.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/tensor_io.h"
#include "model/export.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "resources.h"
#include "shapes/dataset.h"
#include "test_util.h"

#include <QtTest/QtTest>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <fstream>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
namespace fs = std::filesystem;

namespace {

std::string shapesClip() { return test::source("models/shapes-clip"); }

std::vector<std::string> makeImages(const QTemporaryDir& dir, int count) {
    shapes::GenerateParams p;
    p.outDir = dir.path().toStdString() + "/world";
    p.count = count;
    p.seed = 4242;
    shapes::generateDataset(p, {});
    return listImages(p.outDir + "/images");
}

// Naive TextSpan: explicit deflation of the data matrix and of every text.
// clip_text_span's replace_with_iterative_removal (compute_complete_text_set.py), step by step
// in double precision: SVD of the uncentred data, texts projected with vh^T (vh vh^T)^-1 vh,
// then per step the std over images of data @ texts^T, argmax, and removal of the pick from the
// data and from every text with text_norm = t.t. Returns the picks and `reconstruct`.
std::pair<std::vector<int>, at::Tensor> referenceTextSpan(at::Tensor data, at::Tensor texts, int iters, int rank) {
    data = data.to(at::kDouble);
    texts = texts.to(at::kDouble);
    const auto svd = at::linalg_svd(data, false);
    const at::Tensor vh = std::get<2>(svd).narrow(0, 0, std::min<int64_t>(rank, std::get<2>(svd).size(0)));
    texts = at::matmul(at::matmul(vh.t(), at::matmul(at::inverse(at::matmul(vh, vh.t())), vh)), texts.t()).t();
    const at::Tensor mean = data.mean(0, true);
    data = data - mean;
    at::Tensor reconstruct = mean.expand_as(data).clone();
    std::vector<int> picks;
    for (int i = 0; i < iters; ++i) {
        const at::Tensor projection = at::matmul(data, texts.t());
        const int top = static_cast<int>(projection.std(0).argmax().item<int64_t>());
        picks.push_back(top);
        const at::Tensor t = texts[top];
        const at::Tensor norm = at::dot(t, t);
        const at::Tensor along = (at::matmul(data, t) / norm).unsqueeze(1) * t.unsqueeze(0);
        reconstruct = reconstruct + along;
        data = data - along;
        texts = texts - (at::matmul(texts, t) / norm).unsqueeze(1) * t.unsqueeze(0);
    }
    return {picks, reconstruct};
}

// A random-weight Hugging Face SigLIP (image and text towers) with the SentencePiece model of
// tests/data/siglip-spm beside it: the layout users have, at a size the tests can afford.
std::string makeSiglipDir(const QTemporaryDir& dir) {
    RandomVitSpec s;
    s.layout = RandomLayout::HfSiglip, s.imageSize = 32, s.patchSize = 8, s.width = 64, s.layers = 3, s.textWidth = 64;
    s.textLayers = 1, s.contextLength = 16, s.vocabSize = 90, s.seed = 31;
    const std::string out = dir.path().toStdString() + "/siglip";
    fs::create_directories(out);
    writeSafetensorsTensors(out + "/model.safetensors", randomVitStateDict(s));
    std::ofstream(out + "/config.json")
        << R"({"model_type": "siglip", "vision_config": {"num_attention_heads": 2, "image_size": 32, "patch_size": 8},)"
        << R"( "text_config": {"num_attention_heads": 2, "max_position_embeddings": 16}})";
    fs::copy_file(test::source("tests/data/siglip-spm/spiece.model"), out + "/spiece.model");
    return out;
}

}  // namespace

class TestAnalysis : public QObject {
    Q_OBJECT

private slots:
    // The name the window and status line give a model: what users call it, not a layout folder.
    void modelsAreNamedAsUsersKnowThem() {
        QCOMPARE(modelDisplayName("/home/u/.cache/huggingface/hub/models--openai--clip-vit-base-patch16/snapshots/57c216476e/"),
                 std::string("openai/clip-vit-base-patch16"));
        QCOMPARE(modelDisplayName("/data/oracle/clip-tiny/hf"), std::string("clip-tiny/hf"));
        QCOMPARE(modelDisplayName("/data/oracle/clip-tiny/hf/model.safetensors"), std::string("clip-tiny/hf"));
        QCOMPARE(modelDisplayName("/models/ViT-B-16.pt"), std::string("ViT-B-16"));
        QCOMPARE(modelDisplayName("/work/models/shapes-clip/"), std::string("shapes-clip"));
        QCOMPARE(modelDisplayName("/ckpt/deit_small/pytorch_model.bin"), std::string("deit_small"));
    }

    // Waterbirds against numpy ports of both references' evaluation code on the same fixed arrays
    // (tests/data/waterbirds/make_tiny.py): clip_text_span's full_accuracy with Baseline and
    // Replaced (the listed heads, every head outside the last 4 layers, every MLP and the
    // embedding mean-ablated), and vit-decompose's variance_attributed ranking, top-3
    // mean-ablation, group accuracies, worst and average group.
    void waterbirdsMatchesReferencePorts() {
        const std::string dir = vitscope::test::source("tests/data/waterbirds/port");
        const at::Tensor attns = readNpyTensor(dir + "/attns.npy"), mlps = readNpyTensor(dir + "/mlps.npy");  // [b, L, H, d], [b, L + 1, d]
        const at::Tensor labels = readNpyTensor(dir + "/labels.npy").to(at::kLong);
        const nlohmann::json expected = nlohmann::json::parse(readFileText(dir + "/expected.json"));
        const int64_t b = attns.size(0), layers = attns.size(1), heads = attns.size(2);
        std::vector<int> y, place;
        for (int64_t i = 0; i < b; ++i) y.push_back(static_cast<int>(labels[i][0].item<int64_t>())), place.push_back(static_cast<int>(labels[i][1].item<int64_t>()));
        ZeroShotClassifier classifier{readNpyTensor(dir + "/classifier.npy").t().contiguous(), {0, 1}};
        auto termOf = [&](const Component& c) {
            if (c.kind == Component::Kind::Head) return attns.select(1, c.layer).select(1, c.head);
            return mlps.select(1, c.kind == Component::Kind::Embed ? 0 : c.layer + 1);
        };
        const at::Tensor output = attns.sum({1, 2}) + mlps.sum(1);
        auto ablate = [&](const std::vector<Component>& cs) {
            at::Tensor out = output.clone();
            for (const Component& c : cs) out += termOf(c).mean(0, true) - termOf(c);
            return waterbirdsAccuracy(predictClasses(out, classifier), y, place);
        };
        auto compareTextspan = [&](const WaterbirdsAccuracy& a, const nlohmann::json& e) {
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j) {
                    const std::string key = "(" + std::to_string(i) + ", " + std::to_string(j) + ")";
                    QVERIFY2(std::abs(100 * a.group[static_cast<std::size_t>(2 * i + j)] - e[key].get<double>()) < 1e-9, key.c_str());
                }
            QVERIFY(std::abs(100 * a.full - e["full"].get<double>()) < 1e-9);
        };
        compareTextspan(waterbirdsAccuracy(predictClasses(output, classifier), y, place), expected["textspan"]["Baseline"]);
        std::vector<Component> listed;
        for (const auto& h : expected["textspan"]["heads"]) {
            const std::string n = h.get<std::string>();
            listed.push_back({Component::Kind::Head, std::stoi(n.substr(0, n.find('.'))), std::stoi(n.substr(n.find('.') + 1))});
        }
        const std::vector<Component> replaced =
            textspanReplacedComponents(static_cast<int>(layers), std::vector<int>(static_cast<std::size_t>(layers), static_cast<int>(heads)), listed, 4);
        QCOMPARE(replaced.size(), std::size_t(2 + 2 * heads + 1 + layers));  // listed, layers 0-1, embed, MLPs
        compareTextspan(ablate(replaced), expected["textspan"]["Replaced"]);

        // vit-decompose: vitscope's property score is the correlation; the reference divides a
        // biased covariance by unbiased standard deviations, (n - 1) / n times it (same ranking).
        std::vector<Component> all;
        for (int l = 0; l < layers; ++l)
            for (int h = 0; h < heads; ++h) all.push_back({Component::Kind::Head, l, h});
        all.push_back({Component::Kind::Embed, -1, -1});
        for (int l = 0; l < layers; ++l) all.push_back({Component::Kind::Mlp, l, -1});
        const at::Tensor qs = propertyBasis(readNpyTensor(dir + "/spurious.npy")), qc = propertyBasis(readNpyTensor(dir + "/core.npy"));
        std::vector<std::pair<double, Component>> scored;
        for (const Component& c : all) scored.push_back({propertyScore(termOf(c), output, qs) - propertyScore(termOf(c), output, qc), c});
        std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& x) { return a.first > x.first; });
        std::vector<Component> top;
        for (std::size_t k = 0; k < 3; ++k) {
            QCOMPARE(scored[k].second.name(), expected["vit_decompose"]["top"][k].get<std::string>());
            QVERIFY(std::abs(scored[k].first * (b - 1) / b - expected["vit_decompose"]["score_difference"][k].get<double>()) < 1e-5);
            top.push_back(scored[k].second);
        }
        auto compareGroups = [&](const WaterbirdsAccuracy& a, const nlohmann::json& e) {
            for (std::size_t g = 0; g < 4; ++g) QVERIFY(std::abs(a.group[g] - e[waterbirdsGroupNames()[g]].get<double>()) < 1e-9);
            QVERIFY(std::abs(a.worstGroup - e["worst_group"].get<double>()) < 1e-9);
            QVERIFY(std::abs(a.averageGroup - e["average_group"].get<double>()) < 1e-9);
        };
        compareGroups(waterbirdsAccuracy(predictClasses(output, classifier), y, place), expected["vit_decompose"]["before"]);
        compareGroups(ablate(top), expected["vit_decompose"]["after"]);
    }

    // The two layouts' readers: group-DRO's test split with its (y, place), vit-decompose's class
    // folders with the place from the file name; bad metadata is one error naming the file.
    void waterbirdsLayouts() {
        const std::string root = vitscope::test::source("tests/data/waterbirds");
        std::string layout;
        const auto test = readWaterbirds(root + "/groupdro", 2, &layout);
        QCOMPARE(test.size(), std::size_t(8));
        QVERIFY2(layout.find("metadata.csv") != std::string::npos, layout.c_str());
        QCOMPARE(test.front().y, 0);
        QVERIFY(test.front().path.find("Nuthatch_0005.png") != std::string::npos);
        QCOMPARE(readWaterbirdsMetadata(root + "/groupdro", 0).size(), std::size_t(2));
        const auto folders = readWaterbirds(root + "/folders", 2, &layout);
        QCOMPARE(folders.size(), std::size_t(4));
        QCOMPARE(layout, std::string("vit-decompose class folders"));
        QCOMPARE(folders[1].y, 0);
        QCOMPARE(folders[1].place, 1);  // bird_001_water
        QCOMPARE(folders[2].y, 1);
        QCOMPARE(folders[2].place, 0);
        // vit-decompose's linear head for non-CLIP models learns a separable two-class set.
        at::manual_seed(2812);
        const at::Tensor features = at::randn({256, 6});
        std::vector<int> classes;
        for (int64_t i = 0; i < 256; ++i) classes.push_back(features[i][2].item<float>() - 0.5f * features[i][4].item<float>() > 0.3f);
        const LinearHead head = trainLinearHead(features, classes, 2, {200, 64, 1e-2, 1e-6, 0});
        const at::Tensor predicted = head.predict(features);
        int correct = 0;
        for (int64_t i = 0; i < 256; ++i) correct += predicted[i].item<int64_t>() == classes[static_cast<std::size_t>(i)];
        QVERIFY2(correct >= 250, qPrintable(QString::number(correct)));
        const auto rows = waterbirdsAccuracy(at::tensor(std::vector<int64_t>{0, 1, 1, 1}), {0, 0, 1, 1}, {0, 1, 0, 1});
        QCOMPARE(rows.worstGroup, 0.0);
        QCOMPARE(rows.averageGroup, 0.75);
        QCOMPARE(rows.full, 0.75);
    }

    void cacheHoldsTheDecomposition() {
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 40);
        const Model model = loadModel(shapesClip());
        for (const std::string layers : {"all", "last:2"}) {
            CacheBuildParams p;
            p.outDir = dir.path().toStdString() + "/cache-" + layers.substr(0, 3);
            p.batch = 16;
            p.layers = layers;
            const CacheBuildResult r = buildCache(model, images, p, {});
            QCOMPARE(r.rows, int64_t(40));
            QVERIFY(!r.cancelled);
            const DatasetCache cache(p.outDir);
            QCOMPARE(cache.size(), int64_t(40));
            QCOMPARE(cache.paths().front(), images.front());
            cache.checkModel(model);
            at::NoGradGuard guard;
            const Decomposition dec = decomposeImages(model, loadAndPreprocess(images, model.preprocess));
            const at::Tensor heads = cache.heads().to(at::kFloat);
            const int first = cache.cachedLayers().front();
            QCOMPARE(heads.size(1), int64_t(layers == "all" ? 4 : 2));
            const at::Tensor want = dec.heads.narrow(1, first, heads.size(1));
            QVERIFY2(maxAbsDiff(heads, want) < 2e-3 * want.abs().max().item<double>(), "cached head terms differ");
            QVERIFY(maxAbsDiff(cache.output(), dec.output) < 1e-5 * dec.output.abs().max().item<double>());
            // Every row still sums to the output (fp16 storage rounding only).
            const at::Tensor sum = heads.sum({1, 2}) + cache.mlps().to(at::kFloat).sum(1) + cache.other().to(at::kFloat).sum(1);
            const double err = maxAbsDiff(sum, dec.output) / dec.output.abs().max().item<double>();
            QVERIFY2(err < 5e-3, qPrintable(QString("sum identity error %1").arg(err)));
        }
    }

    // SigLIP end to end: the cache keeps both levels (each row sums to the output either way),
    // components name the pooling heads, text goes through SentencePiece and the text tower,
    // TextSpan on a pooling head is the reference's (no projection, as compute_siglip.py), and an
    // ablation refuses to mix the two levels.
    void siglipCacheTextSpanAndAblation() {
        QTemporaryDir dir;
        const std::string mdir = makeSiglipDir(dir);
        const Model model = loadModel(mdir);
        QVERIFY(model.isClip());
        QVERIFY(model.sigmoidScores);
        QVERIFY(model.tokenizerPath.find("spiece.model") != std::string::npos);
        const std::vector<std::string> images = makeImages(dir, 24);
        auto build = [&](const std::string& name, std::vector<std::string> list) {
            CacheBuildParams p;
            p.outDir = dir.path().toStdString() + "/" + name;
            p.batch = 8;
            buildCache(model, list, p, {});
            return p.outDir;
        };
        const std::string scoredDir = build("scored", {images.begin(), images.begin() + 16});
        const std::string refDir = build("reference", {images.begin() + 16, images.end()});
        const DatasetCache cache(scoredDir);
        QCOMPARE(cache.numPoolHeads(), 2);
        const at::Tensor out = cache.output();
        const double scale = out.abs().max().item<double>();
        const at::Tensor pool = cache.pool().to(at::kFloat);
        QCOMPARE(pool.sizes().vec(), (std::vector<int64_t>{16, 4, 64}));
        QVERIFY(maxAbsDiff(pool.sum(1), out) < 5e-3 * scale);
        const at::Tensor level2 = cache.heads().to(at::kFloat).sum({1, 2}) + cache.mlps().to(at::kFloat).sum(1) +
                                  cache.other().to(at::kFloat).sum(1) + pool.select(1, 3);
        QVERIFY(maxAbsDiff(level2, out) < 5e-3 * scale);

        const CacheView view(cache, nullptr);
        QVERIFY(view.parse("pool.h1").kind == Component::Kind::PoolHead);
        QCOMPARE(view.parse("pool.mlp").name(), std::string("pool.mlp"));
        QVERIFY_THROWS_EXCEPTION(InputError, view.parse("pool.h2"));
        QCOMPARE(view.allComponents().back().name(), std::string("pool.mlp"));
        QCOMPARE(int(view.poolHeads().size()), 2);

        const TextEncoder enc(model);
        const std::vector<std::string> pool_texts{"a red circle", "a blue square", "a green triangle", "a striped star",
                                                  "a yellow background", "a dotted heart", "an image with 3 rings"};
        const at::Tensor texts = enc.encode(pool_texts);
        QCOMPARE(texts.sizes().vec(), (std::vector<int64_t>{7, 64}));
        QVERIFY(maxAbsDiff(texts.norm(2, 1), at::ones({7})) < 1e-5);
        TextSpanParams params;
        params.perHead = 3;
        const std::vector<HeadTexts> described = runTextSpan(view, texts, params, view.poolHeads(), {});
        QCOMPARE(int(described.size()), 2);
        for (const HeadTexts& h : described) {
            const auto [picks, reconstruct] = referenceTextSpan(view.terms(h.component), texts, 3, 64);
            for (int i = 0; i < 3; ++i) QCOMPARE(h.picks[static_cast<std::size_t>(i)].text, picks[static_cast<std::size_t>(i)]);
        }

        const DatasetCache refCache(refDir);
        const CacheView refView(refCache, nullptr);
        ZeroShotClassifier classifier{enc.encode({"a circle", "a square"}), {0, 1}};
        RowLabels labels;
        labels.label.assign(16, 0);
        const AblationResult ok = runAblation(view, refView, classifier, labels, {view.parse("pool.h0")});
        QVERIFY(ok.after.accuracy >= 0 && ok.after.accuracy <= 1);
        QVERIFY_THROWS_EXCEPTION(InputError, runAblation(view, refView, classifier, labels, {view.parse("pool.h0"), view.parse("2.1")}));
    }

    void cancelledAndTornBuildsResume() {
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 50);
        const Model model = loadModel(shapesClip());
        CacheBuildParams p;
        p.batch = 8;
        p.outDir = dir.path().toStdString() + "/whole";
        buildCache(model, images, p, {});
        const DatasetCache whole(p.outDir);

        p.outDir = dir.path().toStdString() + "/parts";
        std::atomic<bool> cancel{false};
        JobContext job;
        job.cancel = &cancel;
        int reports = 0;
        job.progress = [&](const JobProgress& pr) {
            QVERIFY(pr.done <= pr.total);
            if (++reports == 2) cancel.store(true);
        };
        const CacheBuildResult first = buildCache(model, images, p, job);
        QVERIFY(first.cancelled);
        QCOMPARE(first.rows, int64_t(16));
        try {
            DatasetCache partial(p.outDir);
            QFAIL("an unfinished cache opened");
        } catch (const InputError& e) {
            QVERIFY2(std::string(e.what()).find("incomplete") != std::string::npos, e.what());
        }
        // A chunk written after the last progress record (a kill -9 between the two): garbage
        // bytes past the recorded rows must be dropped on resume.
        for (const char* name : {"heads.npy", "mlps.npy", "output.npy", "paths.txt"}) {
            std::ofstream f(p.outDir + "/" + name, std::ios::app | std::ios::binary);
            f << std::string(777, 'x');
        }
        const CacheBuildResult second = buildCache(model, images, p, {});
        QVERIFY(second.resumed);
        QVERIFY(!second.cancelled);
        QCOMPARE(second.rows, int64_t(50));
        const DatasetCache parts(p.outDir);
        QCOMPARE(parts.paths(), whole.paths());
        QVERIFY(at::equal(parts.heads(), whole.heads()));
        QVERIFY(at::equal(parts.mlps(), whole.mlps()));
        QVERIFY(at::equal(parts.output(), whole.output()));
        // Running again on a complete cache does nothing.
        const CacheBuildResult third = buildCache(model, images, p, {});
        QVERIFY(third.resumed);
        QCOMPARE(third.rows, int64_t(50));
        // numpy can read the arrays: the header states the final row count.
        const NpyArray out = readNpy(p.outDir + "/output.npy");
        QCOMPARE(out.shape, (std::vector<int64_t>{50, 64}));
    }

    void unreadableImagesAreSkipped() {
        QTemporaryDir dir;
        std::vector<std::string> images = makeImages(dir, 10);
        const std::string corrupt = dir.path().toStdString() + "/corrupt.png";
        writeFileAtomic(corrupt, std::string("\x89PNG\r\n\x1a\nnot really"));
        images.insert(images.begin() + 3, corrupt);
        images.push_back(dir.path().toStdString() + "/missing.png");
        const std::string list = dir.path().toStdString() + "/list.txt";
        std::string text;
        for (const std::string& i : images) text += i + "\n";
        writeFileAtomic(list, text);
        QCOMPARE(listImages(list), images);
        const Model model = loadModel(shapesClip());
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        const CacheBuildResult r = buildCache(model, listImages(list), p, {});
        QCOMPARE(r.rows, int64_t(10));
        QCOMPARE(r.skipped, int64_t(2));
        const std::string skipped = readFileText(p.outDir + "/skipped.txt");
        QVERIFY(skipped.find("corrupt.png\t") != std::string::npos);
        QVERIFY(skipped.find("missing.png\t") != std::string::npos);
        const DatasetCache cache(p.outDir);
        QCOMPARE(cache.size(), int64_t(10));
        QVERIFY(std::find(cache.paths().begin(), cache.paths().end(), corrupt) == cache.paths().end());
    }

    void badCachesAreRefused() {
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 8);
        const Model model = loadModel(shapesClip());
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        buildCache(model, images, p, {});
        auto expectError = [](const std::string& cacheDir, const std::string& fragment) {
            try {
                DatasetCache c(cacheDir);
                QFAIL(("opened " + cacheDir).c_str());
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(fragment) != std::string::npos, e.what());
            }
        };
        // Another model's cache.
        QTemporaryDir other;
        RandomVitSpec spec;
        spec.layout = RandomLayout::Timm, spec.imageSize = 64, spec.patchSize = 8, spec.width = 64, spec.layers = 2, spec.seed = 3;
        const Model timm = buildModel(randomVitStateDict(spec), {{"num_heads", 4}}, "random");
        saveTimmModel(timm, other.path().toStdString());
        const Model timmBack = loadModel(other.path().toStdString());
        const DatasetCache good(p.outDir);
        QVERIFY_THROWS_EXCEPTION(InputError, good.checkModel(timmBack));
        // Resuming into a cache of another model is refused.
        CacheBuildParams q = p;
        QVERIFY_THROWS_EXCEPTION(InputError, buildCache(timmBack, images, q, {}));
        // A non-empty folder that is not a cache is refused.
        q.outDir = dir.path().toStdString() + "/world";
        QVERIFY_THROWS_EXCEPTION(InputError, buildCache(model, images, q, {}));
        // Truncated array.
        const std::string copy = dir.path().toStdString() + "/copy";
        fs::copy(p.outDir, copy);
        fs::resize_file(copy + "/heads.npy", fs::file_size(copy + "/heads.npy") - 10);
        expectError(copy, "heads.npy");
        // Corrupt manifest.
        writeFileAtomic(copy + "/manifest.json", std::string("{not json"));
        expectError(copy, "manifest.json");
        expectError(dir.path().toStdString() + "/nothing-here", "no manifest.json");
        // Bad layer selection.
        QVERIFY_THROWS_EXCEPTION(InputError, parseLayerSelection("last:9", 4));
        QVERIFY_THROWS_EXCEPTION(InputError, parseLayerSelection("first:2", 4));
        QCOMPARE(parseLayerSelection("last:2", 4), (std::vector<int>{2, 3}));
    }

    void componentNames() {
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 4);
        const Model model = loadModel(shapesClip());
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        p.layers = "last:2";
        buildCache(model, images, p, {});
        const DatasetCache cache(p.outDir);
        const CacheView view(cache, nullptr);
        QCOMPARE(view.parse("3.1").name(), std::string("3.1"));
        QCOMPARE(view.parse("mlp.0").name(), std::string("mlp.0"));
        QCOMPARE(view.parseList("3.1, 2.0,3.1,embed").size(), std::size_t(3));
        for (const char* bad : {"9.0", "3.7", "x", "1.0", "mlp.4", "3.", ".1", "-1.0", ""}) {
            try {
                view.parseList(bad);
                QFAIL(bad);
            } catch (const InputError& e) {
                QVERIFY(std::string(e.what()).size() > 10);
            }
        }
        QCOMPARE(view.heads().size(), std::size_t(8));
        QCOMPARE(view.allComponents().size(), std::size_t(8 + 4 + 1));
    }

    void textSpanFindsPlantedDirections() {
        at::manual_seed(5);
        const int64_t n = 400, e = 32;
        const at::Tensor pool = at::randn({50, e});
        const at::Tensor texts = pool / pool.norm(2, 1, true);
        // Data: strong variance along text 7, weaker along text 19, small isotropic noise.
        const at::Tensor terms = at::outer(at::randn({n}) * 3.0, texts[7]) + at::outer(at::randn({n}) * 1.5, texts[19]) +
                                 0.05 * at::randn({n, e}) + 2.0;
        TextSpanParams params;
        params.perHead = 3;
        const HeadTexts h = textSpan(terms, texts, params);
        QCOMPARE(h.picks[0].text, 7);
        QCOMPARE(h.picks[1].text, 19);
        QVERIFY(h.picks[1].cumulative > 0.98);
        QVERIFY(h.picks[0].explained > 0.7);
        // Against the reference's own formula on unstructured data, several ranks (80 >= E: none).
        const at::Tensor random = at::randn({300, e}) * at::linspace(0.2, 2.0, e) + at::linspace(-1.0, 1.0, e);
        const at::Tensor rawTexts = at::randn({50, e}) * 0.3 + texts;  // not unit norm, as projected texts are not
        for (int rank : {80, 12, 8}) {
            params.perHead = 6;
            params.rank = rank;
            const HeadTexts fast = textSpan(random, rawTexts, params);
            const auto [picks, reconstruct] = referenceTextSpan(random, rawTexts, 6, rank);
            QCOMPARE(fast.picks.size(), std::size_t(6));
            for (int i = 0; i < 6; ++i) QCOMPARE(fast.picks[static_cast<std::size_t>(i)].text, picks[static_cast<std::size_t>(i)]);
            // The head reduced to its text span: mean + centred terms projected on the basis.
            const at::Tensor mean = random.mean(0, true);
            const at::Tensor ours = mean + at::matmul(at::matmul(random - mean, fast.basis.t()), fast.basis);
            QVERIFY(maxAbsDiff(ours, reconstruct.to(at::kFloat)) < 1e-3);
            QVERIFY(fast.picks.back().cumulative <= 1.0 + 1e-6);
        }
        // A near-duplicate of the first pick loses once its residual is small (the reference does
        // not renormalise deflated texts; a unit-direction score would pick it).
        at::Tensor pool2 = texts.narrow(0, 0, 10).clone();
        pool2[3] = 0.97 * texts[7] + 0.02 * texts[11];
        const at::Tensor planted = at::outer(at::randn({n}) * 3.0, texts[7]) + at::outer(at::randn({n}) * 2.0, texts[11]) +
                                   at::outer(at::randn({n}) * 1.0, texts[2]);
        pool2[5] = texts[2];
        pool2[0] = texts[7];
        params.perHead = 2;
        params.rank = 80;
        const HeadTexts dup = textSpan(planted, pool2, params);
        QCOMPARE(dup.picks[0].text, 0);
        QCOMPARE(dup.picks[1].text, referenceTextSpan(planted, pool2, 2, 80).first[1]);
        QVERIFY(dup.picks[1].text != 3);
        params.perHead = 51;
        QVERIFY_THROWS_EXCEPTION(InputError, textSpan(random, texts, params));
        params.perHead = 3;
        params.rank = 0;
        QVERIFY_THROWS_EXCEPTION(InputError, textSpan(random, texts, params));
    }

    void propertyScoreIsACorrelation() {
        at::manual_seed(6);
        const int64_t n = 500, e = 16;
        const at::Tensor dirs = std::get<0>(at::linalg_qr(at::randn({e, e}))).t();  // orthonormal rows
        const at::Tensor property = dirs.narrow(0, 0, 2);                  // the property spans 2 directions
        // Component a varies along the property, b along other directions.
        const at::Tensor a = at::matmul(at::randn({n, 2}) * 2.0, property);
        const at::Tensor b = at::matmul(at::randn({n, 4}), dirs.narrow(0, 4, 4)) + 0.1 * at::matmul(at::randn({n, 2}), property);
        const at::Tensor total = a + b;
        const at::Tensor basis = propertyBasis(at::cat({property, property[0].unsqueeze(0) * 2.0}));  // dependent row dropped
        QCOMPARE(basis.size(0), int64_t(2));
        const double sa = propertyScore(a, total, basis), sb = propertyScore(b, total, basis);
        QVERIFY(sa > 0.95);
        QVERIFY(sb < 0.2);
        // Naive: mean over the basis directions of Pearson's correlation.
        double naive = 0;
        for (int j = 0; j < 2; ++j) {
            const at::Tensor x = at::matmul(b, basis[j]), y = at::matmul(total, basis[j]);
            const at::Tensor xc = x - x.mean(), yc = y - y.mean();
            naive += (xc * yc).sum().item<double>() / (xc.norm() * yc.norm()).item<double>() / 2;
        }
        QVERIFY(std::abs(naive - sb) < 1e-5);
    }

    void retrievalMatchesBruteForce() {
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 30);
        const Model model = loadModel(shapesClip());
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        buildCache(model, images, p, {});
        const DatasetCache cache(p.outDir);
        const CacheView view(cache, nullptr);
        const TextEncoder encoder(model);
        const at::Tensor t = encoder.encode({"a red object"})[0];
        QVERIFY(std::abs(t.norm().item<double>() - 1.0) < 1e-5);
        const std::vector<Component> set = view.parseList("3.1,2.2,mlp.3");
        const std::vector<RetrievalHit> hits = retrieveByText(view, t, set, 5);
        QCOMPARE(hits.size(), std::size_t(5));
        at::Tensor brute = at::zeros({30});
        const at::Tensor heads = cache.heads().to(at::kFloat), mlps = cache.mlps().to(at::kFloat);
        brute += at::matmul(heads.select(1, 3).select(1, 1), t) + at::matmul(heads.select(1, 2).select(1, 2), t) +
                 at::matmul(mlps.select(1, 3), t);
        const at::Tensor order = std::get<1>(brute.topk(5));
        for (int i = 0; i < 5; ++i) {
            QCOMPARE(hits[static_cast<std::size_t>(i)].row, order[i].item<int64_t>());
            QCOMPARE(hits[static_cast<std::size_t>(i)].path, images[static_cast<std::size_t>(order[i].item<int64_t>())]);
        }
        // Image query: the image itself comes first, globally and through the set.
        for (const std::vector<Component>& s : {std::vector<Component>{}, set}) {
            const std::vector<RetrievalHit> self = retrieveByImage(view, cachedQuery(view, 11, s), s, 3);
            QCOMPARE(self.front().row, int64_t(11));
            QVERIFY(std::abs(self.front().score - 1.0) < 1e-5);
        }
        // A fresh decomposition of a cached image gives the same query as its cached row.
        at::NoGradGuard guard;
        const Decomposition dec = decomposeImages(model, loadAndPreprocess({images[11]}, model.preprocess));
        QVERIFY(maxAbsDiff(decompositionQuery(dec, set, nullptr), cachedQuery(view, 11, set)) < 1e-2);
        QVERIFY_THROWS_EXCEPTION(InputError, retrieveByText(view, at::ones({7}), set, 5));
    }

    void componentSelectionFollowsBeyondClip() {
        // Ranking over every component (heads, MLPs, embedding) as vit-decompose does, the
        // differential ranking, spurious discovery, and image retrieval in the model's space.
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 40);
        const Model vit = loadModel(test::source("models/shapes-vit"));
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache-vit";
        buildCache(vit, images, p, {});
        const DatasetCache cache(p.outDir);
        const Aligner aligner = loadAligner(test::source("models/shapes-vit/aligner.safetensors"));
        const CacheView view(cache, &aligner);
        const Model clip = loadModel(shapesClip());
        const TextEncoder encoder(clip);
        const at::Tensor color = encoder.encodeDescriptions({"red", "green", "blue", "yellow"});
        const at::Tensor shape = encoder.encodeDescriptions({"circle", "square", "triangle", "star"});
        const at::Tensor size = encoder.encodeDescriptions({"small", "large"});
        // Independent scores: propertyScore of each component's aligned terms.
        const at::Tensor total = view.output();
        auto score = [&](const Component& c, const at::Tensor& d) { return propertyScore(view.terms(c), total, propertyBasis(d)); };
        const std::vector<Component> all = view.allComponents();
        std::vector<std::pair<double, std::string>> brute;
        for (const Component& c : all) brute.emplace_back(score(c, color), c.name());
        std::sort(brute.rbegin(), brute.rend());
        const std::vector<Component> top = topComponents(view, color, 5, false);
        QCOMPARE(top.size(), std::size_t(5));
        for (int i = 0; i < 5; ++i) QCOMPARE(top[static_cast<std::size_t>(i)].name(), brute[static_cast<std::size_t>(i)].second);
        for (const Component& c : topComponents(view, color, 5, true)) QVERIFY(c.kind == Component::Kind::Head);
        // Differential: score(color) - max(0, max(score(shape), score(size))), sorted.
        const std::vector<ComponentScore> diff = rankDifferential(view, color, {shape, size}, false, JobContext{});
        QCOMPARE(diff.size(), all.size());
        for (std::size_t i = 0; i < diff.size(); ++i) {
            const Component& c = diff[i].component;
            const double expected = score(c, color) - std::max({0.0, score(c, shape), score(c, size)});
            QVERIFY2(std::abs(diff[i].score - expected) < 1e-6, c.name().c_str());
            if (i > 0) QVERIFY(diff[i - 1].score >= diff[i].score);
        }
        // Spurious discovery ranks every component unless restricted to heads.
        const auto found = discoverSpuriousComponents(view, size, shape, static_cast<int>(all.size()));
        QCOMPARE(found.size(), all.size());
        bool mlpSeen = false;
        for (const ComponentScore& s : found) {
            mlpSeen = mlpSeen || s.component.kind == Component::Kind::Mlp;
            QVERIFY(std::abs(s.score - (score(s.component, size) - score(s.component, shape))) < 1e-6);
        }
        QVERIFY(mlpSeen);
        for (const ComponentScore& s : discoverSpuriousComponents(view, size, shape, 4, true)) QVERIFY(s.component.kind == Component::Kind::Head);
        // Image retrieval through components compares summed model-space terms (cosine).
        const std::vector<Component> set = view.parseList("3.0,3.1,mlp.3");
        const at::Tensor q = cachedQuery(view, 7, set);
        QCOMPARE(q.size(0), int64_t(cache.embedDim()));
        at::Tensor sum = at::zeros({static_cast<int64_t>(images.size()), cache.embedDim()});
        for (const Component& c : set) sum += view.storedTerms(c).to(at::kFloat);
        const at::Tensor cosine = at::matmul(sum / sum.norm(2, 1, true), q / q.norm());
        const at::Tensor order = std::get<1>(cosine.topk(4));
        const std::vector<RetrievalHit> hits = retrieveByImage(view, q, set, 4);
        for (int i = 0; i < 4; ++i) QCOMPARE(hits[static_cast<std::size_t>(i)].row, order[i].item<int64_t>());
        QCOMPARE(hits.front().row, int64_t(7));
    }

    void fp16DotKernel() {
        at::manual_seed(13);
        for (const int64_t n : {7, 20000, 70001}) {
            const at::Tensor all = at::randn({n, 3, 37}).to(at::kHalf);  // d 37: vector body and scalar tail
            const at::Tensor stored = all.select(1, 1);                   // strided rows, as in the cache
            const at::Tensor v = at::randn({37});
            at::Tensor scores = at::full({n}, 0.5f);
            accumulateDots(stored, v, scores);
            const at::Tensor want = at::matmul(stored.to(at::kFloat), v) + 0.5;
            QVERIFY2(maxAbsDiff(scores, want) < 1e-4, qPrintable(QString::number(maxAbsDiff(scores, want))));
        }
    }

    void textListsAndEncoder() {
        QTemporaryDir dir;
        const std::string empty = dir.path().toStdString() + "/empty.txt";
        writeFileAtomic(empty, std::string("# only a comment\n\n   \n"));
        QVERIFY_THROWS_EXCEPTION(InputError, readTextList(empty));
        QVERIFY_THROWS_EXCEPTION(IoError, readTextList(dir.path().toStdString() + "/absent.txt"));
        const std::string some = dir.path().toStdString() + "/some.txt";
        writeFileAtomic(some, std::string("  a red object \r\n# note\na circle\n"));
        QCOMPARE(readTextList(some), (std::vector<std::string>{"a red object", "a circle"}));
        const Model model = loadModel(shapesClip());
        const TextEncoder encoder(model);
        const at::Tensor ens = encoder.encodeEnsemble({"red", "blue"}, {"a {} object", "a large {} object"});
        QCOMPARE(ens.sizes().vec(), (std::vector<int64_t>{2, 64}));
        const at::Tensor single = encoder.encode({"a red object", "a large red object"});
        const at::Tensor want = single.mean(0) / single.mean(0).norm();
        QVERIFY(maxAbsDiff(ens[0], want) < 1e-5);
        QVERIFY_THROWS_EXCEPTION(InputError, encoder.encodeEnsemble({"red"}, {"no slot"}));
        // Class names from an ImageNet-style folder.
        for (const char* c : {"n01_tabby-cat", "golden_retriever", "ant"}) fs::create_directories(dir.path().toStdString() + "/classes/" + c);
        writeFileAtomic(dir.path().toStdString() + "/classes/readme.txt", std::string("not a class"));
        QCOMPARE(classNamesFromFolders(dir.path().toStdString() + "/classes"),
                 (std::vector<std::string>{"ant", "golden retriever", "n01 tabby cat"}));
        QVERIFY_THROWS_EXCEPTION(InputError, classNamesFromFolders(dir.path().toStdString() + "/classes/ant"));
    }

    void perComponentAligner() {
        at::manual_seed(11);
        const int64_t n = 600, c = 5, d = 12, e = 8;
        // Targets made by component-specific maps: one shared map cannot express them.
        const at::Tensor truth = at::randn({c, d, e}) / std::sqrt(static_cast<double>(d));
        const at::Tensor x = at::randn({n, c, d});
        const at::Tensor y = at::einsum("ncd,cde->ne", {x, truth}) + 0.3;
        const std::vector<std::string> names{"0.0", "0.1", "mlp.0", "embed", "post_bias"};
        const at::Tensor xTrain = x.narrow(0, 0, 500), xTest = x.narrow(0, 500, 100);
        const at::Tensor yTrain = y.narrow(0, 0, 500), yTest = y.narrow(0, 500, 100);
        const Aligner shared = fitSharedAligner(xTrain.sum(1), yTrain);
        ComponentAlignParams params;
        params.steps = 400;
        params.learningRate = 1e-2;
        params.orthoPenalty = 0;
        at::GradMode::set_enabled(true);
        const Aligner per = fitComponentAligner(xTrain, names, yTrain, params);
        at::GradMode::set_enabled(false);
        const double sharedCos = meanCosine(shared.apply(xTest.sum(1)), yTest);
        const double perCos = meanCosine(applyToTerms(per, xTest), yTest);
        qInfo("held-out cosine: shared %.4f, per-component %.4f", sharedCos, perCos);
        QVERIFY(perCos > 0.97);
        QVERIFY(perCos > sharedCos + 0.05);
        QVERIFY(maxAbsDiff(per.weightFor("mlp.0"), per.componentWeights[2]) == 0);
        // The loss is the reference's (vit-decompose cos_sim_loss, orthonormalize = lambda):
        // mean(1 - cos) + lambda * E * mean((W^T W - I)^2), here at the starting point (one step).
        ComponentAlignParams one;
        one.steps = 1;
        one.orthoPenalty = 0.7;
        at::GradMode::set_enabled(true);
        const Aligner first = fitComponentAligner(xTrain, names, yTrain, one);
        at::GradMode::set_enabled(false);
        {
            const at::Tensor w = shared.weight.to(at::kDouble), b = shared.bias.to(at::kDouble);
            const at::Tensor pred = at::matmul(xTrain.sum(1).to(at::kDouble), w) + b;
            const double cosLoss = (1.0 - at::cosine_similarity(pred, yTrain.to(at::kDouble), 1)).mean().item<double>();
            const at::Tensor g = at::matmul(w.t(), w) - at::eye(e, at::kDouble);
            const double ortho = static_cast<double>(e) * (g * g).mean().item<double>();  // the same for all C maps
            const double expected = cosLoss + 0.7 * ortho;
            const double recorded = std::stod(first.settings.at("final_loss"));
            qInfo("first-step loss %.6f, reference formula %.6f", recorded, expected);
            QVERIFY(std::abs(recorded - expected) < 1e-5 * std::max(1.0, expected));
        }
        QVERIFY_THROWS_EXCEPTION(InputError, per.weightFor("3.3"));
        // vit-decompose's procedure (align_with_clip as get_clip_and_aligner calls it): a small
        // random start, minibatches for a number of epochs, an early stop; seeded.
        {
            at::GradMode::set_enabled(true);
            ComponentAlignParams ref;
            ref.procedure = AlignProcedure::Reference;
            ref.orthoPenalty = 0;
            ref.patience = 100000;
            const Aligner a = fitComponentAligner(xTrain, names, yTrain, ref);
            const int64_t batches = (xTrain.size(0) + ref.batch - 1) / ref.batch;
            QCOMPARE(std::stoll(a.settings.at("steps")), ref.epochs * batches);  // every batch of every epoch
            QCOMPARE(maxAbsDiff(fitComponentAligner(xTrain, names, yTrain, ref).componentWeights, a.componentWeights), 0.0);
            ComponentAlignParams other = ref;
            other.seed = ref.seed + 1;
            QVERIFY(maxAbsDiff(fitComponentAligner(xTrain, names, yTrain, other).componentWeights, a.componentWeights) > 1e-4);
            ComponentAlignParams still = ref;  // a vanishing step: the maps stay at the N(0, s^2) draw
            still.referenceLearningRate = 1e-12;
            const at::Tensor drawn = fitComponentAligner(xTrain, names, yTrain, still).componentWeights;
            qInfo("reference start: std %.4f (N(0, %.2f^2))", drawn.std().item<double>(), still.initScale);
            QVERIFY(std::abs(drawn.std().item<double>() - still.initScale) < 0.1 * still.initScale);
            ComponentAlignParams impatient = ref;
            impatient.patience = 1;  // stops at the first batch whose loss is no new minimum
            QVERIFY(std::stoll(fitComponentAligner(xTrain, names, yTrain, impatient).settings.at("steps")) < ref.epochs * batches);
            ComponentAlignParams longer = ref;  // given more epochs at a larger rate it fits the maps
            longer.epochs = 30;
            longer.referenceLearningRate = 1e-2;
            const double cos = meanCosine(applyToTerms(fitComponentAligner(xTrain, names, yTrain, longer), xTest), yTest);
            at::GradMode::set_enabled(false);
            qInfo("reference procedure, 30 epochs at lr 1e-2: held-out cosine %.4f", cos);
            QVERIFY(cos > 0.95);
            QVERIFY_THROWS_EXCEPTION(InputError, parseAlignProcedure("sgd"));
            // Its bias split: the reference's Aligner gives component c the term x_c W_c + b / C.
            // A component whose training terms are all zero (vitscope's empty bias slots under
            // vit-decompose's convention) is not one of its components and gets no share.
            at::Tensor xZero = xTrain.clone();
            xZero.select(1, 4).zero_();
            at::GradMode::set_enabled(true);
            const Aligner split = fitComponentAligner(xZero, names, yTrain, ref);
            at::GradMode::set_enabled(false);
            QCOMPARE(split.biasSharedBy, (std::vector<std::string>{"0.0", "0.1", "mlp.0", "embed"}));
            const at::Tensor sample = xTest[0];
            at::Tensor total = split.biasLeft(split.components);
            for (int64_t i = 0; i < 4; ++i) {
                const at::Tensor expected = at::matmul(sample[i], split.componentWeights[i]) + split.componentBias / 4.0;  // its formula
                const at::Tensor got = alignedTerm(sample[i], names[static_cast<std::size_t>(i)], &split);
                QVERIFY2(maxAbsDiff(got, expected) < 1e-6, names[static_cast<std::size_t>(i)].c_str());
                total = total + got;
            }
            QVERIFY(maxAbsDiff(alignedTerm(sample[4], "post_bias", &split), at::matmul(sample[4], split.componentWeights[4])) < 1e-6);
            total = total + alignedTerm(sample[4], "post_bias", &split);
            QVERIFY(maxAbsDiff(split.biasLeft(split.components), at::zeros({e})) < 1e-6);  // every share handed out
            QVERIFY(maxAbsDiff(total, applyToTerms(split, sample.unsqueeze(0))[0]) < 1e-5);  // the sum is unchanged
            QVERIFY(per.biasSharedBy.empty());  // vitscope's procedure keeps the bias whole
            QVERIFY(maxAbsDiff(alignedTerm(sample[0], "0.0", &per), at::matmul(sample[0], per.componentWeights[0])) < 1e-6);
            QTemporaryDir splitDir;
            const std::string splitPath = splitDir.path().toStdString() + "/split.safetensors";
            saveAligner(split, splitPath);
            QCOMPARE(loadAligner(splitPath).biasSharedBy, split.biasSharedBy);
            writeSafetensorsTensors(splitPath, {{"weight", split.weight}, {"bias", split.bias}, {"component_weights", split.componentWeights},
                                                {"component_bias", split.componentBias}},
                                    {{"components", nlohmann::json(names).dump()}, {"bias_shared_by", "[\"9.9\"]"}});
            QVERIFY_THROWS_EXCEPTION(FormatError, loadAligner(splitPath));
        }
        QTemporaryDir dir;
        const std::string path = dir.path().toStdString() + "/aligner.safetensors";
        saveAligner(per, path);
        const Aligner back = loadAligner(path);
        QCOMPARE(back.components, names);
        QVERIFY(maxAbsDiff(applyToTerms(back, xTest), applyToTerms(per, xTest)) < 1e-6);
        // A per-component file without its bias is refused.
        writeSafetensorsTensors(path, {{"weight", per.weight}, {"bias", per.bias}, {"component_weights", per.componentWeights}},
                                {{"components", "[\"a\"]"}});
        QVERIFY_THROWS_EXCEPTION(FormatError, loadAligner(path));
    }

    // A non-CLIP model's cache through a per-component aligner: the aligned output is the sum
    // of the aligned terms, and equals the aligner applied to a fresh decomposition.
    void cacheThroughPerComponentAligner() {
        at::manual_seed(9100);  // the draws below are part of the test: fixed
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 12);
        RandomVitSpec spec;
        spec.layout = RandomLayout::Timm, spec.imageSize = 64, spec.patchSize = 8, spec.width = 32, spec.layers = 2, spec.seed = 12;
        Model timm = buildModel(randomVitStateDict(spec), {{"num_heads", 2}}, "random");
        timm.preprocess.imageSize = timm.preprocess.resizeShortest = 64;
        saveTimmModel(timm, dir.path().toStdString() + "/timm");
        const Model model = loadModel(dir.path().toStdString() + "/timm");
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        buildCache(model, images, p, {});
        at::NoGradGuard guard;
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(images, model.preprocess));
        std::vector<std::string> names;
        const at::Tensor terms = stackedTerms(dec, &names);
        QCOMPARE(names.size(), std::size_t(2 * 2 + 2 + 3));
        QVERIFY(maxAbsDiff(terms.sum(1), dec.output) < 1e-4);
        ComponentAlignParams params;
        params.steps = 3;
        at::GradMode::set_enabled(true);
        const Aligner aligner = fitComponentAligner(terms, names, at::randn({12, 16}), params);
        at::GradMode::set_enabled(false);
        const DatasetCache cache(p.outDir);
        const CacheView view(cache, &aligner);
        QCOMPARE(view.embedDim(), int64_t(16));
        const at::Tensor want = applyToTerms(aligner, terms);
        // fp16 storage of each term: the same 5e-3 relative bound as the sum identity.
        QVERIFY2(maxAbsDiff(view.output(), want) < 5e-3 * want.abs().max().item<double>(), "aligned cache output differs");
        // The query of a fresh image (first of the batch) goes through the same maps.
        QVERIFY(maxAbsDiff(decompositionQuery(dec, {}, &aligner), want[0]) < 1e-4 * want.abs().max().item<double>());
        // The reference procedure's bias split: each component's term carries b / C, the output
        // (the terms' sum) is unchanged.
        Aligner split = aligner;
        split.biasSharedBy = names;
        const CacheView splitView(cache, &split);
        QVERIFY2(maxAbsDiff(splitView.output(), want) < 5e-3 * want.abs().max().item<double>(), "split output differs");
        const Component head{Component::Kind::Head, 1, 0};
        const at::Tensor expected = at::matmul(splitView.storedTerms(head).to(at::kFloat), aligner.weightFor("1.0")) +
                                    aligner.componentBias / static_cast<double>(names.size());
        QVERIFY(maxAbsDiff(splitView.terms(head), expected) < 1e-5 * std::max(1.0, expected.abs().max().item<double>()));
        // Partial caches cannot be read through per-component maps.
        p.outDir = dir.path().toStdString() + "/cache-last";
        p.layers = "last:1";
        buildCache(model, images, p, {});
        const DatasetCache partial(p.outDir);
        QVERIFY_THROWS_EXCEPTION(InputError, CacheView(partial, &aligner));
    }

    // A Swin model saved in timm's hub layout, cached and read through a per-component aligner:
    // only the heads each layer has are components, the mergings' offsets travel with the
    // attention biases, and the aligned output is still the sum of the aligned terms.
    void swinCacheThroughAligner() {
        at::manual_seed(9124);  // the draws below are part of the test: fixed
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 10);
        RandomVitSpec spec;
        spec.layout = RandomLayout::TimmSwin, spec.patchSize = 4, spec.width = 16, spec.swinDepths = {1, 2}, spec.swinHeads = {1, 4};
        spec.window = 4, spec.seed = 44;
        Model swin = buildModel(randomVitStateDict(spec), {{"img_size", 64}}, "random-swin");
        swin.preprocess.imageSize = swin.preprocess.resizeShortest = 64;
        saveTimmModel(swin, dir.path().toStdString() + "/swin");
        const Model model = loadModel(dir.path().toStdString() + "/swin");
        QCOMPARE(model.info.family, std::string("swin"));
        QCOMPARE(headsPerLayer(model.vision), (std::vector<int>{1, 4, 4}));
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        buildCache(model, images, p, {});
        at::NoGradGuard guard;
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(images, model.preprocess));
        std::vector<std::string> names;
        const at::Tensor terms = stackedTerms(dec, &names);
        QCOMPARE(names.size(), std::size_t(1 + 4 + 4 + 3 + 3));  // heads, MLPs, embed, attn_bias, post_bias
        QCOMPARE(names[1], std::string("1.0"));
        QVERIFY(maxAbsDiff(terms.sum(1), dec.output) < 1e-4);
        const DatasetCache cache(p.outDir);
        QCOMPARE(cache.headsIn(0), 1);
        QCOMPARE(cache.headsIn(2), 4);
        ComponentAlignParams params;
        params.steps = 3;
        at::GradMode::set_enabled(true);
        const Aligner aligner = fitComponentAligner(terms, names, at::randn({10, 16}), params);
        at::GradMode::set_enabled(false);
        const CacheView view(cache, &aligner);
        QCOMPARE(int(view.heads().size()), 9);
        QVERIFY_THROWS_EXCEPTION(InputError, view.parse("0.1"));
        QCOMPARE(view.parse("2.3").head, 3);
        const at::Tensor want = applyToTerms(aligner, terms);
        QVERIFY2(maxAbsDiff(view.output(), want) < 5e-3 * want.abs().max().item<double>(), "aligned cache output differs");
        // Unaligned, the cache's terms sum to the model's output (fp16 storage).
        const CacheView raw(cache, nullptr);
        at::Tensor sum = raw.cache().other().to(at::kFloat).narrow(1, 1, 2).sum(1);  // attn_bias (+ mergings), post_bias
        for (const Component& c : raw.allComponents()) sum += raw.terms(c);
        QVERIFY2(maxAbsDiff(sum, dec.output) < 5e-3 * dec.output.abs().max().item<double>(), "cached terms do not sum to the output");
    }

    // MaxViT cached and read through a per-component aligner: each block's MBConv branch is a
    // component (conv.K: cached, parsed, ablatable), the shortcut biases travel with the
    // attention biases, and the aligned output is the sum of the aligned terms.
    void maxvitCacheThroughAligner() {
        at::manual_seed(9127);  // the draws below are part of the test: fixed
        QTemporaryDir dir;
        const std::vector<std::string> images = makeImages(dir, 10);
        RandomVitSpec spec;
        spec.layout = RandomLayout::TimmMaxVit, spec.stemWidth = 8, spec.maxvitWidths = {16, 32}, spec.maxvitDepths = {1, 2};
        spec.headDim = 8, spec.partition = 2, spec.seed = 45;
        const std::string modelDir = dir.path().toStdString() + "/maxvit";
        std::filesystem::create_directories(modelDir);
        writeSafetensorsTensors(modelDir + "/model.safetensors", randomVitStateDict(spec));
        writeFileAtomic(modelDir + "/config.json", std::string(R"({"architecture": "maxvit_tiny_tf_224", "model_args": {"img_size": 64}})"));
        const Model model = loadModel(modelDir);
        QCOMPARE(model.info.family, std::string("maxvit"));
        CacheBuildParams p;
        p.outDir = dir.path().toStdString() + "/cache";
        buildCache(model, images, p, {});
        at::NoGradGuard guard;
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(images, model.preprocess));
        std::vector<std::string> names;
        const at::Tensor terms = stackedTerms(dec, &names);
        // 6 attention units: 2 x 2 + 4 x 4 heads, 6 MLPs, 3 convs, embed, attn_bias, post_bias
        QCOMPARE(names.size(), std::size_t(20 + 6 + 3 + 3));
        QVERIFY(std::find(names.begin(), names.end(), "conv.2") != names.end());
        QVERIFY(maxAbsDiff(terms.sum(1), dec.output) < 1e-4);
        const DatasetCache cache(p.outDir);
        QCOMPARE(cache.numConvs(), 3);
        const CacheView raw(cache, nullptr);
        QCOMPARE(raw.parse("conv.1").kind, Component::Kind::Conv);
        QVERIFY_THROWS_EXCEPTION(InputError, raw.parse("conv.3"));
        at::Tensor sum = cache.other().to(at::kFloat).narrow(1, 1, 2).sum(1);
        for (const Component& c : raw.allComponents()) sum += raw.terms(c);
        QVERIFY2(maxAbsDiff(sum, dec.output) < 5e-3 * dec.output.abs().max().item<double>(), "cached terms do not sum to the output");
        QVERIFY(maxAbsDiff(raw.terms(raw.parse("conv.2")), dec.convs.select(1, 2)) < 5e-3 * dec.convs.abs().max().item<double>());
        ComponentAlignParams params;
        params.steps = 3;
        at::GradMode::set_enabled(true);
        const Aligner aligner = fitComponentAligner(terms, names, at::randn({10, 16}), params);
        at::GradMode::set_enabled(false);
        const CacheView view(cache, &aligner);
        const at::Tensor want = applyToTerms(aligner, terms);
        QVERIFY2(maxAbsDiff(view.output(), want) < 5e-3 * want.abs().max().item<double>(), "aligned cache output differs");
        QVERIFY(maxAbsDiff(decompositionQuery(dec, {}, &aligner), want[0]) < 1e-4 * want.abs().max().item<double>());
    }

    void shippedTextResources() {
        const std::vector<std::string> pool = readTextList(test::source("resources/general/descriptions.txt"));
        QVERIFY(pool.size() >= 2000);
        QCOMPARE(std::set<std::string>(pool.begin(), pool.end()).size(), pool.size());
        for (const std::string& t : readTextList(test::source("resources/templates/classes.txt"))) QVERIFY(t.find("{}") != std::string::npos);
        for (const char* p : {"color", "shape", "texture", "location", "pattern", "animal", "person", "material"})
            QVERIFY(readTextList(test::source(std::string("resources/properties/") + p + ".txt")).size() >= 8);
    }

    void csvTablesAndHeadLists() {
        QTemporaryDir dir;
        const std::string good = dir.path().toStdString() + "/good.csv";
        writeFileAtomic(good, "file,label,note\r\na.png,cat,\"big, striped\"\nb.png,dog,\"said \"\"hi\"\"\nthen left\"\n\nc.png,,\n");
        const auto rows = readCsvTable(good);
        QCOMPARE(rows.size(), std::size_t(3));
        QCOMPARE(rows[0].at("note"), std::string("big, striped"));
        QCOMPARE(rows[1].at("note"), std::string("said \"hi\"\nthen left"));
        QCOMPARE(rows[2].at("label"), std::string());
        QCOMPARE(rows[2].at("note"), std::string());
        const std::string ragged = dir.path().toStdString() + "/ragged.csv";
        writeFileAtomic(ragged, "file,label\na.png,cat,extra\n");
        try {
            readCsvTable(ragged);
            QFAIL("a ragged row was accepted");
        } catch (const FormatError& e) {
            QVERIFY(std::string(e.what()).find("line 2 has 3 cells") != std::string::npos);
        }
        const std::string open = dir.path().toStdString() + "/open.csv";
        writeFileAtomic(open, "file,label\na.png,\"cat\n");
        QVERIFY_THROWS_EXCEPTION(FormatError, readCsvTable(open));
        QCOMPARE(textsOrFile(" a red square , a blue circle,"), (std::vector<std::string>{"a red square", "a blue circle"}));
        QVERIFY_THROWS_EXCEPTION(InputError, textsOrFile(" , "));
        QCOMPARE(parseHeadPairs("0.1,3.2", 4, 4), (std::vector<std::pair<int, int>>{{0, 1}, {3, 2}}));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeadPairs("4.0", 4, 4));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeadPairs("1.2x", 4, 4));
        QVERIFY_THROWS_EXCEPTION(InputError, parseHeadPairs("mlp.1", 4, 4));
    }

    void propertyListsFollowTheVocabulary() {
        Model words, bpe;
        words.tokenizerPath = "/models/shapes-clip/vocab.txt";
        bpe.tokenizerPath = "/x/bpe_simple_vocab_16e6.txt.gz";
        QVERIFY(propertyWordList("color", words).find("resources/shapes/color.txt") != std::string::npos);
        QVERIFY(propertyWordList("color", bpe).find("resources/properties/color.txt") != std::string::npos);
        // Lists only the general pool has are still found for the word-vocabulary model.
        QVERIFY(propertyWordList("animal", words).find("resources/properties/animal.txt") != std::string::npos);
        QVERIFY_THROWS_EXCEPTION(InputError, propertyWordList("no-such-property", bpe));
        QVERIFY_THROWS_EXCEPTION(InputError, propertyWordList("../shapes/color", bpe));
        const std::vector<std::string> names = propertyNames(words);
        QVERIFY(std::find(names.begin(), names.end(), "background") != names.end());
        QVERIFY(std::find(names.begin(), names.end(), "text_pool") == names.end());
        QVERIFY(!bundledModelDir().empty());
    }
};

QTEST_GUILESS_MAIN(TestAnalysis)
#include "test_analysis.moc"
