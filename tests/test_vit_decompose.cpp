// vit-decompose's convention (Convention::VitDecompose) against a port of the authors' walker, not
// against our own formulas: tests/data/vit-decompose/make_reference.py builds a tiny timm-layout
// Swin (non-square input, two stages, shifted blocks) and MaxViT (two stages, a widening shortcut
// conv), and writes the per-component terms helpers/linear_decompose.py gives on them for several
// detach blocks (its LayerNorm rule with the unbiased variance and eps 1e-5, biases shared over the
// terms present, `init` before the detach block; Swin's output the mean of the final norm's tokens,
// MaxViT's the mean of the last tokens before the head's norm). Every term within 1e-4 (relative).
#include "error.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>

using namespace vitscope;
using vitscope::test::source;

namespace {

const std::string kDir = "tests/data/vit-decompose/";

std::vector<std::string> componentNames(const std::string& tag) {
    std::ifstream in(source(kDir + tag + "_components.txt"));
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) names.push_back(line.substr(0, line.find('\t')));
    return names;
}

nlohmann::json manifest() {
    std::ifstream in(source(kDir + "reference.json"));
    return nlohmann::json::parse(in);
}

struct Compared {
    double worstTerm = 0;  // max over components of max |ours - reference| / max |reference term|
    double outputGap = 0;  // relative
    double missGap = 0;
};

// One reference case: family "swin" / "maxvit", detach block (stage, block).
Compared compare(const std::string& family, int stage, int block) {
    const std::string tag = family + "_" + std::to_string(stage) + "_" + std::to_string(block);
    const Model model = loadModel(source(kDir + family));
    const at::Tensor pixels = readNpyTensor(source(kDir + family + "_pixels.npy"));
    DecomposeOptions o;
    o.convention = Convention::VitDecompose;
    o.fromStage = stage;
    o.fromBlock = block;
    at::NoGradGuard noGrad;
    const Decomposition dec = decomposeImages(model, pixels, o);
    std::vector<std::string> names;
    const at::Tensor terms = termsByComponent(dec, &names).to(at::kDouble);  // [B, C, E]
    const at::Tensor ref = readNpyTensor(source(kDir + tag + "_terms.npy")).to(at::kDouble);
    const std::vector<std::string> refNames = componentNames(tag);
    if (names != refNames) {
        std::string ours;
        for (const std::string& n : names) ours += n + " ";
        qWarning("%s: components %s", tag.c_str(), ours.c_str());
    }
    Compared c;
    c.worstTerm = names == refNames && terms.sizes() == ref.sizes() ? 0.0 : 1e9;
    for (int64_t k = 0; c.worstTerm < 1e9 && k < ref.size(1); ++k) {
        const at::Tensor r = ref.select(1, k), t = terms.select(1, k);
        const double scale = std::max(r.abs().max().item<double>(), 1e-6);
        c.worstTerm = std::max(c.worstTerm, (t - r).abs().max().item<double>() / scale);
    }
    const at::Tensor out = readNpyTensor(source(kDir + tag + "_output.npy")).to(at::kDouble);
    c.outputGap = (dec.output.to(at::kDouble) - out).abs().max().item<double>() / out.abs().max().item<double>();
    c.missGap = std::abs(dec.outputMiss - manifest().at(tag).at("output_miss").get<double>());
    qInfo("%s: %zu components, worst term %.3g, output %.3g, the reference's miss of the output %.4f (ours %.4f), sum identity %.3g",
          tag.c_str(), names.size(), c.worstTerm, c.outputGap, manifest().at(tag).at("output_miss").get<double>(), dec.outputMiss,
          dec.maxAbsError);
    return c;
}

std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

}  // namespace

