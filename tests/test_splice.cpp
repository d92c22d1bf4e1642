// SpLiCE (analysis/splice.h) against the reference's own computation with scikit-learn's Lasso
// (tests/data/splice/make_reference.py: AI4LIFE-GROUP/SpLiCE's dictionary, centring, l1 -> alpha
// mapping and cosine, sklearn 1.2 on seeded built data), its ADMM option against the skl result,
// and the component targets against the decomposition they come from.
#include "analysis/splice.h"
#include "error.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "parallel.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <fstream>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

namespace {

std::string data(const std::string& file) {
    return vitscope::test::source("tests/data/splice/" + file);
}

nlohmann::json referenceRecord() {
    std::ifstream in(data("reference.json"));
    return nlohmann::json::parse(in);
}

SpliceResult solve(double l1, SpliceSolver solver = SpliceSolver::Skl) {
    SpliceParams p;
    p.l1 = l1;
    p.solver = solver;
    return runSplice(readNpyTensor(data("vocab.npy")), readNpyTensor(data("mean.npy")),
                     readNpyTensor(data("embeddings.npy")), p);
}

Model randomClip() {
    RandomVitSpec s;
    s.layout = RandomLayout::OpenAiClip, s.imageSize = 32, s.patchSize = 16, s.width = 32, s.layers = 3,
    s.embedDim = 24, s.seed = 31;
    const nlohmann::json config = {{"model_cfg", {{"vision_cfg", {{"head_width", 16}}}, {"text_cfg", {{"heads", 1}}}}}};
    return buildModel(randomVitStateDict(s), config, "random-clip");
}

}  // namespace

class TestSplice : public QObject {
    Q_OBJECT
private slots:
    // Every l1 of the reference data: weights within 1e-4 of the reference's (float32 sklearn) and
    // 1e-5 of sklearn's float64 solution (at l1 0.01 one image runs to max_iter and the others take
    // hundreds of epochs: rounding moves the stopping point by ~1e-6); the cosine within 1e-5;
    // all weights >= 0.
    void matchesSklearnLasso() {
        const nlohmann::json rec = referenceRecord();
        const std::vector<double> l1s = rec.at("l1").get<std::vector<double>>();
        QCOMPARE(static_cast<int>(l1s.size()), 4);
        for (std::size_t k = 0; k < l1s.size(); ++k) {
            const SpliceResult r = solve(l1s[k]);
            const std::string suffix = std::to_string(k) + ".npy";
            const at::Tensor ref = readNpyTensor(data("weights_" + suffix));
            QVERIFY(vitscope::test::sameShape(r.weights, ref));
            const double vsReference = maxAbsDiff(r.weights, ref);
            const double vs64 = maxAbsDiff(r.weights, readNpyTensor(data("weights64_" + suffix)));
            const double cos = maxAbsDiff(r.cosine, readNpyTensor(data("cosine_" + suffix)));
            qInfo("l1 %.3g: |w - sklearn float32| %.3g, |w - sklearn float64| %.3g, |cos - ref| %.3g, nonzero %lld",
                  l1s[k], vsReference, vs64, cos, static_cast<long long>((r.weights > 0).sum().item<int64_t>()));
            QVERIFY2(vsReference < 1e-4, qPrintable(QString::number(vsReference)));
            QVERIFY2(vs64 < 1e-5, qPrintable(QString::number(vs64)));
            QVERIFY2(cos < 1e-5, qPrintable(QString::number(cos)));
            QVERIFY(r.weights.min().item<double>() >= 0.0);
            QVERIFY(r.cosine.max().item<double>() <= 1.0 + 1e-6);
        }
    }

    // Past max(2 D y) the solution is all zero and the reconstruction is the image mean alone.
    void largePenaltyGivesZeroWeights() {
        const SpliceResult r = solve(referenceRecord().at("l1").back().get<double>());
        QCOMPARE(r.weights.abs().sum().item<double>(), 0.0);
        const at::Tensor mean = readNpyTensor(data("mean.npy")).to(at::kDouble);
        const at::Tensor x = readNpyTensor(data("embeddings.npy")).to(at::kDouble);
        const at::Tensor expected = at::matmul(x / x.norm(2, 1, true), mean / mean.norm());
        QVERIFY(maxAbsDiff(r.cosine, expected) < 1e-6);
    }

