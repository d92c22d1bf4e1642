// Gradient heatmaps (Grad-CAM, Chefer et al. 2021, LeGrad) against naive reimplementations of the
// reference code's formulas: an explicit double-precision forward with loops over layers and
// heads, every gradient by central finite differences (perturbing one attention probability or one
// activation at a time), and the references' aggregation written out step by step. Small random
// CLIP, SigLIP and supervised ViT models built here.
#include "analysis/gradient_maps.h"
#include "analysis/heatmap.h"
#include "error.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <cmath>
#include <functional>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

namespace {

at::Tensor d(const at::Tensor& t) { return t.to(at::kDouble); }

at::Tensor layerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
    const at::Tensor mu = x.mean(-1, true);
    const at::Tensor var = (x - mu).pow(2).mean(-1, true);
    return (x - mu) / (var + eps).sqrt() * d(w) + d(b);
}

at::Tensor activation(const at::Tensor& x, Activation a) {
    if (a == Activation::QuickGelu) return x * at::sigmoid(1.702 * x);
    if (a == Activation::GeluTanh) return 0.5 * x * (1 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
    return 0.5 * x * (1 + at::erf(x / std::sqrt(2.0)));
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) { return at::matmul(x, d(w).t()) + d(b); }

// One block on x [N, D] in double, head by head. attnOverride [H, N, N] replaces the softmax;
// normedOverride [N, D] replaces the first norm's output (Grad-CAM's activation).
at::Tensor naiveBlock(const Encoder& enc, const Block& b, const at::Tensor& x, const at::Tensor& attnOverride, const at::Tensor& normedOverride,
                      at::Tensor* attnOut = nullptr) {
    const int64_t n = x.size(0), dim = x.size(1), H = enc.heads, dh = dim / H;
    const at::Tensor y = normedOverride.defined() ? normedOverride : layerNorm(x, b.ln1W, b.ln1B, enc.eps);
    const at::Tensor qkv = linear(y, b.qkvW, b.qkvB);
    at::Tensor attn = at::zeros({H, n, n}, at::kDouble), o = at::zeros({n, dim}, at::kDouble);
    for (int64_t h = 0; h < H; ++h) {
        const at::Tensor q = qkv.narrow(1, h * dh, dh), k = qkv.narrow(1, dim + h * dh, dh), v = qkv.narrow(1, 2 * dim + h * dh, dh);
        at::Tensor a = at::softmax(at::matmul(q, k.t()) / std::sqrt(static_cast<double>(dh)), 1);
        if (attnOverride.defined()) a = attnOverride[h];
        attn[h] = a;
        o.narrow(1, h * dh, dh).copy_(at::matmul(a, v));
    }
    if (attnOut) *attnOut = attn;
    at::Tensor a = linear(o, b.outW, b.outB);
    if (b.ls1.defined()) a = a * d(b.ls1);
    const at::Tensor x1 = x + a;
    at::Tensor m = linear(activation(linear(layerNorm(x1, b.ln2W, b.ln2B, enc.eps), b.fc1W, b.fc1B), enc.activation), b.fc2W, b.fc2B);
    if (b.ls2.defined()) m = m * d(b.ls2);
    return x1 + m;
}

// SigLIP's attention pool on tokens [N, D] (finalNorm: after the tower's final norm), its probe's
// attention [H, N] overridable.
at::Tensor naivePool(const VisionTower& v, const at::Tensor& tokens, bool finalNorm, const at::Tensor& attnOverride, at::Tensor* attnOut = nullptr) {
    const AttentionPool& p = v.pool;
    const int64_t n = tokens.size(0), dim = v.width, H = p.heads, dh = dim / H;
    const at::Tensor x = finalNorm ? layerNorm(tokens, v.normW, v.normB, v.normEps) : tokens;
    const at::Tensor q = at::matmul(d(p.probe).reshape({1, dim}), d(p.qkvW).narrow(0, 0, dim).t()).squeeze(0) + d(p.qkvB).narrow(0, 0, dim);
    const at::Tensor k = at::matmul(x, d(p.qkvW).narrow(0, dim, dim).t()) + d(p.qkvB).narrow(0, dim, dim);
    const at::Tensor val = at::matmul(x, d(p.qkvW).narrow(0, 2 * dim, dim).t()) + d(p.qkvB).narrow(0, 2 * dim, dim);
    at::Tensor attn = at::zeros({H, n}, at::kDouble), o = at::zeros({dim}, at::kDouble);
    for (int64_t h = 0; h < H; ++h) {
        at::Tensor a = at::softmax(at::matmul(k.narrow(1, h * dh, dh), q.narrow(0, h * dh, dh)) / std::sqrt(static_cast<double>(dh)), 0);
        if (attnOverride.defined()) a = attnOverride[h];
        attn[h] = a;
        o.narrow(0, h * dh, dh).copy_(at::matmul(a, val.narrow(1, h * dh, dh)));
    }
    if (attnOut) *attnOut = attn;
    const at::Tensor a = linear(o, p.outW, p.outB);
    return a + linear(activation(linear(layerNorm(a, p.lnW, p.lnB, p.eps), p.fc1W, p.fc1B), v.encoder.activation), p.fc2W, p.fc2B);
}

double cosine(const at::Tensor& a, const at::Tensor& t) { return (at::dot(a, t) / a.norm()).item<double>(); }

// Central difference of f with respect to every entry of x (a copy is perturbed).
at::Tensor finiteGradient(const at::Tensor& x, const std::function<double(const at::Tensor&)>& f, double eps = 1e-6) {
    at::Tensor g = at::zeros_like(x);
    const at::Tensor flat = x.reshape({-1});
    at::Tensor gf = g.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
        at::Tensor plus = flat.clone(), minus = flat.clone();
        plus[i] += eps;
        minus[i] -= eps;
        gf[i] = (f(plus.view(x.sizes())) - f(minus.view(x.sizes()))) / (2 * eps);
    }
    return g;
}

