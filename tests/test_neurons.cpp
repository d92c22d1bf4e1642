// Second-order neuron effects (analysis/second_order.h) against a naive port of the reference's
// hook (second_order_lens, prs_second_order_neurons_hook.py: per (later layer, head) pair, every
// neuron's write as a [b, tokens, neurons, value] tensor pushed through ln_1, the head and ln_post
// with the even shares it uses), and the sum over a layer's neurons against the layer's whole MLP
// output taken as one component through the same paths, on configurations the test builds.
#include "analysis/neurons.h"
#include "analysis/ordered_sum.h"
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

// The model's output with block m's MLP write (its bias apart) taken out of what every later
// block's attention carries to the class token, built from the model's own pieces: at each later
// block l, the class token's attention output with ln_1 read from the residual minus that write
// (ln_1's scale frozen at the forward pass, its mean taken anew), the attention weights as they
// were; the final norm likewise (scale frozen, mean anew). Later MLPs and chains of heads still
// read the real residual: the paths the lens counts, and only those, lose the write.
at::Tensor outputWithoutMlpThroughHeads(const Model& model, const at::Tensor& pixels, int m) {
    const VisionTower& v = model.vision;
    const ImageTrace tr = traceImages(model, pixels);
    const Block& mb = v.encoder.blocks[static_cast<std::size_t>(m)];
    at::Tensor write = at::linear(hiddenOf(model, tr, m), mb.fc2W);  // [B, N, D]
    if (mb.ls2.defined()) write = write * mb.ls2;
    const int64_t d = v.width, H = v.heads(), dh = d / H, B = pixels.size(0);
    at::Tensor z = tr.residuals.back().select(1, 0).clone();  // [B, D]
    for (int l = m + 1; l < v.layers(); ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const at::Tensor x = tr.residuals[static_cast<std::size_t>(l)];
        const at::Tensor s = at::sqrt(x.var(-1, false, true) + v.encoder.eps);
        const auto classOutput = [&](const at::Tensor& in) {  // the block's attention output at the class token [B, D]
            const at::Tensor normed = b.ln1W * (in - in.mean(-1, true)) / s + b.ln1B;
            const at::Tensor val = at::linear(normed, b.qkvW.narrow(0, 2 * d, d), b.qkvB.narrow(0, 2 * d, d)).view({B, -1, H, dh}).transpose(1, 2);
            const at::Tensor row = at::matmul(tr.attention[static_cast<std::size_t>(l)].narrow(2, 0, 1), val);  // [B, H, 1, dh]
            at::Tensor o = at::linear(row.transpose(1, 2).reshape({B, d}), b.outW, b.outB);
            return b.ls1.defined() ? o * b.ls1 : o;
        };
        z -= classOutput(x) - classOutput(x - write);
    }
    const at::Tensor zReal = tr.residuals.back().select(1, 0);
    const at::Tensor sPost = at::sqrt(zReal.var(1, false, true) + v.normEps);
    const at::Tensor P = v.proj.defined() ? v.proj : at::eye(d);
    return at::matmul(v.normW * (z - z.mean(1, true)) / sPost + v.normB, P);
}

