// Ground truth for the neuron and register tools: models/shapes-clip-planted, derived from
// models/shapes-clip by `vitscope-cli shapes plant` (shapes/plant.h), has a register neuron that
// fires on plain background patches and makes them high-norm outlier tokens, and a property neuron
// that carries "red" through the last block's heads. The tests check that the tools find them, and
// check the tools' findings against the scenes' masks and labels (computed here, not by the planting).
#include "analysis/neurons.h"
#include "analysis/registers.h"
#include "analysis/text_embed.h"
#include "error.h"
#include "io/file_util.h"
#include "model/export.h"
#include "model/forward.h"
#include "model/loader.h"
#include "shapes/plant.h"
#include "shapes/world.h"
#include "shapes/zero_shot.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <opencv2/core.hpp>

using namespace vitscope;

namespace {

const char* kPlanted = "models/shapes-clip-planted";
// The card's documented settings for registers find on this model (models/shapes-clip-planted/card.md).
constexpr double kNormThreshold = 100;
constexpr uint64_t kTestSeed = 0x7E57;  // scenes neither the planting (seed 2929) nor training used

struct PlantedTruth {
    int registerLayer = 0, registerNeuron = 0, propertyLayer = 0, propertyNeuron = 0;
};

PlantedTruth readTruth() {
    const nlohmann::json j = nlohmann::json::parse(readFileText(test::source(std::string(kPlanted) + "/planted.json")));
    return {j["register_neuron"]["layer"].get<int>(), j["register_neuron"]["neuron"].get<int>(), j["property_neuron"]["layer"].get<int>(),
            j["property_neuron"]["neuron"].get<int>()};
}

std::vector<shapes::Scene> testScenes(int64_t count) {
    std::vector<shapes::Scene> scenes;
    for (int64_t i = 0; i < count; ++i) scenes.push_back(shapes::generateScene(kTestSeed, static_cast<uint64_t>(i)));
    return scenes;
}

// [S, P] bool: patches (row-major) with no pixel of the object or the distractor, from the masks.
at::Tensor plainBackground(const std::vector<shapes::Scene>& scenes, int patch) {
    const int grid = scenes.front().image.rows / patch;
    at::Tensor out = at::zeros({static_cast<int64_t>(scenes.size()), grid * grid}, at::kBool);
    for (std::size_t s = 0; s < scenes.size(); ++s) {
        cv::Mat object = scenes[s].mask.clone();
        if (!scenes[s].distractorMask.empty()) object |= scenes[s].distractorMask;
        for (int p = 0; p < grid * grid; ++p)
            out[static_cast<int64_t>(s)][p] = cv::countNonZero(object(cv::Rect((p % grid) * patch, (p / grid) * patch, patch, patch))) == 0;
    }
    return out;
}

RegisterFindParams plantedFindParams(const Model& model) {
    RegisterFindParams p = registerFindDefaults(model);
    p.registerNormThreshold = kNormThreshold;
    return p;
}

std::vector<RegisterNeuron> findOn(const Model& model, const at::Tensor& pixels, const RegisterFindParams& p) {
    return findRegisterNeurons(model, pixels.size(0), [&](int64_t start, int64_t n) { return pixels.narrow(0, start, n); }, p, {});
}

std::vector<uint8_t> savedBytes(const Model& model, const QString& dir) {
    saveOpenClipModel(model, dir.toStdString());
    return readFileBytes(dir.toStdString() + "/open_clip_model.safetensors");
}

}  // namespace

class TestPlanted : public QObject {
    Q_OBJECT

private slots:
    void registersFindRanksThePlantedNeuronFirst();
    void detectionBeforeThePlantedBlockFindsNoOutliers();
    void outliersAreWhereThePlantedNeuronFires();
    void testTimeRegisterMovesTheOutliersOffThePatches();
    void propertyNeuronRanksFirstAndItsTextsNameIt();
    void derivationIsDeterministic();
};

void TestPlanted::registersFindRanksThePlantedNeuronFirst() {
    const Model model = loadModel(test::source(kPlanted));
    const PlantedTruth truth = readTruth();
    const at::Tensor pixels = shapes::scenesToPixels(testScenes(200), model.preprocess);
    for (double threshold : {kNormThreshold, registerFindDefaults(model).registerNormThreshold}) {  // the card's 100, the reference's 30
        RegisterFindParams p = plantedFindParams(model);
        p.registerNormThreshold = threshold;
        const std::vector<RegisterNeuron> ranked = findOn(model, pixels, p);
        QCOMPARE(ranked.front().layer, truth.registerLayer);
        QCOMPARE(ranked.front().neuron, truth.registerNeuron);
        QVERIFY2(ranked.front().score > 1.25 * ranked[1].score, qPrintable(QString("margin %1 vs %2").arg(ranked.front().score).arg(ranked[1].score)));
    }
}