at::Tensor minMax(const at::Tensor& x) { return (x - x.min()) / (x.max() - x.min()); }

struct Fixture {
    Model model;
    at::Tensor pixels, text;  // [1, 3, S, S], [E] unit
    std::vector<at::Tensor> xs;  // naive residuals entering each block, and after the last (double)
    std::vector<at::Tensor> attn;
};

Fixture makeFixture(RandomLayout layout, uint64_t seed) {
    at::manual_seed(static_cast<int64_t>(seed));  // the draws below are part of the test: fixed
    RandomVitSpec s;
    s.layout = layout;
    s.imageSize = 24;
    s.patchSize = 8;
    s.width = layout == RandomLayout::OpenAiClip ? 128 : 32;  // OpenAI's layout: heads of 64 (two here)
    s.layers = 3;
    s.heads = 2;
    s.embedDim = 16;
    s.textWidth = 16;
    s.numClasses = 5;
    s.seed = seed;
    nlohmann::json config = layout == RandomLayout::TimmSiglip ? nlohmann::json{{"model_args", {{"num_heads", 2}}}}
                            : layout == RandomLayout::OpenAiClip ? nlohmann::json{{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}}
                                                                  : nlohmann::json{{"num_heads", 2}};
    Fixture f;
    f.model = buildModel(randomVitStateDict(s), config, "random");
    f.pixels = at::randn({1, 3, 24, 24});
    f.text = at::randn({f.model.vision.embedDim()});
    f.text = f.text / f.text.norm();
    {
        at::NoGradGuard g;
        f.xs.push_back(d(embedImageTokens(f.model, f.pixels)[0]));
    }
    for (const Block& b : f.model.vision.encoder.blocks) {
        at::Tensor a;
        f.xs.push_back(naiveBlock(f.model.vision.encoder, b, f.xs.back(), {}, {}, &a));
        f.attn.push_back(a);
    }
    return f;
}

