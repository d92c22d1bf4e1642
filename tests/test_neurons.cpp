// Second-order neuron effects (analysis/second_order.h) against a naive port of the reference's
// hook (second_order_lens, prs_second_order_neurons_hook.py: per (later layer, head) pair, every
// neuron's write as a [b, tokens, neurons, value] tensor pushed through ln_1, the head and ln_post
// with the even shares it uses), and the sum over a layer's neurons against the layer's whole MLP
// output taken as one component through the same paths, on configurations the test builds.
#include "analysis/neurons.h"
#include "analysis/property.h"
#include "analysis/second_order.h"
#include "error.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/windows.h"
#include "test_util.h"

#include <QtTest/QtTest>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

namespace {

using Case = vitscope::test::RandomCase;

std::vector<Case> clipCases() {
    std::vector<Case> out;
    RandomVitSpec s;
    s.layout = RandomLayout::OpenAiClip, s.imageSize = 48, s.patchSize = 16, s.width = 64, s.layers = 4, s.embedDim = 24, s.seed = 21;
    out.push_back({"openai-clip-quickgelu-4layers", s, {{"model_cfg", {{"vision_cfg", {{"head_width", 16}}}, {"text_cfg", {{"heads", 1}}}, {"quick_gelu", true}}}}});
    s = {};
    s.layout = RandomLayout::HfClip, s.imageSize = 32, s.patchSize = 8, s.width = 48, s.layers = 3, s.embedDim = 20, s.seed = 22;
    out.push_back({"hf-clip-p8-3heads", s, {{"vision_config", {{"num_attention_heads", 3}, {"hidden_act", "gelu"}}}, {"text_config", {{"num_attention_heads", 1}}}}});
    return out;
}

std::vector<Case> otherCases() {
    std::vector<Case> out;
    RandomVitSpec s;
    s.layout = RandomLayout::Dinov2, s.imageSize = 28, s.patchSize = 14, s.width = 48, s.layers = 3, s.registers = 2, s.layerScale = true, s.seed = 23;
    out.push_back({"dinov2-layerscale-registers", s, {{"num_heads", 3}}});
    s = {};
    s.layout = RandomLayout::Timm, s.imageSize = 32, s.patchSize = 16, s.width = 32, s.layers = 3, s.seed = 24;
    out.push_back({"timm-vit", s, {{"num_heads", 2}}});
    return out;
}

at::Tensor layerNormOf(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
    const at::Tensor mean = x.mean(-1, true);
    return (x - mean) / at::sqrt((x * x).mean(-1, true) - mean * mean + eps) * w + b;
}

// Block m's MLP activations [B, N, M], recomputed from the residual entering it and the block's
// attention (checked against the residual leaving it).
at::Tensor hiddenOf(const Model& model, const ImageTrace& tr, int m) {
    const VisionTower& v = model.vision;
    const Block& b = v.encoder.blocks[static_cast<std::size_t>(m)];
    const int64_t d = v.width, h = v.heads(), dh = d / h;
    const at::Tensor x = tr.residuals[static_cast<std::size_t>(m)];
    const at::Tensor y = layerNormOf(x, b.ln1W, b.ln1B, v.encoder.eps);
    const at::Tensor val = at::linear(y, b.qkvW.narrow(0, 2 * d, d), b.qkvB.narrow(0, 2 * d, d));  // [B, N, D]
    const at::Tensor vh = val.view({x.size(0), x.size(1), h, dh}).transpose(1, 2);                // [B, H, N, dh]
    const at::Tensor o = at::matmul(tr.attention[static_cast<std::size_t>(m)], vh).transpose(1, 2).reshape({x.size(0), x.size(1), d});
    at::Tensor a = at::linear(o, b.outW, b.outB);
    if (b.ls1.defined()) a = a * b.ls1;
    const at::Tensor x1 = x + a;
    const at::Tensor hidden = windows::activate(at::linear(layerNormOf(x1, b.ln2W, b.ln2B, v.encoder.eps), b.fc1W, b.fc1B), v.encoder.activation);
    at::Tensor mlp = at::linear(hidden, b.fc2W, b.fc2B);
    if (b.ls2.defined()) mlp = mlp * b.ls2;
    const double miss = maxAbsDiff(x1 + mlp, tr.residuals[static_cast<std::size_t>(m) + 1]);
    if (miss > 1e-3) throw std::runtime_error("the test's block recomputation misses the forward by " + std::to_string(miss));
    return hidden;
}

// The reference's hook, step by step (SecondOrderPrsNeurons.apply_attention_head_and_project_layer_neurons,
// summed over (layer, head) as compute_second_order_neuron_prs.py does): [B, neurons, E].
at::Tensor referenceHookPort(const Model& model, const at::Tensor& pixels, int mlpLayer) {
    const VisionTower& v = model.vision;
    const ImageTrace tr = traceImages(model, pixels);
    const at::Tensor representation = encodeImages(model, pixels).output;  // encode_image(normalize=False)
    const int64_t d = v.width, H = v.heads(), dh = d / H;
    const int L = v.layers();
    const at::Tensor gelu = hiddenOf(model, tr, mlpLayer);  // log_post_gelu
    const int64_t neurons = gelu.size(2);
    const Block& mb = v.encoder.blocks[static_cast<std::size_t>(mlpLayer)];
    // apply_mlp_post
    at::Tensor mlpOutputs = at::einsum("btn,nm->btnm", {gelu, mb.fc2W.t()}) + (mb.fc2B / static_cast<double>(neurons)).view({1, 1, 1, d});
    const at::Tensor z = tr.residuals.back().select(1, 0);
    const at::Tensor postMean = z.mean(-1, true);                                     // [b, 1]
    const at::Tensor postStd = at::sqrt((z * z).mean(-1, true) - postMean * postMean + v.normEps);
    at::Tensor total = at::zeros({pixels.size(0), neurons, v.embedDim()});
    for (int layer = mlpLayer + 1; layer < L; ++layer) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(layer)];
        const at::Tensor x = tr.residuals[static_cast<std::size_t>(layer)];
        const at::Tensor lnMean = x.mean(-1, true);                                    // [b, t, 1]
        const at::Tensor lnStd = at::sqrt((x * x).mean(-1, true) - lnMean * lnMean + v.encoder.eps);
        for (int64_t head = 0; head < H; ++head) {
            // normalize_before_attention_per_neuron
            const double normTerm = (1 + layer * 2) * static_cast<double>(neurons);
            const at::Tensor centred = mlpOutputs - lnMean.unsqueeze(2) / normTerm;
            const at::Tensor normalized = b.ln1W * centred / lnStd.unsqueeze(2) + b.ln1B / normTerm;
            // apply_attention_matrix_per_neuron
            const at::Tensor vWeight = b.qkvW.narrow(0, 2 * d, d).reshape({H, dh, d});
            const at::Tensor vBias = b.qkvB.narrow(0, 2 * d, d).reshape({1, H, 1, dh});
            at::Tensor val = at::einsum("bnxc,dc->bnxd", {normalized, vWeight[head]});
            val = val + vBias.select(1, head) / ((1 + layer * 2) * static_cast<double>(neurons));
            const at::Tensor attnMap = tr.attention[static_cast<std::size_t>(layer)];  // [B, H, N, N]
            const at::Tensor xh = at::einsum("bnm,bmxc->bnxc", {attnMap.select(1, head), val});
            at::Tensor ret = at::einsum("bnxc,dc->bnxd", {xh, b.outW.reshape({d, H, dh}).select(1, head)});
            ret = ret + b.outB.view({1, 1, 1, d}) / ((1 + layer * 2) * static_cast<double>(H * neurons));
            // project_attentions_to_output_per_neuron
            const double normalization = (1 + layer * 2) * (1 + L * 2) * static_cast<double>(H * neurons);
            const at::Tensor meanCentred = ret.select(1, 0) - postMean.unsqueeze(1) / normalization;
            const at::Tensor postLn = v.normW * meanCentred / postStd.unsqueeze(1) + v.normB / normalization;
            const at::Tensor projected = at::matmul(postLn, v.proj) * 100.0;
            total += projected / representation.norm(2, -1).view({-1, 1, 1});
        }
    }
    return total;
}

