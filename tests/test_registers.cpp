// Register neurons and test-time registers (analysis/registers.h): parity with the reference's
// find_register_neurons and activate_on_registers (restated in tests/data/registers/make_reference.py),
// the intervened model against a per-token port on configurations the test builds, the sum identity
// with the registers as their own tokens, the diagnostics and the refusals.
#include "analysis/heatmap.h"
#include "analysis/registers.h"
#include "error.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/windows.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <fstream>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

namespace {

at::Tensor data(const std::string& name) { return readNpyTensor(test::source("tests/data/registers/" + name)); }

using Case = vitscope::test::RandomCase;

std::vector<Case> cases() {
    std::vector<Case> out;
    RandomVitSpec s;
    s.layout = RandomLayout::OpenAiClip, s.imageSize = 48, s.patchSize = 16, s.width = 64, s.layers = 4, s.embedDim = 24, s.seed = 41;
    out.push_back({"openai-clip", s, {{"model_cfg", {{"vision_cfg", {{"head_width", 16}}}, {"text_cfg", {{"heads", 1}}}, {"quick_gelu", true}}}}});
    s = {};
    s.layout = RandomLayout::Dinov2, s.imageSize = 28, s.patchSize = 14, s.width = 48, s.layers = 3, s.registers = 2, s.layerScale = true, s.seed = 42;
    out.push_back({"dinov2-layerscale-registers", s, {{"num_heads", 3}}});
    return out;
}

Model modelOf(const Case& c) { return buildModel(randomVitStateDict(c.spec), c.config, c.name); }

// activate_on_registers for one image, in plain loops: hidden [N, M] changed in place.
void interveneByHand(at::Tensor hidden, const std::vector<int64_t>& neurons, int K, double scale, RegisterNormalValues mode) {
    auto a = hidden.accessor<float, 2>();
    const int64_t n = hidden.size(0), first = 1, last = n - K;  // patches: [first, last)
    float hi = -1e30f, lo = 1e30f;
    for (int64_t t = 0; t < n; ++t)
        for (int64_t j : neurons) hi = std::max(hi, a[t][j]), lo = std::min(lo, a[t][j]);
    const float top = static_cast<float>(scale * (std::abs(hi) > std::abs(lo) ? hi : lo));
    for (int64_t j : neurons) {
        double sum = 0, squares = 0;
        for (int64_t t = first; t < last; ++t) sum += a[t][j];
        const double mean = sum / static_cast<double>(last - first);
        for (int64_t t = first; t < last; ++t) squares += (a[t][j] - mean) * (a[t][j] - mean);
        const double spread = std::sqrt(squares / static_cast<double>(last - first - 1));
        for (int64_t t = first; t < last; ++t) {
            if (mode == RegisterNormalValues::Zero) a[t][j] = 0;
            if (mode == RegisterNormalValues::Mean) a[t][j] = static_cast<float>(mean);
            if (mode == RegisterNormalValues::OnlyOutliers && a[t][j] > mean + spread) a[t][j] = static_cast<float>(mean);
        }
        for (int64_t t = last; t < n; ++t) a[t][j] = top;
    }
}

// The intervened model's output, token by token: the plain model's embedded tokens with K zero
// tokens appended before ln_pre (a zero token through ln_pre is its offset), every block written
// out, the register neurons changed by interveneByHand. [B, E]
at::Tensor portedOutput(const Model& plain, const at::Tensor& pixels, const std::map<int, std::vector<int64_t>>& chosen, int K, double scale,
                        RegisterNormalValues mode) {
    const VisionTower& v = plain.vision;
    at::Tensor x = embedImageTokens(plain, pixels);
    const int64_t batch = x.size(0), d = v.width, h = v.heads(), dh = d / h;
    const at::Tensor zero = v.lnPreB.defined() ? v.lnPreB.expand({batch, K, d}) : at::zeros({batch, K, d});
    x = at::cat({x, zero}, 1);
    const int64_t n = x.size(1);
    for (int l = 0; l < v.layers(); ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const at::Tensor y = at::layer_norm(x, {d}, b.ln1W, b.ln1B, v.encoder.eps);
        const at::Tensor qkv = at::linear(y, b.qkvW, b.qkvB).view({batch, n, 3, h, dh}).permute({2, 0, 3, 1, 4});  // [3, B, H, N, dh]
        const at::Tensor attn = at::softmax(at::matmul(qkv[0], qkv[1].transpose(-1, -2)) / std::sqrt(static_cast<double>(dh)), -1);
        at::Tensor a = at::linear(at::matmul(attn, qkv[2]).transpose(1, 2).reshape({batch, n, d}), b.outW, b.outB);
        if (b.ls1.defined()) a = a * b.ls1;
        const at::Tensor x1 = x + a;
        at::Tensor hidden = windows::activate(at::linear(at::layer_norm(x1, {d}, b.ln2W, b.ln2B, v.encoder.eps), b.fc1W, b.fc1B), v.encoder.activation)
                                .contiguous();
        if (chosen.count(l))
            for (int64_t i = 0; i < batch; ++i) interveneByHand(hidden[i], chosen.at(l), K, scale, mode);
        at::Tensor m = at::linear(hidden, b.fc2W, b.fc2B);
        if (b.ls2.defined()) m = m * b.ls2;
        x = x1 + m;
    }
    return outputsFromResidual(plain, x).output;
}

std::vector<RegisterNeuron> listOf(const std::vector<std::pair<int, int>>& pairs) {
    std::vector<RegisterNeuron> out;
    for (const auto& [l, n] : pairs) out.push_back({l, n, 0.0});
    return out;
}

std::string writeTemp(const QTemporaryDir& dir, const std::string& name, const std::string& text) {
    const std::string path = dir.filePath(QString::fromStdString(name)).toStdString();
    std::ofstream(path) << text;
    return path;
}

template <typename F>
QString errorOf(F f) {
    try {
        f();
    } catch (const InputError& e) {
        return QString::fromStdString(e.what());
    }
    return QString();
}

}  // namespace