class TestVitDecompose : public QObject {
    Q_OBJECT

private slots:
    void termsMatchReference_data() {
        QTest::addColumn<QString>("family");
        QTest::addColumn<int>("stage");
        QTest::addColumn<int>("block");
        QTest::newRow("swin 0,0") << "swin" << 0 << 0;
        QTest::newRow("swin 0,1") << "swin" << 0 << 1;
        QTest::newRow("swin 1,1") << "swin" << 1 << 1;
        QTest::newRow("maxvit 0,0") << "maxvit" << 0 << 0;
        QTest::newRow("maxvit 0,1") << "maxvit" << 0 << 1;
        QTest::newRow("maxvit 1,0") << "maxvit" << 1 << 0;
    }

    void termsMatchReference() {
        QFETCH(QString, family);
        QFETCH(int, stage);
        QFETCH(int, block);
        const Compared c = compare(family.toStdString(), stage, block);
        QVERIFY2(c.worstTerm < 1e-4, std::to_string(c.worstTerm).c_str());
        QVERIFY2(c.outputGap < 1e-5, std::to_string(c.outputGap).c_str());
        QVERIFY2(c.missGap < 1e-4, std::to_string(c.missGap).c_str());
    }

    // The exact convention is untouched on the same models: its terms sum to the output.
    void exactConventionStillSums() {
        at::NoGradGuard noGrad;
        for (const char* family : {"swin", "maxvit"}) {
            const Model model = loadModel(source(kDir + family));
            const Decomposition dec = decomposeImages(model, readNpyTensor(source(kDir + family + "_pixels.npy")));
            QVERIFY2(dec.maxAbsError < 1e-5, family);
            QVERIFY(dec.convention == Convention::Exact);
        }
    }

    void badInputIsOneLine() {
        int s = 0, b = 0;
        parseFromBlock("2,14", &s, &b);
        QCOMPARE(s, 2);
        QCOMPARE(b, 14);
        for (const char* bad : {"", "2", "2,", ",3", "a,b", "-1,2", "2,3,4", "99999999,1"}) {
            const std::string e = errorOf([&] { parseFromBlock(bad, &s, &b); });
            QVERIFY2(e.find("--from-block") != std::string::npos && e.find('\n') == std::string::npos, e.c_str());
        }
        QCOMPARE(std::string(conventionName(parseConvention("vit-decompose"))), std::string("vit-decompose"));
        QVERIFY(errorOf([] { parseConvention("vit_decompose"); }).find("vit-decompose") != std::string::npos);
        const Model swin = loadModel(source(kDir + "swin"));
        const at::Tensor pixels = readNpyTensor(source(kDir + "swin_pixels.npy"));
        DecomposeOptions o;
        o.convention = Convention::VitDecompose;
        o.fromStage = 1;
        o.fromBlock = 2;  // stage 1 has two blocks
        std::string e = errorOf([&] { decomposeImages(swin, pixels, o); });
        QVERIFY2(e.find("--from-block 1,2") != std::string::npos && e.find("not a block") != std::string::npos, e.c_str());
        o.fromBlock = 0;
        o.tokens = true;
        e = errorOf([&] { decomposeImages(swin, pixels, o); });
        QVERIFY2(e.find("--tokens") != std::string::npos, e.c_str());
        DecomposeOptions exact;
        exact.fromStage = 1;
        e = errorOf([&] { decomposeImages(swin, pixels, exact); });
        QVERIFY2(e.find("--from-block") != std::string::npos && e.find("vit-decompose") != std::string::npos, e.c_str());
        const Model vit = loadModel(source("tests/data/gradient-maps/vit"));
        DecomposeOptions ref;
        ref.convention = Convention::VitDecompose;
        e = errorOf([&] { decomposeImages(vit, readNpyTensor(source("tests/data/gradient-maps/pixels.npy")), ref); });
        QVERIFY2(e.find("Swin and MaxViT only") != std::string::npos && e.find('\n') == std::string::npos, e.c_str());
    }
};

QTEST_GUILESS_MAIN(TestVitDecompose)
#include "test_vit_decompose.moc"