// The layer's whole MLP output as one component through every later single head, straight to
// the output, in either convention (forward.h's exact / textspan bookkeeping at each norm).
at::Tensor wholeMlpThroughHeads(const Model& model, const at::Tensor& pixels, int m, bool reference) {
    const VisionTower& v = model.vision;
    const ImageTrace tr = traceImages(model, pixels);
    const at::Tensor hidden = hiddenOf(model, tr, m);
    const Block& mb = v.encoder.blocks[static_cast<std::size_t>(m)];
    at::Tensor mlp = reference ? at::linear(hidden, mb.fc2W, mb.fc2B) : at::linear(hidden, mb.fc2W);
    if (mb.ls2.defined()) mlp = mlp * mb.ls2;
    const int64_t d = v.width, H = v.heads(), dh = d / H;
    const int L = v.layers();
    const at::Tensor P = v.proj.defined() ? v.proj : at::eye(d);
    const at::Tensor z = tr.residuals.back().select(1, 0);
    const at::Tensor sPost = at::sqrt(z.var(1, false) + v.normEps).unsqueeze(1);
    at::Tensor total = at::zeros({pixels.size(0), P.size(1)});
    for (int l = m + 1; l < L; ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const at::Tensor x = tr.residuals[static_cast<std::size_t>(l)];
        const at::Tensor mu = x.mean(-1, true), s = at::sqrt(x.var(-1, false, true) + v.encoder.eps);
        const double k = 1 + 2 * l;
        const at::Tensor normed = reference ? b.ln1W * (mlp - mu / k) / s + b.ln1B / k : b.ln1W * (mlp - mlp.mean(-1, true)) / s;
        for (int64_t h = 0; h < H; ++h) {
            at::Tensor val = at::linear(normed, b.qkvW.narrow(0, 2 * d + h * dh, dh));
            if (reference) val = val + b.qkvB.narrow(0, 2 * d + h * dh, dh) / k;
            const at::Tensor row = at::matmul(tr.attention[static_cast<std::size_t>(l)].select(1, h).select(1, 0).unsqueeze(1), val).squeeze(1);  // [B, dh]
            at::Tensor o = at::linear(row, b.outW.narrow(1, h * dh, dh));
            if (reference) o = o + b.outB / (k * H);
            if (b.ls1.defined()) o = o * b.ls1;
            const double kp = k * (1 + 2 * L) * H;
            const at::Tensor p = reference ? v.normW * (o - z.mean(1, true) / kp) / sPost + v.normB / kp
                                           : v.normW * (o - o.mean(1, true)) / sPost;
            total += at::matmul(p, P);
        }
    }
    if (reference) total = total * 100.0 / encodeImages(model, pixels).output.norm(2, 1, true);
    return total;
}