class TestRegisters : public QObject {
    Q_OBJECT
private slots:
    void findMatchesReference() {
        const at::Tensor outputs = data("layer_outputs.npy"), acts = data("activations.npy");
        struct Setting {
            const char* file;
            double threshold;
            int layer;
            bool sparsity;
        };
        for (const Setting& s : {Setting{"find_default", 30.0, -1, false}, Setting{"find_sparse", 20.0, -2, true}}) {
            RegisterFindParams p;
            p.registerNormThreshold = s.threshold, p.detectOutliersLayer = s.layer, p.applySparsityFilter = s.sparsity;
            const int L = static_cast<int>(outputs.size(1));
            RegisterNeuronScores scores(L, static_cast<int>(acts.size(3)), p);
            for (int64_t i = 0; i < outputs.size(0); ++i) {
                std::vector<at::Tensor> hidden;
                for (int l = 0; l < L; ++l) hidden.push_back(acts[i][l]);
                QCOMPARE(scores.add(outputs[i][p.detectionLayer(L)], hidden), i != 3);  // image 3 has no outlier
            }
            QCOMPARE(scores.images(), 6);
            const std::vector<RegisterNeuron> got = scores.ranked();
            const at::Tensor pairs = data(std::string(s.file) + "_pairs.npy"), values = data(std::string(s.file) + "_scores.npy");
            QCOMPARE(static_cast<int64_t>(got.size()), pairs.size(0));
            for (std::size_t k = 0; k < got.size(); ++k) {
                const int64_t row = static_cast<int64_t>(k);
                QVERIFY2(got[k].layer == pairs[row][0].item<int64_t>() && got[k].neuron == pairs[row][1].item<int64_t>(),
                         qPrintable(QString("%1: rank %2 is %3.%4").arg(s.file).arg(k).arg(got[k].layer).arg(got[k].neuron)));
                QVERIFY(std::abs(got[k].score - values[row].item<double>()) < 1e-5);
            }
            QCOMPARE(got.front().layer, 1);  // the planted neurons 1.2 / 1.7 lead
        }
    }

