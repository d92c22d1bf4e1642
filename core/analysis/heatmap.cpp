#include "analysis/heatmap.h"

#include "analysis/gradient_maps.h"
#include "error.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>

namespace vitscope {

namespace {

// Class-row attention of one block computed from values alone (CLIP Surgery's path):
// softmax(scale * V V^T) V, through the block's output projection. x: [B, N, D] block input.
at::Tensor valueValueAttention(const Block& b, const Encoder& enc, const at::Tensor& x) {
    const int64_t batch = x.size(0), n = x.size(1), d = x.size(2), h = enc.heads, dh = d / h;
    const at::Tensor y = at::layer_norm(x, {d}, b.ln1W, b.ln1B, enc.eps);
    const at::Tensor wv = b.qkvW.narrow(0, 2 * d, d), bv = b.qkvB.narrow(0, 2 * d, d);
    const at::Tensor v = at::linear(y, wv, bv).view({batch, n, h, dh}).permute({0, 2, 1, 3});  // [B, H, N, dh]
    const at::Tensor attn = at::softmax(at::matmul(v, v.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(dh))), -1);
    at::Tensor o = at::linear(at::matmul(attn, v).permute({0, 2, 1, 3}).reshape({batch, n, d}), b.outW, b.outB);
    if (b.ls1.defined()) o = o * b.ls1;
    return o;
}

at::Tensor toClip(const at::Tensor& x, const Aligner* aligner, bool bias) {
    if (!aligner) return x;
    const at::Tensor y = at::matmul(x.to(at::kCPU), aligner->weight);
    return bias ? y + aligner->bias : y;
}

Heatmap hierarchicalHeatmap(const Model& model, const at::Tensor& pixels, const at::Tensor& text, const HeatmapParams& params,
                            const Aligner* aligner);

}  // namespace

GradientMapParams HeatmapParams::gradientParams() const {
    GradientMapParams g;
    g.cheferStartLayer = cheferStartLayer;
    g.gradcamTarget = gradcamTarget;
    g.legradLayers = legradLayers;
    g.legradEmptyText = legradEmptyText;
    return g;
}

const char* heatmapMethodName(HeatmapMethod m) {
    switch (m) {
    case HeatmapMethod::Decomposition: return "decomposition";
    case HeatmapMethod::Surgery: return "surgery";
    case HeatmapMethod::Raw: return "raw";
    case HeatmapMethod::Attention: return "attention";
    case HeatmapMethod::Rollout: return "rollout";
    case HeatmapMethod::GradCam: return "gradcam";
    case HeatmapMethod::Chefer: return "chefer";
    case HeatmapMethod::LeGrad: return "legrad";
    }
    return "?";
}

const char* pooledMapName(PooledMap m) { return m == PooledMap::Pool ? "pool" : "encoder"; }

PooledMap parsePooledMap(const std::string& name) {
    if (name == "pool") return PooledMap::Pool;
    if (name == "encoder") return PooledMap::Encoder;
    throw InputError("--siglip-map " + name, "unknown SigLIP map level (pool, encoder)");
}

const char* heatmapMethodSummary(HeatmapMethod m) {
    switch (m) {
    case HeatmapMethod::Decomposition: return "each token's direct contribution through the decomposed heads (TextSpan)";
    case HeatmapMethod::Surgery: return "CLIP Surgery: value-value attention in the last blocks and feature surgery";
    case HeatmapMethod::Raw: return "each token's own final feature against the text";
    case HeatmapMethod::Attention: return "the class token's (SigLIP: the pool's) last-layer attention, no text";
    case HeatmapMethod::Rollout: return "attention rollout over every layer, no text";
    case HeatmapMethod::GradCam: return "Grad-CAM on the last block's first norm (pytorch-grad-cam); target: the label's probability over --labels, else the text's logit";
    case HeatmapMethod::Chefer: return "Chefer et al. 2021 relevance (Transformer-MM-Explainability); CLIP: last layer, ViT: every layer";
    case HeatmapMethod::LeGrad: return "LeGrad: gradients of each last layer's feature w.r.t. its attention (WalBouss/LeGrad)";
    }
    return "?";
}

bool isGradientMethod(HeatmapMethod m) { return m == HeatmapMethod::GradCam || m == HeatmapMethod::Chefer || m == HeatmapMethod::LeGrad; }