double relativeMiss(const at::Tensor& got, const at::Tensor& expected) {
    return maxAbsDiff(got, expected) / std::max(1e-12, expected.abs().max().item<double>());
}

}  // namespace

class TestNeurons : public QObject {
    Q_OBJECT
private slots:
    void matchesTheReferenceHook() {
        at::manual_seed(31);
        for (const Case& c : clipCases()) {
            const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
            const at::Tensor pixels = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
            for (int layer : {0, model.vision.layers() - 2}) {
                const at::Tensor expected = referenceHookPort(model, pixels, layer);
                SecondOrderSettings s;
                s.layer = layer;
                const SecondOrderEffects got = SecondOrderLens(model, s).compute(pixels);
                QCOMPARE(got.effects.sizes().vec(), expected.sizes().vec());
                const double miss = relativeMiss(got.effects, expected);
                QVERIFY2(miss < 1e-5, qPrintable(QString("%1 layer %2: relative miss %3").arg(c.name).arg(layer).arg(miss)));
                // The shares every neuron gets (biases, norm means and offsets) dominate the mean over neurons.
                const double shared = relativeMiss(got.effects.mean(1), expected.mean(1));
                QVERIFY2(shared < 1e-5, qPrintable(QString("%1 layer %2: mean over neurons misses by %3").arg(c.name).arg(layer).arg(shared)));
                QVERIFY(maxAbsDiff(got.norms, expected.norm(2, 2)) < 1e-4 * expected.norm(2, 2).max().item<double>());
                // Kept and rebuilt image-independent maps give the same effects.
                s.cacheBytes = 0;
                const SecondOrderLens rebuilt(model, s);
                QCOMPARE(rebuilt.keptBytes(), int64_t(0));
                QVERIFY(relativeMiss(rebuilt.compute(pixels).effects, expected) < 1e-5);
            }
        }
    }