    void activateMatchesReference() {
        const at::Tensor hidden = data("hidden.npy"), neurons = data("hidden_neurons.npy");
        for (RegisterNormalValues mode : {RegisterNormalValues::Zero, RegisterNormalValues::Mean, RegisterNormalValues::OnlyOutliers, RegisterNormalValues::Same}) {
            const at::Tensor expected = data(std::string("activate_") + registerNormalValuesName(mode) + ".npy");
            const at::Tensor got = activateOnRegisters(hidden, neurons, {2, 1.5, mode});
            QVERIFY2(maxAbsDiff(got, expected) < 1e-6, registerNormalValuesName(mode));
            // and the plain-loop port the model test uses agrees
            at::Tensor byHand = hidden[0].clone();
            interveneByHand(byHand, {1, 4, 9}, 2, 1.5, mode);
            QVERIFY(maxAbsDiff(byHand, expected[0]) < 1e-5);
        }
        QCOMPARE(data("activate_zero.npy")[0][11][4].item<float>(), -13.5f);  // 1.5 x the planted -9
    }

    void intervenedModelMatchesPort() {
        at::manual_seed(7);
        for (const Case& c : cases()) {
            const Model plain = modelOf(c);
            const at::Tensor pixels = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
            const std::vector<RegisterNeuron> ranked = listOf({{0, 3}, {1, 10}, {0, 17}, {2, 5}, {1, 2}});
            for (RegisterNormalValues mode : {RegisterNormalValues::Zero, RegisterNormalValues::Mean, RegisterNormalValues::OnlyOutliers}) {
                Model m = plain;
                TestTimeRegisterParams p;
                p.count = 2, p.topK = 4, p.highestLayer = 1, p.scale = 2.0, p.normalValues = mode;
                const std::vector<RegisterNeuron> used = applyTestTimeRegisters(m, p, ranked);
                QCOMPARE(used.size(), std::size_t(4));  // 2.5 is past the highest layer
                const at::Tensor got = encodeImages(m, pixels).output;
                const at::Tensor expected = portedOutput(plain, pixels, {{0, {3, 17}}, {1, {10, 2}}}, 2, 2.0, mode);
                QVERIFY2(maxAbsDiff(got, expected) < 2e-4 * expected.abs().max().item<double>(), c.name);
                QVERIFY(maxAbsDiff(got, encodeImages(plain, pixels).output) > 1e-3);  // the intervention changes the output
            }
        }
    }

    void sumIdentityWithRegisters() {
        at::manual_seed(8);
        for (const Case& c : cases()) {
            Model m = modelOf(c);
            const at::Tensor pixels = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
            const int64_t n0 = m.vision.tokensFor(c.spec.imageSize);
            TestTimeRegisterParams p;
            p.count = 3, p.highestLayer = -1;
            applyTestTimeRegisters(m, p, listOf({{0, 1}, {1, 4}}));
            DecomposeOptions o;
            o.tokens = true;
            const Decomposition d = decomposeImages(m, pixels, o);
            QCOMPARE(d.heads.size(3), n0 + 3);  // the registers are the last tokens
            QVERIFY2(d.maxAbsError < 1e-4 * d.output.abs().max().item<double>(), c.name);
            QVERIFY(maxAbsDiff(d.output, encodeImages(m, pixels).output) < 1e-5);
            const at::Tensor registers = d.heads.narrow(3, n0, 3).sum(at::IntArrayRef{1, 2, 3});  // [B, E]
            QVERIFY(registers.abs().max().item<double>() > 1e-4);  // the class token reads them
            std::vector<std::string> names;
            const at::Tensor terms = termsByComponent(d, &names);
            QVERIFY(maxAbsDiff(terms.sum(1), d.output) < 1e-4 * d.output.abs().max().item<double>());
        }
    }