std::vector<HeatmapMethod> heatmapMethodsFor(const Model& model) {
    std::vector<HeatmapMethod> out;
    for (HeatmapMethod m : allHeatmapMethods())
        if (!model.vision.hierarchical() || m == HeatmapMethod::Decomposition || m == HeatmapMethod::Raw) out.push_back(m);
    return out;
}

HeatmapMethod parseHeatmapMethod(const std::string& name) {
    for (HeatmapMethod m : allHeatmapMethods())
        if (name == heatmapMethodName(m)) return m;
    throw InputError("--method " + name, "unknown heatmap method (decomposition, surgery, raw, attention, rollout, gradcam, chefer, legrad)");
}

std::vector<HeatmapMethod> allHeatmapMethods() {
    return {HeatmapMethod::Decomposition, HeatmapMethod::Surgery, HeatmapMethod::Raw,    HeatmapMethod::Attention,
            HeatmapMethod::Rollout,       HeatmapMethod::GradCam, HeatmapMethod::Chefer, HeatmapMethod::LeGrad};
}

Heatmap computeHeatmap(const Model& model, const at::Tensor& pixels, const at::Tensor& textIn, const HeatmapParams& params,
                       const Aligner* aligner) {
    if (pixels.dim() != 4 || pixels.size(0) != 1) throw InputError("pixels", "a heatmap takes one image [1, 3, S, S]");
    const VisionTower& v = model.vision;
    const int64_t e = aligner ? aligner->weight.size(1) : v.embedDim();
    const bool classTarget = isGradientMethod(params.method) && params.classIndex >= 0;
    const bool needsText = params.method != HeatmapMethod::Attention && params.method != HeatmapMethod::Rollout && !classTarget;
    if (needsText && (textIn.dim() != 1 || textIn.size(0) != e))
        throw InputError("text", "expected a " + std::to_string(e) + "-dimensional text embedding (another CLIP model, or a missing aligner?)");
    const at::Tensor text = needsText ? textIn.to(at::kCPU, at::kFloat) : at::Tensor();
    if (params.referenceTexts.defined() && params.referenceTexts.size(1) != e)
        throw InputError("reference texts", "embedding dim differs from the model's");
    if (isGradientMethod(params.method) && v.suffixTokens() > 0)
        throw InputError("--test-time-registers", std::string("is not built for the gradient method '") + heatmapMethodName(params.method) +
                                                      "' (decomposition, surgery, raw, attention and rollout take it)");
    if (isGradientMethod(params.method)) {
        // Gradients need autograd (no NoGradGuard); the map is over the patch tokens.
        GradientTarget target;
        if (classTarget) target.classIndex = params.classIndex;
        else target.texts = text.view({1, -1});
        target.labels = params.labels.defined() ? params.labels : params.referenceTexts;
        target.logitScale = params.textLogitScale;
        const GradientMapParams g = params.gradientParams();
        const at::Tensor s = params.method == HeatmapMethod::GradCam ? gradCamScores(model, pixels, target, g, aligner)
                             : params.method == HeatmapMethod::Chefer ? cheferScores(model, pixels, target, g, aligner)
                                                                      : legradScores(model, pixels, target, g, aligner);
        Heatmap h = heatmapFromTokenScores(s[0], 0, static_cast<int>(pixels.size(2)) / v.patchSize, static_cast<int>(pixels.size(3)) / v.patchSize,
                                           pixels.size(2), pixels.size(3));
        if (gradientMapUpsampledMinMax(model, params.method == HeatmapMethod::LeGrad)) {
            const at::Tensor lo = h.pixels.min(), hi = h.pixels.max();
            h.pixels = (h.pixels - lo) / (hi - lo).clamp_min(1e-12);
        }
        return h;
    }
    at::NoGradGuard noGrad;
    if (v.hierarchical()) return hierarchicalHeatmap(model, pixels, text, params, aligner);
    // The decomposition runs its own forward; the other methods read the traced one.
    ImageTrace trace;
    if (params.method != HeatmapMethod::Decomposition) trace = traceImages(model, pixels);
    const int gridH = static_cast<int>(pixels.size(2)) / v.patchSize, gridW = static_cast<int>(pixels.size(3)) / v.patchSize;
    const int prefix = v.prefixTokens();
    const int L = v.layers();
    at::Tensor scores;  // [N] over all tokens
    switch (params.method) {
    case HeatmapMethod::Decomposition:
        scores = decompositionScoresFor(model, decomposeImages(model, pixels, imageDecomposeOptions(model)), text, params, aligner);
        break;
    case HeatmapMethod::Raw: {
        at::Tensor f = toClip(finalTokens(model, trace.residuals.back())[0].to(at::kCPU), aligner, true);
        f = f / f.norm(2, 1, true).clamp_min(1e-12);
        scores = at::matmul(f, text);
        break;
    }
    case HeatmapMethod::Attention:
        // The class token's last-layer attention; SigLIP: the pooling probe's attention.
        scores = (v.pool.defined() ? trace.poolAttention[0] : trace.attention.back()[0].select(1, 0)).mean(0).to(at::kCPU);
        break;
    case HeatmapMethod::Rollout: {
        const int64_t n = trace.attention.front().size(2);
        const at::Tensor eye = at::eye(n, trace.attention.front().options());
        at::Tensor r = eye;
        for (const at::Tensor& a : trace.attention) {
            at::Tensor m = 0.5 * a[0].mean(0) + 0.5 * eye;
            m = m / m.sum(1, true);
            r = at::matmul(m, r);
        }
        // SigLIP: the probe's attention carried through the rollout of the encoder.
        scores = (v.pool.defined() ? at::matmul(trace.poolAttention[0].mean(0), r) : r[0]).to(at::kCPU);
        break;
    }
    case HeatmapMethod::Surgery: {
        const int k = std::clamp(params.surgeryBlocks, 1, L);
        at::Tensor xs = trace.residuals[static_cast<std::size_t>(L - k)];
        for (int l = L - k; l < L; ++l)
            xs = xs + valueValueAttention(v.encoder.blocks[static_cast<std::size_t>(l)], v.encoder, trace.residuals[static_cast<std::size_t>(l)]);
        at::Tensor f = toClip(finalTokens(model, xs)[0].to(at::kCPU), aligner, true);
        f = f / f.norm(2, 1, true).clamp_min(1e-12);  // [N, E]
        if (params.referenceTexts.defined()) {
            // The texts compared: the reference set, with the target prepended unless it is one of
            // them (class prompts include the target; CLIP Surgery's mean runs over the class set).
            const at::Tensor ref = params.referenceTexts.to(at::kCPU, at::kFloat);
            const at::Tensor gap = (ref - text.to(at::kCPU, at::kFloat).unsqueeze(0)).abs().amax(1);
            const int64_t same = gap.argmin().item<int64_t>();
            const bool inside = gap[same].item<double>() < 1e-6;
            at::Tensor g = inside ? ref : at::cat({text.unsqueeze(0).to(at::kCPU, at::kFloat), ref});  // [T, E]
            const int64_t target = inside ? same : 0;
            at::Tensor cls = toClip(pooledOutput(model, trace.residuals.back())[0].to(at::kCPU), aligner, true);
            cls = cls / cls.norm().clamp_min(1e-12);
            at::Tensor w = at::softmax(2.0 * at::matmul(g, cls), 0);
            w = w / w.mean();
            const at::Tensor s = at::matmul(f, g.t()) * w;  // [N, T]
            scores = s.select(1, target) - s.mean(1);
        } else if (params.redundantText.defined()) {
            scores = at::matmul(f, text) - at::matmul(f, params.redundantText.to(at::kFloat));
        } else {
            scores = at::matmul(f, text);
        }
        break;
    }
    }
    return heatmapFromTokenScores(scores, prefix, gridH, gridW, pixels.size(2), pixels.size(3), v.suffixTokens());
}