// The outliers exist from the planted block on: detecting them at the block before finds none (a
// detection that ignored its layer would read the last block and find them).
void TestPlanted::detectionBeforeThePlantedBlockFindsNoOutliers() {
    const Model model = loadModel(test::source(kPlanted));
    const PlantedTruth truth = readTruth();
    const at::Tensor pixels = shapes::scenesToPixels(testScenes(50), model.preprocess);
    RegisterFindParams p = plantedFindParams(model);
    p.detectOutliersLayer = truth.registerLayer - 1;
    QVERIFY_THROWS_EXCEPTION(InputError, findOn(model, pixels, p));
    p.detectOutliersLayer = truth.registerLayer;
    int images = 0;
    const auto ranked = findRegisterNeurons(model, pixels.size(0), [&](int64_t s, int64_t n) { return pixels.narrow(0, s, n); }, p, {}, &images);
    QVERIFY(images > 25);
    QCOMPARE(ranked.front().neuron, truth.registerNeuron);
}

void TestPlanted::outliersAreWhereThePlantedNeuronFires() {
    const Model model = loadModel(test::source(kPlanted));
    const PlantedTruth truth = readTruth();
    const std::vector<shapes::Scene> scenes = testScenes(100);
    at::NoGradGuard noGrad;
    const ImageTrace t = traceImages(model, shapes::scenesToPixels(scenes, model.preprocess), true);
    const int L = model.vision.layers();
    const at::Tensor norms = t.residuals[static_cast<std::size_t>(L)].norm(2, 2);  // [S, N], the detection block (-1)
    const at::Tensor outliers = norms > kNormThreshold;
    const at::Tensor act = t.hidden[static_cast<std::size_t>(truth.registerLayer)].select(2, truth.registerNeuron);  // [S, N]
    QVERIFY(!outliers.select(1, 0).any().item<bool>());  // never the class token
    const int64_t flagged = outliers.sum().item<int64_t>();
    QVERIFY2(flagged > 100, qPrintable(QString::number(flagged)));
    // Every outlier is a token where the neuron writes more than half the threshold, and every token
    // where it writes more than twice the threshold is an outlier (|write| from the model's weights).
    const Block& block = model.vision.encoder.blocks[static_cast<std::size_t>(truth.registerLayer)];
    const at::Tensor write = act * block.fc2W.select(1, truth.registerNeuron).norm().item<double>();
    QVERIFY(write.masked_select(outliers).min().item<double>() > 0.5 * kNormThreshold);
    const at::Tensor strong = write > 2 * kNormThreshold, silent = act < 0.1;
    QVERIFY(strong.sum().item<int64_t>() > 50);
    QCOMPARE((strong & ~outliers).sum().item<int64_t>(), int64_t(0));
    QCOMPARE((silent & outliers).sum().item<int64_t>(), int64_t(0));
    // The outliers are plain background patches (the masks), as the planted rule says.
    const at::Tensor background = plainBackground(scenes, model.vision.patchSize);
    const at::Tensor patchOutliers = outliers.narrow(1, 1, background.size(1));
    const double precision = background.masked_select(patchOutliers).to(at::kDouble).mean().item<double>();
    QVERIFY2(precision > 0.95, qPrintable(QString::number(precision)));
    // ... and they are few per image and differ between images (a content rule, not positions).
    const at::Tensor perImage = patchOutliers.sum(1).to(at::kDouble);
    QVERIFY(perImage.mean().item<double>() < 8);
    QVERIFY(patchOutliers.to(at::kDouble).mean(0).max().item<double>() < 0.8);
}

void TestPlanted::testTimeRegisterMovesTheOutliersOffThePatches() {
    const Model plain = loadModel(test::source(kPlanted));
    const PlantedTruth truth = readTruth();
    Model ttr = loadModel(test::source(kPlanted));
    TestTimeRegisterParams p = testTimeRegisterDefaults(ttr);
    p.topK = 1;
    applyTestTimeRegisters(ttr, p, {{truth.registerLayer, truth.registerNeuron, 1.0}});
    const at::Tensor pixels = shapes::scenesToPixels(testScenes(100), plain.preprocess);
    at::NoGradGuard noGrad;
    const ImageTrace a = traceImages(plain, pixels), b = traceImages(ttr, pixels);
    const int L = plain.vision.layers();
    const int64_t P = static_cast<int64_t>(a.gridH) * a.gridW;
    auto ratio = [&](const ImageTrace& t) {
        const at::Tensor n = t.residuals[static_cast<std::size_t>(L)].narrow(1, t.prefix, P).norm(2, 2);
        return std::get<0>(n.max(1)) / std::get<0>(n.median(1));
    };
    const at::Tensor before = ratio(a), after = ratio(b);
    QVERIFY2(before.mean().item<double>() > 3, qPrintable(QString::number(before.mean().item<double>())));
    QVERIFY2(after.max().item<double>() < 2.5, qPrintable(QString::number(after.max().item<double>())));
    QCOMPARE(b.suffix, 1);
    // Where the plain model has outliers, the register token now carries them.
    const at::Tensor had = std::get<0>(a.residuals[static_cast<std::size_t>(L)].norm(2, 2).max(1)) > kNormThreshold;
    const at::Tensor registerNorm = b.residuals[static_cast<std::size_t>(L)].select(1, b.prefix + P).norm(2, 1);
    QVERIFY(had.sum().item<int64_t>() > 50);
    // (Not in every one: the blank register changes blocks 0-1, so the neuron's maximum moves too.)
    const double carried = (registerNorm.masked_select(had) > kNormThreshold).to(at::kDouble).mean().item<double>();
    QVERIFY2(carried > 0.85, qPrintable(QString::number(carried)));
    // The output stays close on average (card: 0.944 over 200 scenes); not on every scene: the blank
    // register draws class-token attention in blocks 0-1, before the planted neuron writes.
    const double cosine = at::cosine_similarity(encodeImages(plain, pixels).output, encodeImages(ttr, pixels).output, 1).mean().item<double>();
    QVERIFY2(cosine > 0.9, qPrintable(QString::number(cosine)));
}