// CLIP's logit for the text from a final residual (class token, final norm, projection).
double clipLogit(const Fixture& f, const at::Tensor& x) {
    const VisionTower& v = f.model.vision;
    const at::Tensor out = at::matmul(layerNorm(x[0], v.normW, v.normB, v.normEps), d(v.proj));
    return f.model.logitScale * cosine(out, d(f.text));
}

// The residual after the last block, starting from layer `from` with an override there.
at::Tensor runFrom(const Fixture& f, int from, const at::Tensor& attnOverride, const at::Tensor& normedOverride) {
    const Encoder& enc = f.model.vision.encoder;
    at::Tensor x = naiveBlock(enc, enc.blocks[static_cast<std::size_t>(from)], f.xs[static_cast<std::size_t>(from)], attnOverride, normedOverride);
    for (std::size_t l = static_cast<std::size_t>(from) + 1; l < enc.blocks.size(); ++l) x = naiveBlock(enc, enc.blocks[l], x, {}, {});
    return x;
}

}  // namespace

class TestGradientMaps : public QObject {
    Q_OBJECT

private slots:
    void cheferMatchesNaive() {
        const Fixture f = makeFixture(RandomLayout::OpenAiClip, 501);
        const int L = 3;
        std::vector<at::Tensor> grads;
        for (int l = 0; l < L; ++l)
            grads.push_back(finiteGradient(f.attn[static_cast<std::size_t>(l)], [&](const at::Tensor& a) { return clipLogit(f, runFrom(f, l, a, {})); }));
        for (int start : {0, L - 1}) {
            // Transformer-MM-Explainability's interpret(): R = I; R += mean_h clamp(grad * attn, 0) @ R.
            const int64_t n = f.xs[0].size(0);
            at::Tensor R = at::eye(n, at::kDouble);
            for (int l = start; l < L; ++l) {
                at::Tensor cam = at::zeros({n, n}, at::kDouble);
                const int64_t H = f.model.vision.heads();
                for (int64_t h = 0; h < H; ++h) cam += (grads[static_cast<std::size_t>(l)][h] * f.attn[static_cast<std::size_t>(l)][h]).clamp_min(0);
                cam /= static_cast<double>(H);
                R = R + at::matmul(cam, R);
                QVERIFY((R - at::eye(n, at::kDouble)).min().item<double>() >= 0);  // only non-negative terms are added
            }
            const at::Tensor naive = minMax(R[0].narrow(0, 1, n - 1));
            GradientTarget t;
            t.texts = f.text.view({1, -1});
            GradientMapParams p;
            p.cheferStartLayer = start == 0 ? 0 : -1;
            const at::Tensor ours = cheferScores(f.model, f.pixels, t, p)[0];
            qInfo("chefer (start %d): max |ours - naive| %.3g", start, maxAbsDiff(ours, naive));
            QVERIFY(maxAbsDiff(ours, naive) < 1e-4);
        }
    }

    void legradMatchesNaive() {
        const Fixture f = makeFixture(RandomLayout::OpenAiClip, 502);
        const VisionTower& v = f.model.vision;
        const int L = 3;
        const int64_t n = f.xs[0].size(0);
        // WalBouss/LeGrad compute_legrad_clip: per layer the feature ln_post(mean of the block's
        // output tokens) @ proj, its cosine with the text, the gradient w.r.t. that layer's attention;
        // clamp(min 0), mean over heads, then over query rows, class column dropped, summed, min-max.
        at::Tensor sum = at::zeros({n - 1}, at::kDouble);
        for (int l = L - 2; l < L; ++l) {
            const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
            const at::Tensor g = finiteGradient(f.attn[static_cast<std::size_t>(l)], [&](const at::Tensor& a) {
                const at::Tensor y = naiveBlock(v.encoder, b, f.xs[static_cast<std::size_t>(l)], a, {});
                return cosine(at::matmul(layerNorm(y.mean(0), v.normW, v.normB, v.normEps), d(v.proj)), d(f.text));
            });
            at::Tensor rel = at::zeros({n}, at::kDouble);
            const int64_t H = v.heads();
            for (int64_t h = 0; h < H; ++h)
                for (int64_t i = 0; i < n; ++i) rel += g[h][i].clamp_min(0);
            sum += (rel / static_cast<double>(H * n)).narrow(0, 1, n - 1);
        }
        GradientTarget t;
        t.texts = f.text.view({1, -1});
        const at::Tensor ours = legradScores(f.model, f.pixels, t)[0];
        qInfo("legrad: max |ours - naive| %.3g", maxAbsDiff(ours, minMax(sum)));
        QVERIFY(maxAbsDiff(ours, minMax(sum)) < 1e-4);
    }