namespace {

// The decomposition map's sum over the chosen heads (every head of the `layers` encoder layers when
// none is chosen) of each head's per-token scores for the text minus the references' mean. Row
// `layers`, when `rows` has it, is SigLIP's pooling heads ("pool.hK"). A per-component aligner's
// map for the head takes the text back instead of every token forward (scores are linear).
template <typename HeadScores>
at::Tensor sumHeadScores(const at::Tensor& text, const HeatmapParams& params, int layers, int rows, int H, const Aligner* aligner,
                         HeadScores headScores, const std::vector<int>& headsInLayer = {}) {
    std::vector<std::pair<int, int>> chosen = params.heads;
    if (chosen.empty())
        for (int l = 0; l < layers; ++l)
            for (int h = 0; h < (headsInLayer.empty() ? H : headsInLayer[static_cast<std::size_t>(l)]); ++h) chosen.emplace_back(l, h);
    at::Tensor direction = text.to(at::kCPU, at::kFloat);
    if (params.referenceTexts.defined()) direction = direction - params.referenceTexts.to(at::kCPU, at::kFloat).mean(0);
    at::Tensor scores;  // [N]
    for (const auto& [l, h] : chosen) {
        if (l < 0 || l >= rows || h < 0 || h >= H)
            throw InputError("head " + std::to_string(l) + "." + std::to_string(h),
                             "is outside the model's " + std::to_string(layers) + " x " + std::to_string(H) + " heads" +
                                 (rows > layers ? " and pooling row" : ""));
        const Component c = l >= layers ? Component{Component::Kind::PoolHead, -1, h} : Component{Component::Kind::Head, l, h};
        const at::Tensor v = aligner ? at::matmul(aligner->weightFor(c.name()), direction) : direction;
        const at::Tensor s = headScores(l, h, v).to(at::kCPU, at::kFloat);
        scores = scores.defined() ? scores + s : s;
    }
    return scores;
}

// Swin: the decomposition's per-token scores through the score factors (every first-stage patch;
// a stage-s head's scores spread over the 2^s x 2^s patches its tokens cover), and raw
// similarity of the last stage's tokens. The attention-based methods and CLIP Surgery assume one
// global attention over a class token and are refused.
Heatmap hierarchicalHeatmap(const Model& model, const at::Tensor& pixels, const at::Tensor& text, const HeatmapParams& params,
                            const Aligner* aligner) {
    const VisionTower& v = model.vision;
    if (params.method == HeatmapMethod::Raw) {
        int gh = 0, gw = 0;
        const at::Tensor tokens = lastStageTokens(model, pixels, &gh, &gw)[0];
        at::Tensor f = toClip(tokens.to(at::kCPU), aligner, true);
        f = f / f.norm(2, 1, true).clamp_min(1e-12);
        return heatmapFromTokenScores(at::matmul(f, text), 0, gh, gw, pixels.size(2), pixels.size(3));
    }
    if (params.method != HeatmapMethod::Decomposition)
        throw InputError(model.info.weightsPath, std::string("heatmap method '") + heatmapMethodName(params.method) +
                                                     "' is not defined for Swin's windowed attention (use decomposition or raw)");
    const at::Tensor scores = decompositionScoresFor(model, decomposeImages(model, pixels, imageDecomposeOptions(model)), text, params, aligner);
    const int gridH = static_cast<int>(pixels.size(2)) / v.patchSize, gridW = static_cast<int>(pixels.size(3)) / v.patchSize;
    return heatmapFromTokenScores(scores, 0, gridH, gridW, pixels.size(2), pixels.size(3));
}

}  // namespace