    // The reference's ADMM (rho 5, 2000 iterations, random start) reaches the skl solution closely
    // (it solves the same problem scaled by 2E).
    void admmCloseToSkl() {
        for (double l1 : {0.15, 0.3}) {
            const SpliceResult skl = solve(l1), admm = solve(l1, SpliceSolver::Admm);
            const double d = maxAbsDiff(skl.weights, admm.weights), dc = maxAbsDiff(skl.cosine, admm.cosine);
            qInfo("l1 %.2f: |admm - skl| weights %.3g, cosine %.3g, %d iterations", l1, d, dc, admm.iterations.front());
            QVERIFY2(d < 1e-4, qPrintable(QString::number(d)));
            QVERIFY(dc < 1e-5);
            QVERIFY(admm.weights.min().item<double>() >= 0.0);
        }
    }

    void dictionaryAndMean() {
        const at::Tensor v = readNpyTensor(data("vocab.npy")).to(at::kDouble);
        const at::Tensor d = spliceDictionary(v);
        QVERIFY(maxAbsDiff(d.norm(2, 1), at::ones({v.size(0)}, at::kDouble)) < 1e-12);
        const at::Tensor n = v / v.norm(2, 1, true);
        const at::Tensor centred = n - n.mean(0, true);
        QVERIFY(maxAbsDiff(d, centred / centred.norm(2, 1, true)) < 1e-12);
        const at::Tensor x = at::tensor({3.0, 4.0, 0.0, 0.0, 0.0, 2.0}, at::kDouble).reshape({2, 3});
        QVERIFY(maxAbsDiff(spliceMean(x), at::tensor({0.3, 0.4, 0.5}, at::kDouble)) < 1e-7);
    }

    void badInputIsRefused() {
        const at::Tensor v = readNpyTensor(data("vocab.npy")), x = readNpyTensor(data("embeddings.npy"));
        QVERIFY_THROWS_EXCEPTION(InputError, runSplice(v, at::zeros({7}), x, SpliceParams{}));
        QVERIFY_THROWS_EXCEPTION(InputError,
                                 runSplice(v, readNpyTensor(data("mean.npy")), at::zeros({2, 5}), SpliceParams{}));
        SpliceParams p;
        p.l1 = -1;
        QVERIFY_THROWS_EXCEPTION(InputError, p.validate());
        QVERIFY_THROWS_EXCEPTION(InputError, parseSpliceSolver("lars"));
        QCOMPARE(std::string(spliceSolverName(parseSpliceSolver("admm"))), std::string("admm"));
    }

    void conceptsAreSortedAndNamed() {
        const at::Tensor w = at::tensor({0.0, 0.5, 0.2, 0.9}, at::kFloat);
        const std::vector<SpliceConcept> c = spliceConcepts(w, {"a", "b", "c", "d"}, 2);
        QCOMPARE(static_cast<int>(c.size()), 2);
        QCOMPARE(c[0].text, std::string("d"));
        QCOMPARE(c[1].text, std::string("b"));
        QCOMPARE(spliceConcepts(w, {"a", "b", "c", "d"}, -1).size(), std::size_t(3));
    }