    void legradSiglipMatchesNaive() {
        const Fixture f = makeFixture(RandomLayout::TimmSiglip, 503);
        const VisionTower& v = f.model.vision;
        const int L = 3;
        const int64_t n = f.xs[0].size(0);
        at::manual_seed(77);  // fixed draw: the empty prompt's stand-in
        at::Tensor empty = at::randn({v.embedDim()});
        empty = empty / empty.norm();
        // compute_legrad_siglip: the pool on each layer's block output (no final norm), the gradient
        // of the cosine w.r.t. the pool's attention, clamp, mean over heads; the correction zeroes
        // patches where the empty prompt's min-max map exceeds 0.8.
        auto mapFor = [&](const at::Tensor& text) {
            at::Tensor sum = at::zeros({n}, at::kDouble);
            for (int l = L - 2; l < L; ++l) {
                const at::Tensor y = f.xs[static_cast<std::size_t>(l) + 1];
                at::Tensor a;
                naivePool(v, y, false, {}, &a);
                const at::Tensor g = finiteGradient(a, [&](const at::Tensor& over) { return cosine(naivePool(v, y, false, over), d(text)); });
                at::Tensor rel = at::zeros({n}, at::kDouble);
                for (int64_t h = 0; h < v.pool.heads; ++h) rel += g[h].clamp_min(0);
                sum += rel / static_cast<double>(v.pool.heads);
            }
            return sum;
        };
        at::Tensor naive = mapFor(f.text);
        const at::Tensor emptyMap = minMax(mapFor(empty));
        naive = minMax(naive.masked_fill(emptyMap > 0.8, 0.0));
        GradientTarget t;
        t.texts = f.text.view({1, -1});
        GradientMapParams p;
        p.legradEmptyText = empty;
        const at::Tensor ours = legradScores(f.model, f.pixels, t, p)[0];
        qInfo("legrad siglip: max |ours - naive| %.3g, %d patches zeroed", maxAbsDiff(ours, naive), int((emptyMap > 0.8).sum().item<int64_t>()));
        QVERIFY(maxAbsDiff(ours, naive) < 1e-4);
        QVERIFY((emptyMap > 0.8).sum().item<int64_t>() >= 1);  // the correction did something
    }