at::Tensor decompositionScoresFor(const Model& model, const Decomposition& dec, const at::Tensor& text, const HeatmapParams& params,
                                  const Aligner* aligner) {
    if (dec.pooled()) return pooledDecompositionTokenScores(model, dec, text, params, aligner);
    if (!dec.swinFactors.empty()) return hierarchicalDecompositionTokenScores(model, dec, text, params, aligner);
    return decompositionTokenScores(dec.heads[0], text, params, aligner);
}

at::Tensor decompositionTokenScores(const at::Tensor& heads, const at::Tensor& text, const HeatmapParams& params, const Aligner* aligner) {
    if (heads.dim() != 4) throw InputError("per-token head terms", "expected [L, H, N, E]");
    const int L = static_cast<int>(heads.size(0)), H = static_cast<int>(heads.size(1));
    return sumHeadScores(text, params, L, L, H, aligner,
                         [&](int l, int h, const at::Tensor& v) { return at::matmul(heads[l][h].to(at::kCPU, at::kFloat), v); });
}

at::Tensor pooledDecompositionTokenScores(const Model& model, const Decomposition& dec, const at::Tensor& text,
                                          const HeatmapParams& params, const Aligner* aligner) {
    const int L = model.vision.layers(), H = model.vision.heads();
    if (dec.poolTokenMix.empty() || dec.poolHeads.dim() != 4)
        throw InputError("decomposition", "per-token scores of a pooled model need its token factors (tokenFactors)");
    HeatmapParams chosen = params;
    if (chosen.heads.empty() && chosen.pooledMap == PooledMap::Pool)
        for (int h = 0; h < static_cast<int>(dec.poolHeads.size(1)); ++h) chosen.heads.emplace_back(L, h);
    return sumHeadScores(text, chosen, L, L + 1, H, aligner, [&](int l, int h, const at::Tensor& v) {
        return l == L ? at::matmul(dec.poolHeads[0][h].to(at::kCPU, at::kFloat), v) : pooledTokenScores(model, dec, 0, l, h, v);
    });
}