    void neuronsSumToTheWholeMlp() {
        at::manual_seed(32);
        std::vector<Case> cases = clipCases();
        for (const Case& c : otherCases()) cases.push_back(c);
        for (const Case& c : cases) {
            const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
            const at::Tensor pixels = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
            for (NeuronConvention conv : {NeuronConvention::Reference, NeuronConvention::Exact}) {
                for (int layer = 0; layer + 1 < model.vision.layers(); ++layer) {
                    SecondOrderSettings s;
                    s.layer = layer;
                    s.convention = conv;
                    const SecondOrderEffects got = SecondOrderLens(model, s).compute(pixels);
                    const at::Tensor expected = wholeMlpThroughHeads(model, pixels, layer, conv == NeuronConvention::Reference);
                    const double miss = relativeMiss(got.effects.sum(1), expected);
                    QVERIFY2(miss < 1e-5, qPrintable(QString("%1 %2 layer %3: relative miss %4").arg(c.name, neuronConventionName(conv)).arg(layer).arg(miss)));
                    // Every neuron has its own effect (not one shared vector).
                    QVERIFY(got.effects.select(0, 0).std(0).max().item<double>() > 1e-6);
                }
            }
        }
    }

    // compute_pcas.py's directions, norms and images (tests/data/neurons/make_reference.py), also
    // with fewer images than the top-k (its sign rule still compares with top_k // 2).
    void principalDirectionsMatchTheReference() {
        const std::string data = vitscope::test::source("tests/data/neurons/");
        for (const char* name : {"large", "small"}) {
            const std::string p = data + name;
            const NeuronDirections got = neuronPrincipalDirections(readNpyTensor(p + "_effects.npy"), 100);
            const at::Tensor pca = readNpyTensor(p + "_pca.npy");
            QVERIFY2(maxAbsDiff(got.directions, pca) < 1e-4, qPrintable(QString("%1: %2").arg(name).arg(maxAbsDiff(got.directions, pca))));
            QVERIFY(maxAbsDiff(got.topNorms, readNpyTensor(p + "_top_norms.npy")) < 1e-4);
            QVERIFY(at::equal(got.topImages, readNpyTensor(p + "_top_images.npy")));
        }
    }

    // The streamed summary (two passes, batches of 7, its state saved and restored into a new builder
    // in each pass) against compute_pcas.py's outputs on the same effects.
    void streamedSummaryMatchesTheReference() {
        const std::string data = vitscope::test::source("tests/data/neurons/");
        const QTemporaryDir tmp;
        const std::string state = (tmp.path() + "/state.safetensors").toStdString();
        for (const char* name : {"large", "small"}) {
            const std::string p = data + name;
            const at::Tensor effects = readNpyTensor(p + "_effects.npy");
            const int64_t n = effects.size(0), m = effects.size(1), e = effects.size(2);
            auto builder = std::make_unique<NeuronSummaryBuilder>(n, m, e, 100);
            for (int pass = 1; pass <= 2; ++pass) {
                for (int64_t start = 0; start < n; start += 7) {
                    builder->add(effects.narrow(0, start, std::min<int64_t>(7, n - start)));
                    if (start == 14) {  // an interruption: a new builder resumes from the saved state
                        builder->save(state, name);
                        builder = std::make_unique<NeuronSummaryBuilder>(n, m, e, 100);
                        QVERIFY(builder->restore(state, name));
                        QCOMPARE(builder->pass(), pass);
                        QCOMPARE(builder->done(), int64_t(21));
                    }
                }
            }
            QCOMPARE(builder->pass(), 3);
            const NeuronDirections got = builder->finish();
            const at::Tensor pca = readNpyTensor(p + "_pca.npy");
            QVERIFY2(maxAbsDiff(got.directions, pca) < 1e-4, qPrintable(QString("%1: %2").arg(name).arg(maxAbsDiff(got.directions, pca))));
            QVERIFY(maxAbsDiff(got.topNorms, readNpyTensor(p + "_top_norms.npy")) < 1e-4);
            QVERIFY(at::equal(got.topImages, readNpyTensor(p + "_top_images.npy")));
            QVERIFY(maxAbsDiff(got.mean, effects.mean(0)) < 1e-5);
            NeuronSummaryBuilder other(n, m, e, 100);
            QVERIFY_THROWS_EXCEPTION(FormatError, other.restore(state, "another key"));
            NeuronSummaryBuilder otherK(n, m, e, 50);
            QVERIFY_THROWS_EXCEPTION(FormatError, otherK.restore(state, name));
            QVERIFY(!other.restore(state + ".none", name));
            QVERIFY_THROWS_EXCEPTION(InputError, other.finish());
        }
    }