    // The targets are the output and the terms termsByComponent names; a head's per-token terms
    // sum to its term; a neuron's effect has the output's size; unknown names are refused.
    void componentTargets() {
        const Model model = randomClip();
        at::NoGradGuard noGrad;
        const at::Tensor pixels = at::randn({2, 3, 32, 32}, at::detail::createCPUGenerator(3));
        const at::Tensor out = spliceTargetsFor(model, nullptr, pixels, "");
        QVERIFY(maxAbsDiff(out, encodeImages(model, pixels).output) < 1e-5);
        std::vector<std::string> names;
        const at::Tensor terms = termsByComponent(decomposeImages(model, pixels, DecomposeOptions{}), &names);
        const auto index = [&](const std::string& n) {
            return std::find(names.begin(), names.end(), n) - names.begin();
        };
        const at::Tensor head = spliceTargetsFor(model, nullptr, pixels, "1.1");
        QVERIFY(maxAbsDiff(head, terms.select(1, index("1.1"))) < 1e-6);
        QVERIFY(maxAbsDiff(spliceTargetsFor(model, nullptr, pixels, "mlp.2"), terms.select(1, index("mlp.2"))) < 1e-6);
        at::Tensor sum = at::zeros_like(head);
        for (int t = 0; t < 5; ++t) sum += spliceTargetsFor(model, nullptr, pixels, "1.1@" + std::to_string(t));
        QVERIFY(maxAbsDiff(sum, head) < 1e-5);
        const at::Tensor neuron = spliceTargetsFor(model, nullptr, pixels, "neuron.0.3");
        QCOMPARE(neuron.size(1), out.size(1));
        QVERIFY(neuron.abs().sum().item<double>() > 0);
        QVERIFY_THROWS_EXCEPTION(InputError, spliceTargetsFor(model, nullptr, pixels, "9.0"));
        QVERIFY_THROWS_EXCEPTION(InputError, spliceTargetsFor(model, nullptr, pixels, "1.1@99"));
        QVERIFY_THROWS_EXCEPTION(InputError, spliceTargetsFor(model, nullptr, pixels, "neuron.0"));
    }

    // Timing at a ViT-B size (V = 10,000 concepts, E = 512, the reference's recommended laion
    // vocabulary size and l1 0.25): VITSCOPE_SPLICE_BENCH=1 build/bin/test_splice benchVitBSize.
    // Built data: the vocabulary shares an offset and the images are sparse mixtures of it plus noise.
    void benchVitBSize() {
        if (qEnvironmentVariableIsEmpty("VITSCOPE_SPLICE_BENCH"))
            QSKIP("set VITSCOPE_SPLICE_BENCH=1 to time SpLiCE at V = 10,000, E = 512");
        const int64_t V = 10000, E = 512, B = 8;
        at::Generator g = at::detail::createCPUGenerator(7);
        const at::Tensor vocab = at::randn({V, E}, g) + 0.8 * at::randn({1, E}, g);
        const at::Tensor offset = at::randn({1, E}, g);
        const at::Tensor mean = spliceMean(offset + 0.6 * at::randn({500, E}, g));
        const at::Tensor codes = at::rand({B, V}, g).gt(1.0 - 8.0 / V).to(at::kFloat) * at::rand({B, V}, g);
        const at::Tensor images =
            offset + at::matmul(codes, vocab / vocab.norm(2, 1, true)) + 0.2 * at::randn({B, E}, g);
        for (double l1 : {0.25, 0.1}) {
            SpliceParams p;
            p.l1 = l1;
            QElapsedTimer t;
            t.start();
            const SpliceResult r = runSplice(vocab, mean, images, p);
            const double perImage = static_cast<double>(t.elapsed()) / 1000.0 / static_cast<double>(B);
            qInfo(
                "V %lld E %lld l1 %.2f skl: %.3f s per image (%d cores), epochs %d..%d, nonzero %.1f per image, cosine "
                "%.4f",
                static_cast<long long>(V), static_cast<long long>(E), l1, perImage, splitParts(),
                *std::min_element(r.iterations.begin(), r.iterations.end()),
                *std::max_element(r.iterations.begin(), r.iterations.end()), (r.weights > 0).sum().item<double>() / B,
                r.cosine.mean().item<double>());
            p.solver = SpliceSolver::Admm;
            t.restart();
            const SpliceResult a = runSplice(vocab, mean, images, p);
            qInfo("  admm: %.3f s per image (batch of %lld), %d iterations, |admm - skl| %.3g",
                  static_cast<double>(t.elapsed()) / 1000.0 / B, static_cast<long long>(B), a.iterations.front(),
                  maxAbsDiff(a.weights, r.weights));
        }
    }
};

QTEST_GUILESS_MAIN(TestSplice)
#include "test_splice.moc"