    void findOnModelMatchesTrace() {
        at::manual_seed(9);
        const Case c = cases().front();
        const Model m = modelOf(c);
        const at::Tensor pixels = at::randn({5, 3, c.spec.imageSize, c.spec.imageSize});
        const ImageTrace t = traceImages(m, pixels, true);
        // A threshold between the last block's largest and median token norms: some images have outliers.
        const at::Tensor norms = t.residuals.back().norm(2, 2);
        RegisterFindParams p;
        p.registerNormThreshold = 0.5 * (norms.max().item<double>() + norms.median().item<double>());
        p.batch = 2;
        int kept = 0;
        const std::vector<RegisterNeuron> got =
            findRegisterNeurons(m, 5, [&](int64_t s, int64_t n) { return pixels.narrow(0, s, n); }, p, JobContext(), &kept);
        // By hand: per image with outliers, per layer and neuron, the mean |activation| there.
        at::Tensor sum = at::zeros({m.vision.layers(), t.hidden[0].size(2)}, at::kDouble);
        int images = 0;
        for (int64_t i = 0; i < 5; ++i) {
            const at::Tensor where = at::nonzero(norms[i] > p.registerNormThreshold).view({-1});
            if (where.numel() == 0) continue;
            ++images;
            for (int l = 0; l < m.vision.layers(); ++l) sum[l] += t.hidden[static_cast<std::size_t>(l)][i].index_select(0, where).abs().mean(0).to(at::kDouble);
        }
        QCOMPARE(kept, images);
        QVERIFY(images > 0 && images < 5);
        const at::Tensor mean = sum / images;
        const auto best = mean.flatten().argmax().item<int64_t>();
        QCOMPARE(int64_t(got.front().layer) * mean.size(1) + got.front().neuron, best);
        QVERIFY(std::abs(got.front().score - mean.flatten()[best].item<double>()) < 1e-5);
        for (std::size_t k = 1; k < got.size(); ++k) QVERIFY(got[k - 1].score >= got[k].score);
    }

    void normsAndClassAttention() {
        at::manual_seed(10);
        const Case c = cases().front();
        const Model m = modelOf(c);
        const at::Tensor pixels = at::randn({1, 3, c.spec.imageSize, c.spec.imageSize});
        const ImageTrace t = traceImages(m, pixels);
        const at::Tensor last = t.residuals.back()[0].norm(2, 1);  // [N]
        RegisterFindParams p;
        p.registerNormThreshold = std::get<0>(last.sort(0, true))[2].item<double>() * 0.999;  // the three largest tokens
        const TokenNormReport r = tokenNorms(m, pixels, p);
        QCOMPARE(r.norms.size(0), int64_t(m.vision.layers()));
        QVERIFY(maxAbsDiff(r.norms[-1], last) < 1e-5);
        QCOMPARE(r.outliers.sum().item<int64_t>(), int64_t(3));
        for (int l = 0; l < m.vision.layers(); ++l) {
            double share = 0;
            const at::Tensor row = t.attention[static_cast<std::size_t>(l)][0].select(1, 0).mean(0);
            for (int64_t n = 0; n < row.size(0); ++n)
                if (r.outliers[n].item<bool>()) share += row[n].item<double>();
            QVERIFY(std::abs(r.clsShare[l].item<double>() - share) < 1e-6);
        }
        const at::Tensor patches = r.norms[0].narrow(0, r.prefix, r.gridH * r.gridW);
        QVERIFY(std::abs(r.maxOverMedian[0].item<double>() - patches.max().item<double>() / patches.median().item<double>()) < 1e-5);
    }

    void heatmapKeepsRegistersOut() {
        at::manual_seed(11);
        const Case c = cases().front();
        Model m = modelOf(c);
        TestTimeRegisterParams p = testTimeRegisterDefaults(m);  // highest layer 5 clamped to the model's last
        QCOMPARE(p.highestLayer, 3);
        p.count = 2;
        applyTestTimeRegisters(m, p, listOf({{0, 1}}));
        const at::Tensor pixels = at::randn({1, 3, c.spec.imageSize, c.spec.imageSize});
        const at::Tensor text = at::randn({m.vision.embedDim()});
        HeatmapParams hp;
        const Heatmap h = computeHeatmap(m, pixels, text / text.norm(), hp);
        const int g = c.spec.imageSize / c.spec.patchSize;
        QCOMPARE(h.patches.sizes().vec(), (std::vector<int64_t>{g, g}));
        QCOMPARE(h.registerScores.size(0), int64_t(2));
        // The map's patches are the per-token scores of the decomposition, registers excluded.
        const Decomposition d = decomposeImages(m, pixels, imageDecomposeOptions(m));
        const at::Tensor scores = decompositionTokenScores(d.heads[0], text / text.norm(), hp);
        QVERIFY(maxAbsDiff(h.patches.flatten(), scores.narrow(0, 1, g * g)) < 1e-5);
        QVERIFY(maxAbsDiff(h.registerScores, scores.narrow(0, 1 + g * g, 2)) < 1e-5);
        hp.method = HeatmapMethod::GradCam;
        QVERIFY(errorOf([&] { computeHeatmap(m, pixels, text / text.norm(), hp); }).contains("--test-time-registers"));
    }