    // The sparse text decomposition against sklearn's SparseCoder (omp) on the reference's dictionary.
    void sparseTextsMatchSklearn() {
        const std::string data = vitscope::test::source("tests/data/neurons/");
        const at::Tensor dictionary = referenceTextDictionary(readNpyTensor(data + "texts.npy"), 100.0);
        const SparseCodes codes = orthogonalMatchingPursuit(dictionary, readNpyTensor(data + "large_pca.npy"), 5);
        const at::Tensor expected = readNpyTensor(data + "decomposition.npy");  // [M, T] dense
        at::Tensor dense = at::zeros_like(expected);
        for (int64_t r = 0; r < dense.size(0); ++r)
            for (int64_t j = 0; j < 5; ++j) {
                const int64_t i = codes.indices[r][j].item<int64_t>();
                QVERIFY(i >= 0);
                dense[r][i] = codes.values[r][j];
            }
        QVERIFY2(maxAbsDiff(dense, expected) < 1e-5 * expected.abs().max().item<double>(),
                 qPrintable(QString("max diff %1").arg(maxAbsDiff(dense, expected))));
        std::vector<std::string> names;
        for (int i = 0; i < 60; ++i) names.push_back("text " + std::to_string(i));
        const std::vector<NeuronText> top = topTexts(codes, 0, names, 3);
        QCOMPARE(top.size(), std::size_t(3));
        const at::Tensor row = expected[0].abs();
        QCOMPARE(top[0].index, row.argmax().item<int64_t>());
        QVERIFY(std::abs(top[0].coefficient) >= std::abs(top[1].coefficient) && std::abs(top[1].coefficient) >= std::abs(top[2].coefficient));
        // A target that is one atom stops after it (the rest of its list is empty).
        const SparseCodes one = orthogonalMatchingPursuit(dictionary, dictionary.narrow(0, 7, 1), 5);
        QCOMPARE(one.indices[0][0].item<int64_t>(), int64_t(7));
        QVERIFY(std::abs(one.values[0][0].item<double>() - 1.0) < 1e-9);
        QCOMPARE(one.indices[0][1].item<int64_t>(), int64_t(-1));
    }

    // compute_ablations.py's rows on validation effects with training statistics (make_reference.py).
    void ablationTableMatchesTheReference() {
        const std::string data = vitscope::test::source("tests/data/neurons/");
        const NeuronDirections train = neuronPrincipalDirections(readNpyTensor(data + "large_effects.npy"), 100);
        NeuronAblationMeter meter(train, readNpyTensor(data + "classifier.npy"), 5.0);
        const at::Tensor effects = readNpyTensor(data + "val_effects.npy"), output = readNpyTensor(data + "val_output.npy"),
                         labels = readNpyTensor(data + "val_labels.npy");
        meter.add(effects.narrow(0, 0, 50), output.narrow(0, 0, 50), labels.narrow(0, 0, 50));  // in two batches
        meter.add(effects.narrow(0, 50, 70), output.narrow(0, 50, 70), labels.narrow(0, 50, 70));
        const at::Tensor expected = readNpyTensor(data + "ablation_top1.npy");
        const auto rows = meter.top1();
        QCOMPARE(rows.size(), std::size_t(6));
        QCOMPARE(meter.images(), int64_t(120));
        for (std::size_t i = 0; i < rows.size(); ++i)
            QVERIFY2(std::abs(rows[i].second - expected[static_cast<int64_t>(i)].item<double>()) < 1e-3,
                     qPrintable(QString("%1: %2 vs %3").arg(rows[i].first.c_str()).arg(rows[i].second).arg(expected[static_cast<int64_t>(i)].item<double>())));
    }