at::Tensor hierarchicalDecompositionTokenScores(const Model& model, const Decomposition& dec, const at::Tensor& text,
                                               const HeatmapParams& params, const Aligner* aligner) {
    const VisionTower& v = model.vision;
    if (dec.swinFactors.empty()) throw InputError("decomposition", "per-token scores of a Swin model need its token factors (tokenFactors)");
    const int L = v.layers();
    // The chosen heads by layer (every head of every layer when none is chosen).
    std::vector<std::vector<int>> byLayer(static_cast<std::size_t>(L));
    for (const auto& [l, h] : params.heads) {
        if (l < 0 || l >= L || h < 0 || h >= v.headsIn(l))
            throw InputError("head " + std::to_string(l) + "." + std::to_string(h),
                             l >= 0 && l < L ? "is not a head of this model: layer " + std::to_string(l) + " has " + std::to_string(v.headsIn(l)) + " heads"
                                             : "is outside the model's " + std::to_string(L) + " layers");
        byLayer[static_cast<std::size_t>(l)].push_back(h);
    }
    if (params.heads.empty())
        for (int l = 0; l < L; ++l)
            for (int h = 0; h < v.headsIn(l); ++h) byLayer[static_cast<std::size_t>(l)].push_back(h);
    at::Tensor direction = text.to(at::kCPU, at::kFloat);
    if (params.referenceTexts.defined()) direction = direction - params.referenceTexts.to(at::kCPU, at::kFloat).mean(0);
    // A per-component aligner's map for each head takes the text back (scores are linear). The
    // directions of a whole stage go through its readout maps in one product.
    std::vector<at::Tensor> dirs(static_cast<std::size_t>(L));
    for (int l = 0; l < L; ++l) {
        std::vector<at::Tensor> d;
        for (int h : byLayer[static_cast<std::size_t>(l)])
            d.push_back(aligner ? at::matmul(aligner->weightFor(Component{Component::Kind::Head, l, h}.name()), direction) : direction);
        if (!d.empty()) dirs[static_cast<std::size_t>(l)] = at::stack(d);
    }
    at::Tensor scores;
    for (int l = 0; l < L;) {
        const int stage = v.stageOf(l);
        int end = l;
        std::vector<at::Tensor> stageDirs;
        while (end < L && v.stageOf(end) == stage) {
            if (dirs[static_cast<std::size_t>(end)].defined()) stageDirs.push_back(dirs[static_cast<std::size_t>(end)]);
            ++end;
        }
        if (!stageDirs.empty()) {
            const at::Tensor projected = readoutDirections(model, dec.swinFactors[static_cast<std::size_t>(l)].stage, at::cat(stageDirs));
            int64_t offset = 0;
            for (int k = l; k < end; ++k) {
                const std::vector<int>& heads = byLayer[static_cast<std::size_t>(k)];
                if (heads.empty()) continue;
                const int64_t n = static_cast<int64_t>(heads.size());
                const at::Tensor s = swinTokenScores(model, dec, 0, k, heads, dirs[static_cast<std::size_t>(k)], projected.narrow(2, offset, n))
                                         .sum(0)
                                         .to(at::kCPU, at::kFloat);
                offset += n;
                scores = scores.defined() ? scores + s : s;
            }
        }
        l = end;
    }
    return scores;
}