    void gradCamMatchesNaive() {
        for (RandomLayout layout : {RandomLayout::OpenAiClip, RandomLayout::Timm}) {
            const Fixture f = makeFixture(layout, 504);
            const VisionTower& v = f.model.vision;
            const bool classifier = layout == RandomLayout::Timm;
            const int L = 3;
            const Block& last = v.encoder.blocks.back();
            const at::Tensor A = layerNorm(f.xs[L - 1], last.ln1W, last.ln1B, v.encoder.eps);  // [N, D]
            const int64_t n = A.size(0);
            int compared = 0;
            for (int64_t cls = 0; cls < (classifier ? 5 : 1); ++cls) {
                // pytorch-grad-cam on blocks[-1].norm1 with the ViT reshape transform: class token
                // dropped, weights = mean gradient over the tokens, cam = ReLU(sum_c w_c A_c), scaled.
                const at::Tensor g = finiteGradient(A, [&](const at::Tensor& a) {
                    const at::Tensor x = naiveBlock(v.encoder, last, f.xs[L - 1], {}, a);
                    if (!classifier) return clipLogit(f, x);
                    return linear(layerNorm(x[0], v.normW, v.normB, v.normEps), v.headW, v.headB)[cls].item<double>();
                });
                const at::Tensor cam = at::relu(at::matmul(A.narrow(0, 1, n - 1), g.narrow(0, 1, n - 1).mean(0)));
                GradientTarget t;
                if (classifier) t.classIndex = cls;
                else t.texts = f.text.view({1, -1});
                const at::Tensor ours = gradCamScores(f.model, f.pixels, t)[0];
                if (cam.max().item<double>() == 0) {  // every token below zero: an all-zero map, not NaN
                    QCOMPARE(ours.abs().max().item<double>(), 0.0);
                    continue;
                }
                qInfo("grad-cam (%s %lld): max |ours - naive| %.3g", classifier ? "class" : "text", static_cast<long long>(cls),
                      maxAbsDiff(ours, minMax(cam)));
                QVERIFY(maxAbsDiff(ours, minMax(cam)) < 1e-4);
                ++compared;
            }
            QVERIFY(compared >= 1);
        }
    }

    void batchedEqualsOneByOne() {
        const Fixture f = makeFixture(RandomLayout::OpenAiClip, 505);
        at::manual_seed(506);  // fixed draws
        const at::Tensor px = at::randn({3, 3, 24, 24});
        at::Tensor texts = at::randn({3, f.model.vision.embedDim()});
        texts = texts / texts.norm(2, 1, true);
        GradientTarget all;
        all.texts = texts;
        using Fn = std::function<at::Tensor(const GradientTarget&, const at::Tensor&)>;
        const std::vector<Fn> methods{[&](const GradientTarget& t, const at::Tensor& p) { return gradCamScores(f.model, p, t); },
                                      [&](const GradientTarget& t, const at::Tensor& p) { return cheferScores(f.model, p, t); },
                                      [&](const GradientTarget& t, const at::Tensor& p) { return legradScores(f.model, p, t); }};
        for (const Fn& m : methods) {
            const at::Tensor batched = m(all, px);
            QCOMPARE(batched.sizes().vec(), (std::vector<int64_t>{3, 9}));
            for (int64_t i = 0; i < 3; ++i) {
                GradientTarget one;
                one.texts = texts.narrow(0, i, 1);
                QVERIFY(maxAbsDiff(batched[i], m(one, px.narrow(0, i, 1))[0]) < 1e-5);
            }
        }
    }

    void refusalsAndHeatmapEntry() {
        const Fixture f = makeFixture(RandomLayout::OpenAiClip, 507);
        GradientTarget t;
        t.texts = at::randn({1, 7});
        QVERIFY_THROWS_EXCEPTION(InputError, gradCamScores(f.model, f.pixels, t));
        t.texts = at::Tensor();
        t.classIndex = 2;  // CLIP has no classifier head
        QVERIFY_THROWS_EXCEPTION(InputError, cheferScores(f.model, f.pixels, t));
        // Through computeHeatmap (what the CLI and the GUI call), also under a NoGradGuard.
        at::NoGradGuard guard;
        for (HeatmapMethod m : {HeatmapMethod::GradCam, HeatmapMethod::Chefer, HeatmapMethod::LeGrad}) {
            HeatmapParams p;
            p.method = m;
            const Heatmap h = computeHeatmap(f.model, f.pixels, f.text, p);
            QCOMPARE(h.patches.sizes().vec(), (std::vector<int64_t>{3, 3}));
            QCOMPARE(h.pixels.sizes().vec(), (std::vector<int64_t>{24, 24}));
            QVERIFY(std::abs(h.patches.max().item<double>() - 1.0) < 1e-6 && std::abs(h.patches.min().item<double>()) < 1e-6);
        }
    }
};

QTEST_GUILESS_MAIN(TestGradientMaps)
#include "test_gradient_maps.moc"