    // A neuron whose effects vary along the property's span (and with the total) ranks first;
    // direction scores through a neuron set are the sums of its effects' dot products.
    void neuronRankingAndScores() {
        at::manual_seed(51);
        const int64_t n = 200, m = 5, e = 12;
        at::Tensor effects = 0.5 * at::randn({n, m, e});
        const at::Tensor property = at::zeros({2, e});
        property[0][3] = 1;
        property[1][7] = 1;
        const at::Tensor signal = at::randn({n, 2});
        effects.select(1, 2).select(1, 3).add_(3 * signal.select(1, 0));
        effects.select(1, 2).select(1, 7).add_(3 * signal.select(1, 1));
        const at::Tensor total = effects.sum(1) + 0.1 * at::randn({n, e});
        const auto ranked = rankNeurons(effects, total, property);
        QCOMPARE(ranked.size(), std::size_t(m));
        QCOMPARE(ranked.front().first, int64_t(2));
        QVERIFY(ranked.front().second > 0.9 && ranked[1].second < 0.5);
        const at::Tensor direction = at::randn({e});
        const at::Tensor scores = neuronDirectionScores(effects, {1, 3}, direction);
        QVERIFY(maxAbsDiff(scores, at::matmul(effects.select(1, 1) + effects.select(1, 3), direction)) < 1e-4);
        QVERIFY_THROWS_EXCEPTION(InputError, neuronDirectionScores(effects, {5}, direction));
        // Each score is Beyond CLIP's property score of the neuron's effects (property.h, in one
        // piece), also when the images arrive in uneven batches (the GUI's pass over a dataset).
        const at::Tensor basis = propertyBasis(property);
        NeuronPropertyScorer scorer(property, m);
        for (int64_t i0 = 0; i0 < n; i0 += 37) {
            const int64_t b = std::min<int64_t>(37, n - i0);
            scorer.add(effects.narrow(0, i0, b), total.narrow(0, i0, b));
        }
        QCOMPARE(scorer.images(), n);
        const auto batched = scorer.ranked();
        for (std::size_t i = 0; i < ranked.size(); ++i) {
            const double whole = propertyScore(effects.select(1, ranked[i].first).contiguous(), total, basis);
            QVERIFY2(std::abs(ranked[i].second - whole) < 1e-5,
                     qPrintable(QString("%1 vs %2").arg(ranked[i].second).arg(whole)));
            QCOMPARE(batched[i].first, ranked[i].first);
            QVERIFY(std::abs(batched[i].second - ranked[i].second) < 1e-9);
        }
        QVERIFY_THROWS_EXCEPTION(InputError, scorer.add(effects.narrow(1, 0, 3), total));
        // neurons retrieve's two scores: through the neurons, and the output's cosine with the text.
        const at::Tensor output = at::randn({n, e});
        const NeuronRetrievalScores r = neuronRetrievalScores(effects, output, {1, 3}, direction);
        QVERIFY(maxAbsDiff(r.through, scores) < 1e-9);
        QVERIFY(maxAbsDiff(r.global, at::matmul(output / output.norm(2, 1, true), direction)) < 1e-5);
        const auto top = topScores(r.global, 5);
        QCOMPARE(top.size(), std::size_t(5));
        QCOMPARE(top.front().first, r.global.argmax().item<int64_t>());
        QVERIFY(top[0].second >= top[1].second && top[3].second >= top[4].second);
    }