Heatmap heatmapFromTokenScores(const at::Tensor& scores, int prefix, int gridH, int gridW, int64_t height, int64_t width, int suffix) {
    if (scores.dim() != 1 || scores.size(0) != prefix + static_cast<int64_t>(gridH) * gridW + suffix)
        throw InputError("token scores", "do not match a " + std::to_string(gridH) + " x " + std::to_string(gridW) + " grid");
    Heatmap out;
    out.patches = scores.to(at::kCPU, at::kFloat).contiguous().narrow(0, prefix, gridH * gridW).reshape({gridH, gridW}).contiguous();
    out.pixels = at::upsample_bilinear2d(out.patches.view({1, 1, gridH, gridW}), {height, width}, false)[0][0].contiguous();
    if (suffix > 0) out.registerScores = scores.to(at::kCPU, at::kFloat).narrow(0, prefix + static_cast<int64_t>(gridH) * gridW, suffix).clone();
    return out;
}

Colormap parseColormap(const std::string& name) {
    if (name == "viridis") return Colormap::Viridis;
    if (name == "inferno") return Colormap::Inferno;
    if (name == "jet") return Colormap::Jet;
    if (name == "turbo") return Colormap::Turbo;
    throw InputError("--colormap " + name, "unknown colormap (viridis, inferno, jet, turbo)");
}

cv::Mat renderOverlay(const cv::Mat& cropRgb, const at::Tensor& map, double opacity, Colormap colormap, int scale,
                      const std::string& title) {
    if (cropRgb.empty() || cropRgb.type() != CV_8UC3) throw InputError("overlay", "needs an 8-bit RGB image");
    if (map.dim() != 2 || map.size(0) != cropRgb.rows || map.size(1) != cropRgb.cols)
        throw InputError("overlay", "map size differs from the image");
    const at::Tensor m = map.to(at::kCPU, at::kFloat).contiguous();
    const double lo = m.min().item<double>(), hi = m.max().item<double>();
    const at::Tensor unit = (hi > lo ? (m - lo) / (hi - lo) : at::zeros_like(m)).mul(255.0).round().to(at::kByte).contiguous();
    cv::Mat gray(cropRgb.rows, cropRgb.cols, CV_8UC1, unit.data_ptr());
    const int cmap = colormap == Colormap::Viridis ? cv::COLORMAP_VIRIDIS
                     : colormap == Colormap::Inferno ? cv::COLORMAP_INFERNO
                     : colormap == Colormap::Jet     ? cv::COLORMAP_JET
                                                     : cv::COLORMAP_TURBO;
    cv::Mat colored, bgr;
    cv::applyColorMap(gray, colored, cmap);
    cv::cvtColor(cropRgb, bgr, cv::COLOR_RGB2BGR);
    cv::Mat blended;
    cv::addWeighted(bgr, 1.0 - opacity, colored, opacity, 0.0, blended);
    scale = std::clamp(scale, 1, 16);
    if (scale > 1) cv::resize(blended, blended, {}, scale, scale, cv::INTER_LINEAR);
    // Canvas: title band on top, colorbar with its value range on the right.
    const int band = title.empty() ? 8 : 24, barW = 14, labelW = 64;
    cv::Mat canvas(blended.rows + band + 8, blended.cols + 8 + barW + labelW, CV_8UC3, cv::Scalar(255, 255, 255));
    blended.copyTo(canvas(cv::Rect(0, band, blended.cols, blended.rows)));
    cv::Mat ramp(blended.rows, 1, CV_8UC1);
    for (int y = 0; y < ramp.rows; ++y) ramp.at<uint8_t>(y, 0) = static_cast<uint8_t>(255 - (255 * y) / std::max(1, ramp.rows - 1));
    cv::Mat rampColored;
    cv::applyColorMap(ramp, rampColored, cmap);
    cv::resize(rampColored, rampColored, {barW, blended.rows}, 0, 0, cv::INTER_NEAREST);
    const int barX = blended.cols + 8;
    rampColored.copyTo(canvas(cv::Rect(barX, band, barW, blended.rows)));
    cv::rectangle(canvas, cv::Rect(barX, band, barW, blended.rows), cv::Scalar(80, 80, 80), 1);
    auto label = [&](double value, int y) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3g", value);
        cv::putText(canvas, buf, {barX + barW + 4, y}, cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(30, 30, 30), 1, cv::LINE_AA);
    };
    label(hi, band + 10);
    label(lo, band + blended.rows - 2);
    if (!title.empty())
        cv::putText(canvas, title, {2, 16}, cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(20, 20, 20), 1, cv::LINE_AA);
    return canvas;
}

}  // namespace vitscope