void TestPlanted::propertyNeuronRanksFirstAndItsTextsNameIt() {
    const Model model = loadModel(test::source(kPlanted));
    const PlantedTruth truth = readTruth();
    SecondOrderSettings s;
    s.layer = truth.propertyLayer;
    const SecondOrderLens lens(model, s);
    const std::vector<shapes::Scene> scenes = testScenes(600);
    const SecondOrderEffects e = lens.compute(shapes::scenesToPixels(scenes, model.preprocess));
    const TextEncoder encoder(model);
    for (const std::string& description : {std::string("red"), std::string("a red object")}) {
        const auto ranked = rankNeurons(e.effects, neuronTotal(e.output, s.convention, s.coefficient), encoder.encodeDescriptions({description}));
        QCOMPARE(ranked.front().first, int64_t(truth.propertyNeuron));
    }
    const NeuronDirections d = neuronPrincipalDirections(e.effects, 100);
    const std::vector<std::string> pool = shapes::textPool();
    const SparseCodes codes = orthogonalMatchingPursuit(referenceTextDictionary(encoder.encode(pool)), d.directions, 8);
    const std::vector<NeuronText> top = topTexts(codes, truth.propertyNeuron, pool, 1);
    QVERIFY2(top.front().text.find("red") != std::string::npos, top.front().text.c_str());
    // Its top images (by centred effect) are scenes with a red object (the labels).
    const int red = shapes::valueIndex(shapes::Attribute::Color, "red");
    int withRed = 0;
    const at::Tensor images = d.topImages[truth.propertyNeuron];
    for (int64_t k = 0; k < images.size(0); ++k) {
        const shapes::SceneLabels& l = scenes[static_cast<std::size_t>(images[k].item<int64_t>())].labels;
        withRed += l.value(shapes::Attribute::Color) == red || (l.distractor && l.distractorValue(shapes::Attribute::Color) == red);
    }
    QVERIFY2(withRed >= 50, qPrintable(QString::number(withRed)));
}

// Derivation is deterministic (the same bytes twice) and gives the shipped model: every tensor but
// the four planted vectors byte for byte, those within float rounding of another machine's BLAS.
void TestPlanted::derivationIsDeterministic() {
    const PlantedTruth truth = readTruth();
    shapes::PlantParams p;
    Model a = loadModel(test::source("models/shapes-clip")), b = loadModel(test::source("models/shapes-clip"));
    const shapes::PlantResult ra = shapes::plantMechanisms(a, p);
    shapes::plantMechanisms(b, p);
    QTemporaryDir dir;
    QCOMPARE(savedBytes(a, dir.path() + "/a"), savedBytes(b, dir.path() + "/b"));
    QCOMPARE(ra.registerNeuron.neuron, truth.registerNeuron);
    QCOMPARE(ra.propertyNeuron.neuron, truth.propertyNeuron);
    const StateDict derived = toOpenClipStateDict(a), shipped = toOpenClipStateDict(loadModel(test::source(kPlanted)));
    QCOMPARE(derived.size(), shipped.size());
    for (const auto& [name, t] : derived) {
        const bool planted = name.find("resblocks." + std::to_string(truth.registerLayer) + ".mlp.c_") != std::string::npos ||
                             name.find("resblocks." + std::to_string(truth.propertyLayer) + ".mlp.c_") != std::string::npos;
        const double diff = test::maxAbsDiff(t, shipped.at(name));
        if (planted) QVERIFY2(diff < 1e-4, name.c_str());
        else QVERIFY2(diff == 0, name.c_str());
    }
}

QTEST_GUILESS_MAIN(TestPlanted)
#include "test_planted.moc"