    // compute_segmentation.py's neuron map: the neurons with the largest |direction . text| over the
    // layers given, and the mean of their activations at the patch tokens (recomputed here).
    // The ranking cache: every neuron's sums along a basis U give, for any property whose span lies
    // in span(U), the scores a pass over the effects gives (propertyScore of each neuron in one
    // piece); a property outside span(U) is refused (empty), and the size does not grow with the images.
    void spanStatisticsRankLikeAPass() {
        at::manual_seed(29);
        const int64_t n = 300, m = 7, e = 24;
        const at::Tensor effects = at::randn({n, m, e});
        const at::Tensor color = at::randn({3, e}), shape = at::randn({4, e});
        effects.select(1, 5).add_(at::matmul(at::randn({n, 3}), color));  // neuron 5 carries "color"
        const at::Tensor total = effects.sum(1) + 0.1 * at::randn({n, e});
        const at::Tensor basis = NeuronSpanStatistics::spanBasis(at::cat({color, shape}), 100);
        QCOMPARE(basis.size(0), int64_t(7));
        QVERIFY(maxAbsDiff(at::matmul(basis, basis.t()), at::eye(7)) < 1e-5);                       // orthonormal rows
        QCOMPARE(NeuronSpanStatistics::spanBasis(at::cat({color, shape}), 5).size(0), int64_t(5));  // capped
        NeuronSpanStatistics stats(basis, m);
        const int64_t empty = stats.bytes();
        QVERIFY(stats.ranked(color).empty());  // no image yet
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            const int64_t b = std::min<int64_t>(64, n - i0);
            stats.add(effects.narrow(0, i0, b), total.narrow(0, i0, b));
        }
        QCOMPARE(stats.images(), n);
        QCOMPARE(stats.bytes(), empty);
        QCOMPARE(stats.bytes(), int64_t(8 * (m * 7 + 2 * m * 7 * 7 + 7 + 7 * 7)));
        for (const at::Tensor& property : {color, shape, at::cat({shape.narrow(0, 0, 2), color.narrow(0, 1, 1)})}) {
            const auto pass = rankNeurons(effects, total, property);
            const auto cached = stats.ranked(property);
            QCOMPARE(cached.size(), pass.size());
            for (std::size_t i = 0; i < pass.size(); ++i) {
                QCOMPARE(cached[i].first, pass[i].first);
                QVERIFY2(std::abs(cached[i].second - pass[i].second) < 1e-5,
                         qPrintable(QString("%1 vs %2").arg(cached[i].second).arg(pass[i].second)));
            }
        }
        QCOMPARE(stats.ranked(color).front().first, int64_t(5));
        QVERIFY(stats.ranked(at::randn({2, e})).empty());  // outside span(U)
        // The whole space: every property.
        NeuronSpanStatistics whole(at::eye(e), m);
        whole.add(effects, total);
        const auto any = at::randn({5, e});
        QVERIFY(std::abs(whole.ranked(any).front().second - rankNeurons(effects, total, any).front().second) < 1e-5);
        // The budget's rank: the largest whose sums fit.
        const int64_t r = NeuronSpanStatistics::rankForBudget(m, 20000);
        const auto size = [&](int64_t k) { return NeuronSpanStatistics(at::eye(k), m).bytes(); };
        QVERIFY(r < e && size(r) <= 20000 && size(r + 1) > 20000);
    }

    // A job that reports no rate gets one measured from its stage's first report; none (0) until
    // the count has moved; a new stage or a count going back starts again; a job's own rate stays.
    void progressRateIsMeasuredOrNone() {
        using C = ProgressRate::Clock;
        const C::time_point t0{};
        ProgressRate rate;
        JobProgress p = rate.fill({16, 1000, 0, 0, "pass"}, t0);
        QCOMPARE(p.perSecond, 0.0);
        p = rate.fill({16, 1000, 0, 0, "pass"}, t0 + std::chrono::seconds(1));
        QCOMPARE(p.perSecond, 0.0);  // nothing done since
        p = rate.fill({48, 1000, 0, 0, "pass"}, t0 + std::chrono::seconds(2));
        QCOMPARE(p.perSecond, 16.0);
        QCOMPARE(p.etaSeconds, 952.0 / 16.0);
        p = rate.fill({10, 500, 0, 0, "second pass"}, t0 + std::chrono::seconds(3));
        QCOMPARE(p.perSecond, 0.0);
        p = rate.fill({30, 500, 0, 0, "second pass"}, t0 + std::chrono::milliseconds(3500));
        QCOMPARE(p.perSecond, 40.0);
        p = rate.fill({5, 500, 0, 0, "second pass"}, t0 + std::chrono::seconds(4));  // went back
        QCOMPARE(p.perSecond, 0.0);
        p = rate.fill({50, 500, 7.0, 3.0, "second pass"}, t0 + std::chrono::seconds(5));
        QCOMPARE(p.perSecond, 7.0);
        QCOMPARE(p.etaSeconds, 3.0);
    }

    void neuronMapForAText() {
        at::manual_seed(61);
        const Case c = clipCases().front();
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        const int64_t M = model.vision.encoder.blocks[0].fc2W.size(1), E = model.vision.embedDim();
        const std::vector<at::Tensor> dirs{at::randn({M, E}), at::randn({M, E})};
        const at::Tensor text = at::randn({E});
        const std::vector<LayerNeuron> picked = neuronsForText({1, 2}, dirs, text, 40);
        QCOMPARE(picked.size(), std::size_t(40));
        // The reference's selection: argsort(|pcas @ t|)[-40:], index i -> (layer i // M + first, neuron i % M).
        const at::Tensor order = at::matmul(at::cat(dirs), text).abs().argsort();
        for (int64_t j = order.size(0) - 40; j < order.size(0); ++j) {
            const int64_t i = order[j].item<int64_t>();
            const LayerNeuron want{static_cast<int>(i / M) + 1, i % M};
            QVERIFY(std::find(picked.begin(), picked.end(), want) != picked.end());
        }
        const at::Tensor pixels = at::randn({2, 3, c.spec.imageSize, c.spec.imageSize});
        const at::Tensor map = neuronActivationMap(model, pixels, picked);
        const ImageTrace tr = traceImages(model, pixels);
        const at::Tensor h1 = hiddenOf(model, tr, 1), h2 = hiddenOf(model, tr, 2);
        at::Tensor sum = at::zeros({2, h1.size(1)});
        for (const LayerNeuron& n : picked) sum += (n.layer == 1 ? h1 : h2).select(2, n.neuron);
        const int g = c.spec.imageSize / c.spec.patchSize;
        QCOMPARE(map.sizes().vec(), (std::vector<int64_t>{2, g, g}));
        QVERIFY(maxAbsDiff(map, (sum / 40.0).narrow(1, 1, g * g).reshape({2, g, g})) < 1e-5);
        QVERIFY_THROWS_EXCEPTION(InputError, neuronsForText({1, 2}, dirs, text, int(2 * M + 1)));
    }

    void refusesWhatHasNoSecondOrderEffect() {
        const Case c = clipCases().front();
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        SecondOrderSettings s;
        s.layer = model.vision.layers() - 1;
        try {
            SecondOrderLens lens(model, s);
            QFAIL("the last block was accepted");
        } catch (const InputError& e) {
            QVERIFY2(QString(e.what()).contains("last block"), e.what());
        }
        s.layer = model.vision.layers();
        QVERIFY_THROWS_EXCEPTION(InputError, SecondOrderLens(model, s));
        s.layer = 0;
        RandomVitSpec swin;
        swin.layout = RandomLayout::TimmSwin, swin.imageSize = 32, swin.patchSize = 4, swin.width = 16, swin.seed = 25;
        const Model swinModel = buildModel(randomVitStateDict(swin), nlohmann::json(), "random-swin");
        QVERIFY_THROWS_EXCEPTION(InputError, SecondOrderLens(swinModel, s));
        QVERIFY_THROWS_EXCEPTION(InputError, parseNeuronConvention("textspan"));
    }
};

QTEST_GUILESS_MAIN(TestNeurons)
#include "test_neurons.moc"