    // The heatmap warning's share: the positive mass on the masked patches over all positive mass.
    void outlierMassShareOfAMap() {
        const at::Tensor map = at::tensor({3.0f, -1.0f, 1.0f, 0.0f, 4.0f, -2.0f}).reshape({2, 3});
        const at::Tensor mask = at::tensor({1, 0, 0, 1, 1, 1}).to(at::kBool);
        QCOMPARE(outlierMassShare(map, mask), 7.0 / 8.0);  // (3 + 0 + 4 + 0) of (3 + 1 + 4)
        QCOMPARE(outlierMassShare(map, at::zeros({6}, at::kBool)), 0.0);
        QCOMPARE(outlierMassShare(-map.abs(), mask), 0.0);  // no positive mass
        QVERIFY_THROWS_EXCEPTION(InputError, outlierMassShare(map, at::zeros({4}, at::kBool)));
    }

    void refusals() {
        const Case c = cases().front();
        Model m = modelOf(c);
        QTemporaryDir dir;
        const std::string badLayer = writeTemp(dir, "layer.txt", "0.3\n9.1\n");
        QVERIFY(errorOf([&] { readRegisterNeurons(badLayer, m); }).contains("layer.txt:2: layer 9 is not a block"));
        const std::string badNeuron = writeTemp(dir, "neuron.txt", "1.256\n");
        QVERIFY(errorOf([&] { readRegisterNeurons(badNeuron, m); }).contains("neuron.txt:1: neuron 256 is outside the MLP's 256 neurons"));
        const std::string badLine = writeTemp(dir, "line.txt", "1.2\nthree\n");
        QVERIFY(errorOf([&] { readRegisterNeurons(badLine, m); }).contains("line.txt:2: expected layer.neuron"));
        const std::string good = writeTemp(dir, "good.txt", "1.2\n0.7\n");
        QCOMPARE(readRegisterNeurons(good, m).size(), std::size_t(2));
        TestTimeRegisterParams p = testTimeRegisterDefaults(m);
        p.count = 0;
        QVERIFY(errorOf([&] { applyTestTimeRegisters(m, p, listOf({{0, 1}})); }).contains("--test-time-registers 0"));
        p.count = 1, p.highestLayer = 0;
        QVERIFY(errorOf([&] { applyTestTimeRegisters(m, p, listOf({{1, 1}})); }).contains("leaves no register neuron"));
        QVERIFY(!m.vision.suffixTokens());  // a refused call leaves the model as it was
        QVERIFY(errorOf([&] { parseRegisterNormalValues("median"); }).contains("--register-normal-values median"));
        RegisterFindParams f;
        f.detectOutliersLayer = -9;
        QVERIFY(errorOf([&] { f.validate(m); }).contains("--detect-outliers-layer -9"));
        f = {};
        f.registerNormThreshold = 1e9;
        const at::Tensor pixels = at::randn({1, 3, c.spec.imageSize, c.spec.imageSize});
        QVERIFY(errorOf([&] { findRegisterNeurons(m, 1, [&](int64_t, int64_t) { return pixels; }, f, JobContext()); })
                    .contains("--register-norm-threshold"));
        RandomVitSpec swin;
        swin.layout = RandomLayout::TimmSwin;
        const Model swinModel = buildModel(randomVitStateDict(swin), nlohmann::json(), "random-swin");
        QVERIFY(errorOf([&] { readRegisterNeurons(good, swinModel); }).contains("plain ViT with a class token"));
    }
};

QTEST_GUILESS_MAIN(TestRegisters)
#include "test_registers.moc"