// compute_ablations.py's six representations, image by image as its loop builds them (float64),
// from each image's representation: coefficient * output / |output| (reference) or the output
// itself (exact convention).
at::Tensor ablationRowsPort(const at::Tensor& effects, const at::Tensor& output, const NeuronDirections& train, double coefficient, bool reference) {
    const at::Tensor phi = effects.to(at::kDouble), out = output.to(at::kDouble);
    const at::Tensor neuronsMean = train.mean.to(at::kDouble), norms = train.topNorms.to(at::kDouble), pcas = train.directions.to(at::kDouble);
    const at::Tensor representation = reference ? coefficient * out / out.norm(2, -1, true) : out;
    const at::Tensor meanAblated = phi - neuronsMean.unsqueeze(0);
    const at::Tensor mlpNorm = meanAblated.norm(2, -1);
    const at::Tensor withoutNeurons = representation - phi.sum(1) + neuronsMean.sum(0).unsqueeze(0);
    at::Tensor withoutSig = withoutNeurons.clone(), withoutInsig = withoutNeurons.clone(), pc = withoutNeurons.clone();
    for (int64_t b = 0; b < phi.size(0); ++b) {
        at::Tensor sig = at::zeros({phi.size(2)}, at::kDouble), insig = at::zeros({phi.size(2)}, at::kDouble);
        for (int64_t n = 0; n < phi.size(1); ++n) {
            const at::Tensor c = meanAblated[b][n];
            (mlpNorm[b][n].item<double>() > norms[n][0].item<double>() ? sig : insig) += c;
            pc[b] += at::dot(c, pcas[n]) * pcas[n];
        }
        withoutSig[b] += insig;
        withoutInsig[b] += sig;
    }
    return at::stack({representation, withoutNeurons, withoutSig, withoutInsig, pc, representation - phi.sum(1)}, 1);  // [B, 6, E]
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

    // OrderedSum: the same bits however the items are cut into parts (at multiples of the leaf) and
    // batches, with a state saved and restored mid-leaf; close to the float64 sum; refusals.
    void orderedSumIgnoresHowItIsSplit() {
        at::manual_seed(31);
        const int64_t n = 203, leaf = 8;
        // Values over 12 orders of magnitude, so that summation order shows in the last bits.
        const at::Tensor x = at::randn({n, 3, 2}, at::kDouble) * at::pow(10.0, at::randint(-6, 7, {n, 1, 1}).to(at::kDouble));
        OrderedSum whole(leaf);
        whole.add(0, x);
        whole.close();
        const at::Tensor want = whole.total();
        QVERIFY(maxAbsDiff(want, x.sum(0)) < 1e-9 * x.abs().sum().item<double>());
        QVERIFY(!at::equal(want, x.flip(0).cumsum(0)[n - 1]));  // (the order matters for these values)
        const QTemporaryDir tmp;
        const std::string state = (tmp.path() + "/sum.safetensors").toStdString();
        for (const std::vector<int64_t>& cuts : std::vector<std::vector<int64_t>>{{0, 8, 203}, {0, 64, 72, 136, 203}, {0, 200, 203}, {0, 96, 96, 203}}) {
            OrderedSum joined(leaf);
            for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
                OrderedSum part(leaf);
                for (int64_t i = cuts[p]; i < cuts[p + 1]; i += 5) {
                    part.add(i, x.narrow(0, i, std::min<int64_t>(5, cuts[p + 1] - i)));
                    if (i == cuts[p] + 10) {  // an interruption mid-leaf: a new part resumes from the saved state
                        StateDict t;
                        part.save(t, "sum");
                        writeSafetensorsTensors(state, t);
                        const SafetensorsFile file(state);
                        OrderedSum again(leaf);
                        again.restore(file.view(), "sum", state);
                        part = again;
                    }
                }
                part.close();
                joined.absorb(part);
            }
            QVERIFY2(at::equal(joined.total(), want), qPrintable(QString("cut at %1 parts").arg(cuts.size() - 1)));
        }
        OrderedSum a(leaf), b(leaf);
        QVERIFY_THROWS_EXCEPTION(InputError, a.add(3, x.narrow(0, 3, 2)));  // a part starts at a multiple of the leaf
        a.add(0, x.narrow(0, 0, 8));
        QVERIFY_THROWS_EXCEPTION(InputError, a.add(9, x.narrow(0, 9, 1)));  // and follows on
        b.add(16, x.narrow(0, 16, 8));
        a.close();
        b.close();
        QVERIFY_THROWS_EXCEPTION(InputError, a.absorb(b));  // a gap
        StateDict t;
        b.save(t, "sum");
        t["sum.0.7"] = t.at("sum.0.2");  // a block beyond its items
        writeSafetensorsTensors(state, t);
        const SafetensorsFile file(state);
        OrderedSum c(leaf);
        QVERIFY_THROWS_EXCEPTION(FormatError, c.restore(file.view(), "sum", state));
    }

    // A summary cut into parts (shards) at multiples of kChunk, one part empty, each part batched
    // otherwise than the one builder and one interrupted and resumed in each pass, joined in image
    // order: the one builder's four arrays bit for bit, ties between images in different parts
    // included. Refusals: a part's state in another part's builder, a part joined out of order.
    void summaryPartsJoinToOneBuilder() {
        at::manual_seed(32);
        const int64_t n = 300, m = 6, e = 16, chunk = NeuronSummaryBuilder::kChunk;
        at::Tensor effects = at::randn({n, m, e}) * at::pow(10.0, at::randint(-2, 3, {n, m, 1})).to(at::kFloat);
        effects[250] = effects[20];  // equal centred norms in two parts: the earlier image wins
        effects[251] = effects[21];
        // (`after` may replace the builder: it is looked up again every batch)
        auto feed = [&](std::unique_ptr<NeuronSummaryBuilder>& b, int64_t step, const std::function<void(int64_t)>& after) {
            while (b->pass() < 3 && !b->waitingForMean()) {
                const int64_t start = b->from() + b->done();
                b->add(effects.narrow(0, start, std::min<int64_t>(step, b->to() - start)));
                if (after) after(start);
            }
        };
        auto one = std::make_unique<NeuronSummaryBuilder>(n, m, e, 20);
        feed(one, 7, {});
        const NeuronDirections want = one->finish();
        const std::vector<int64_t> cuts{0, chunk, chunk, 3 * chunk, n};
        const QTemporaryDir tmp;
        const std::string state = (tmp.path() + "/part.safetensors").toStdString();
        std::vector<std::unique_ptr<NeuronSummaryBuilder>> parts;
        std::vector<OrderedSum> sums;
        for (std::size_t p = 0; p + 1 < cuts.size(); ++p) {
            parts.push_back(std::make_unique<NeuronSummaryBuilder>(n, m, e, 20, cuts[p], cuts[p + 1]));
            feed(parts.back(), 5, [&](int64_t start) {
                if (p == 2 && start == cuts[p] + 30) {  // interrupted: a new builder of the part resumes
                    parts.back()->save(state, "k");
                    parts.back() = std::make_unique<NeuronSummaryBuilder>(n, m, e, 20, cuts[p], cuts[p + 1]);
                    QVERIFY(parts.back()->restore(state, "k"));
                }
            });
            QVERIFY(parts.back()->waitingForMean());
            sums.push_back(parts.back()->sums());
        }
        const at::Tensor mean = NeuronSummaryBuilder::meanOf(sums, n);
        QVERIFY(at::equal(mean, want.mean));
        QVERIFY_THROWS_EXCEPTION(InputError, NeuronSummaryBuilder::meanOf({sums[0], sums[2]}, n));
        for (std::size_t p = 0; p < parts.size(); ++p) {
            parts[p]->setMean(mean);
            feed(parts[p], 3, [&](int64_t start) {
                if (p == 2 && start == cuts[p] + 60) {
                    parts[p]->save(state, "k");
                    NeuronSummaryBuilder other(n, m, e, 20, cuts[3], cuts[4]);
                    QVERIFY_THROWS_EXCEPTION(FormatError, other.restore(state, "k"));  // another part's state
                    parts[p] = std::make_unique<NeuronSummaryBuilder>(n, m, e, 20, cuts[p], cuts[p + 1]);
                    QVERIFY(parts[p]->restore(state, "k"));
                    QCOMPARE(parts[p]->pass(), 2);
                }
            });
            QCOMPARE(parts[p]->pass(), 3);
        }
        QVERIFY_THROWS_EXCEPTION(InputError, parts[0]->absorb(*parts[3]));  // out of order
        QVERIFY_THROWS_EXCEPTION(InputError, parts[0]->finish());           // a part is not the whole
        for (std::size_t p = 1; p < parts.size(); ++p) parts[0]->absorb(*parts[p]);
        const NeuronDirections got = parts[0]->finish();
        QVERIFY(at::equal(got.directions, want.directions));
        QVERIFY(at::equal(got.topNorms, want.topNorms));
        QVERIFY(at::equal(got.topImages, want.topImages));
        QVERIFY(at::equal(got.mean, want.mean));
        // The duplicated images tie; where they are among a neuron's top, the earlier one is kept first.
        const at::Tensor top = want.topImages;
        for (int64_t j = 0; j < m; ++j) {
            const at::Tensor row = top[j];
            QVERIFY(!(row == 250).any().item<bool>() || (row == 20).any().item<bool>());
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

    // compute_ablations.py's six rows in both conventions on a built model: training statistics from
    // the lens on some images, the rows of others against a per-image port of the reference's loop.
    void ablationRowsInBothConventions() {
        at::manual_seed(71);
        const Case c = clipCases().front();
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        const at::Tensor trainPixels = at::randn({24, 3, c.spec.imageSize, c.spec.imageSize});
        const at::Tensor valPixels = at::randn({10, 3, c.spec.imageSize, c.spec.imageSize});
        const at::Tensor classifier = at::randn({5, model.vision.embedDim()});
        for (NeuronConvention conv : {NeuronConvention::Reference, NeuronConvention::Exact}) {
            SecondOrderSettings s;
            s.layer = 1;
            s.convention = conv;
            s.coefficient = 40.0;
            const SecondOrderLens lens(model, s);
            const NeuronDirections train = neuronPrincipalDirections(lens.compute(trainPixels).effects, 8);
            const SecondOrderEffects val = lens.compute(valPixels);
            // Some neurons of the evaluated images above their threshold and some below: both sums are used.
            const at::Tensor above = (val.effects - train.mean.unsqueeze(0)).norm(2, 2) > train.topNorms.select(1, 0).unsqueeze(0);
            QVERIFY(above.any().item<bool>() && !above.all().item<bool>());
            const NeuronAblationMeter meter(train, classifier, s.coefficient, conv);
            QVERIFY(meter.convention() == conv);
            const at::Tensor got = meter.representations(val.effects, val.output);
            const at::Tensor expected = ablationRowsPort(val.effects, val.output, train, s.coefficient, conv == NeuronConvention::Reference);
            QCOMPARE(got.sizes().vec(), (std::vector<int64_t>{10, 6, model.vision.embedDim()}));
            const double miss = relativeMiss(got.to(at::kDouble), expected);
            QVERIFY2(miss < 1e-5, qPrintable(QString("%1: relative miss %2").arg(neuronConventionName(conv)).arg(miss)));
            // Every row is its own representation, and correct() is each row's argmax against the labels.
            for (int64_t r = 1; r < 6; ++r) QVERIFY(maxAbsDiff(expected.select(1, r), expected.select(1, 0)) > 1e-3 * expected.abs().max().item<double>());
            const at::Tensor labels = at::randint(0, 5, {10}, at::kLong);
            const at::Tensor want = at::matmul(expected.to(at::kFloat), classifier.t()).argmax(2) == labels.unsqueeze(1);
            QVERIFY(at::equal(meter.correct(val.effects, val.output, labels), want));
        }
        // The reference convention's representation is scaled (rows differ by the coefficient), the exact one is the output.
        const NeuronAblationMeter exact(NeuronDirections{at::zeros({2, 3}), at::ones({2, 1}), at::zeros({2, 1}, at::kLong), at::zeros({2, 3})},
                                        at::eye(3), 100.0, NeuronConvention::Exact);
        const at::Tensor out = at::tensor({3.0f, 4.0f, 0.0f}).view({1, 3});
        QVERIFY(maxAbsDiff(exact.representations(at::zeros({1, 2, 3}), out).select(1, 0), out) < 1e-7);
        QVERIFY_THROWS_EXCEPTION(InputError, exact.representations(at::zeros({1, 3, 3}), out));
    }

    // What the exact convention buys: zero-ablating all of a layer's neurons is the forward pass with
    // that MLP's write taken out of the paths the lens counts (built here from the model's pieces),
    // so the table's zero-ablated row classifies as that intervened model does. The reference
    // convention's effects also carry even shares of biases and norm means: not that intervention.
    void exactZeroAblationIsTheIntervention() {
        at::manual_seed(72);
        std::vector<Case> cases = clipCases();
        for (const Case& c : otherCases()) cases.push_back(c);
        for (const Case& c : cases) {
            const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
            const at::Tensor pixels = at::randn({12, 3, c.spec.imageSize, c.spec.imageSize});
            for (int layer = 0; layer + 1 < model.vision.layers(); ++layer) {
                const at::Tensor intervened = outputWithoutMlpThroughHeads(model, pixels, layer);
                QVERIFY(relativeMiss(outputWithoutMlpThroughHeads(model, pixels, model.vision.layers() - 1), encodeImages(model, pixels).output) < 1e-5);
                SecondOrderSettings s;
                s.layer = layer;
                s.convention = NeuronConvention::Exact;
                const SecondOrderEffects e = SecondOrderLens(model, s).compute(pixels);
                const NeuronDirections train = neuronPrincipalDirections(e.effects, 4);
                const at::Tensor classifier = at::randn({7, intervened.size(1)});
                const at::Tensor labels = at::matmul(intervened, classifier.t()).argmax(1);  // the intervened model's classes
                NeuronAblationMeter meter(train, classifier, 100.0, NeuronConvention::Exact);
                const at::Tensor zero = meter.representations(e.effects, e.output).select(1, 5);
                const double miss = relativeMiss(zero, intervened);
                QVERIFY2(miss < 1e-5, qPrintable(QString("%1 layer %2: relative miss %3").arg(c.name).arg(layer).arg(miss)));
                meter.add(e.effects, e.output, labels);
                QCOMPARE(meter.top1()[5].second, 100.0);
                // The write matters: it moves the output by more than rounding.
                QVERIFY(relativeMiss(e.output, intervened) > 1e-3);
                s.convention = NeuronConvention::Reference;
                const SecondOrderEffects r = SecondOrderLens(model, s).compute(pixels);
                const NeuronAblationMeter reference(neuronPrincipalDirections(r.effects, 4), classifier, 100.0);
                const at::Tensor back = reference.representations(r.effects, r.output).select(1, 5) * r.output.norm(2, 1, true) / 100.0;
                QVERIFY2(relativeMiss(back, intervened) > 1e-3, qPrintable(QString("%1 layer %2").arg(c.name).arg(layer)));
            }
        }
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
