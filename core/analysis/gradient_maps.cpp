#include "analysis/gradient_maps.h"

#include "error.h"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <sstream>

namespace vitscope {

namespace {

struct Checked {
    int64_t batch = 0, patches = 0, prefix = 0;
};

Checked check(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const Aligner* aligner, const char* method) {
    const VisionTower& v = model.vision;
    if (v.hierarchical())
        throw InputError(model.info.weightsPath, std::string(method) + " maps are defined for plain ViTs (not Swin or MaxViT)");
    if (pixels.dim() != 4 || pixels.size(1) != 3) throw InputError("pixels", "expected [B, 3, S, S]");
    Checked c;
    c.batch = pixels.size(0);
    c.patches = (pixels.size(2) / v.patchSize) * (pixels.size(3) / v.patchSize);
    if (target.classIndex >= 0) {
        if (!v.headW.defined()) throw InputError(model.info.weightsPath, "has no classifier head: give a text instead of a class");
        if (target.classIndex >= v.headW.size(0))
            throw InputError("class " + std::to_string(target.classIndex), "is not a class of this model (" + std::to_string(v.headW.size(0)) + ")");
    } else {
        const int64_t e = aligner ? aligner->weight.size(1) : v.embedDim();
        if (!target.texts.defined() || target.texts.dim() != 2 || target.texts.size(0) != c.batch || target.texts.size(1) != e)
            throw InputError("texts", "expected one " + std::to_string(e) + "-dimensional text embedding per image");
        if (target.labels.defined() && (target.labels.dim() != 2 || target.labels.size(1) != e || target.labels.size(0) < 1))
            throw InputError("labels", "expected a list of " + std::to_string(e) + "-dimensional text embeddings");
    }
    return c;
}

at::Tensor minMaxRows(const at::Tensor& x) {
    const at::Tensor lo = std::get<0>(x.min(1, true)), hi = std::get<0>(x.max(1, true));
    return (x - lo) / (hi - lo).clamp_min(1e-12);
}

// The logits' scale of the probability target: CLIP's for an aligned tower (its softmax temperature).
double textLogitScale(const Model& model, const GradientTarget& target) {
    if (target.logitScale > 0) return target.logitScale;
    return model.isClip() ? model.logitScale : 1.0;
}

// [B] scores of a model output (and logits) for the target: a class's logit, or the text's logit
// (CLIP / SigLIP: the model's scale x cosine; an aligned tower: the cosine, as before issue 27) in
// the (aligned) output space; `logit` false: the plain cosine (LeGrad).
at::Tensor targetScores(const Model& model, const VisionResult& r, const GradientTarget& target, const Aligner* aligner, bool logit) {
    if (target.classIndex >= 0) return r.logits.select(1, target.classIndex);
    at::Tensor out = aligner ? aligner->apply(r.output.to(at::kCPU)) : r.output;
    out = out / out.norm(2, -1, true).clamp_min(1e-12);
    const at::Tensor cosine = (out * target.texts.to(out.device(), at::kFloat)).sum(-1);
    return logit && model.isClip() ? cosine * model.logitScale : cosine;
}

// [B] pytorch-grad-cam's CLIP target: softmax over the label list of the image's logits (scale x
// cosine; a SigLIP bias would cancel), at the target text's position (prepended when absent).
at::Tensor labelProbabilities(const Model& model, const VisionResult& r, const GradientTarget& target, const Aligner* aligner) {
    at::Tensor out = aligner ? aligner->apply(r.output.to(at::kCPU)) : r.output;
    out = out / out.norm(2, -1, true).clamp_min(1e-12);
    const at::Tensor labels = target.labels.to(out.device(), at::kFloat);
    const at::Tensor texts = target.texts.to(out.device(), at::kFloat);
    std::vector<at::Tensor> rows;
    for (int64_t b = 0; b < texts.size(0); ++b) {
        const at::Tensor gap = (labels - texts[b].unsqueeze(0)).abs().amax(1);
        const int64_t same = gap.argmin().item<int64_t>();
        const bool inside = gap[same].item<double>() < 1e-6;
        const at::Tensor list = inside ? labels : at::cat({texts[b].unsqueeze(0), labels});
        const at::Tensor logits = at::matmul(out[b], list.t()) * textLogitScale(model, target);
        rows.push_back(at::softmax(logits, 0)[inside ? same : 0]);
    }
    return at::stack(rows);
}

VisionResult resultWithPool(const Model& model, const at::Tensor& residual, at::Tensor* poolAttention) {
    const VisionTower& v = model.vision;
    VisionResult r;
    r.output = pooledWithAttention(model, residual, false, true, poolAttention);
    if (v.headW.defined()) r.logits = at::linear(r.output, v.headW, v.headB);
    return r;
}

// The residuals entering each block and after the last, without gradients.
std::vector<at::Tensor> residuals(const Model& model, const at::Tensor& pixels) {
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> xs{embedImageTokens(model, pixels)};
    for (int l = 0; l < model.vision.layers(); ++l) xs.push_back(runVisionBlock(model, l, xs.back(), nullptr));
    return xs;
}

}  // namespace

const char* gradCamTargetName(GradCamTarget t) {
    switch (t) {
    case GradCamTarget::Auto: return "auto";
    case GradCamTarget::Probability: return "probability";
    case GradCamTarget::Logit: return "logit";
    }
    return "?";
}

GradCamTarget parseGradCamTarget(const std::string& name) {
    for (GradCamTarget t : {GradCamTarget::Auto, GradCamTarget::Probability, GradCamTarget::Logit})
        if (name == gradCamTargetName(t)) return t;
    throw InputError("--gradcam-target " + name, "unknown Grad-CAM target (auto, probability, logit)");
}

int defaultCheferStartLayer(const Model& model) {
    return model.info.family == "clip" || model.info.family == "siglip" || model.isClip() ? -1 : 0;
}

void GradientMapParams::validate(const Model& model) const {
    const int L = model.vision.layers();
    if (cheferStartLayer && (*cheferStartLayer < -1 || *cheferStartLayer >= L))
        throw InputError("chefer start layer " + std::to_string(*cheferStartLayer),
                         "must be -1 (the last layer only) or a layer index below " + std::to_string(L));
    if (legradLayers < 1) throw InputError("legrad layers " + std::to_string(legradLayers), "must be at least 1 (the last k layers)");
}

std::string GradientMapParams::toString() const {
    std::ostringstream s;
    s << "chefer_start_layer=" << (cheferStartLayer ? std::to_string(*cheferStartLayer) : std::string("auto"))
      << " gradcam_target=" << gradCamTargetName(gradcamTarget) << " legrad_layers=" << legradLayers
      << " legrad_correction=" << (legradEmptyText.defined() ? "on" : "off");
    return s.str();
}

bool gradientMapUpsampledMinMax(const Model& model, bool legrad) { return !(legrad && model.vision.pool.defined()); }

at::Tensor gradCamScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params,
                         const Aligner* aligner) {
    const Checked c = check(model, pixels, target, aligner, "Grad-CAM");
    const bool probability = target.classIndex < 0 && (params.gradcamTarget == GradCamTarget::Probability ||
                                                       (params.gradcamTarget == GradCamTarget::Auto && target.labels.defined()));
    if (probability && !target.labels.defined())
        throw InputError("Grad-CAM target probability", "needs a label list (--labels FILE or --reference-texts FILE)");
    const int L = model.vision.layers();
    at::Tensor x;
    {
        at::NoGradGuard noGrad;
        x = embedImageTokens(model, pixels);
        for (int l = 0; l + 1 < L; ++l) x = runVisionBlock(model, l, x, nullptr);
    }
    at::AutoGradMode grad(true);
    x = x.detach().requires_grad_(true);
    BlockTaps taps;
    const at::Tensor y = runVisionBlock(model, L - 1, x, &taps);
    const VisionResult r = model.vision.pool.defined() ? resultWithPool(model, y, nullptr) : outputsFromResidual(model, y);
    const at::Tensor score = (probability ? labelProbabilities(model, r, target, aligner) : targetScores(model, r, target, aligner, true)).sum();
    const at::Tensor g = torch::autograd::grad({score}, {taps.normed})[0];
    const int64_t prefix = g.size(1) - c.patches;
    const at::Tensor a = taps.normed.detach().narrow(1, prefix, c.patches);  // [B, n, D]
    const at::Tensor w = g.narrow(1, prefix, c.patches).mean(1, true);       // [B, 1, D]
    return minMaxRows(at::relu((a * w).sum(-1))).to(at::kCPU);
}

at::Tensor cheferScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params,
                        const Aligner* aligner) {
    const Checked c = check(model, pixels, target, aligner, "Chefer");
    const VisionTower& v = model.vision;
    const int L = v.layers();
    params.validate(model);
    const int chosen = params.cheferStartLayer.value_or(defaultCheferStartLayer(model));
    const int start = chosen < 0 ? L - 1 : chosen;
    // The layers before the start enter no relevance: run them without a graph.
    at::Tensor x0;
    {
        at::NoGradGuard noGrad;
        x0 = embedImageTokens(model, pixels);
        for (int l = 0; l < start; ++l) x0 = runVisionBlock(model, l, x0, nullptr);
    }
    at::AutoGradMode grad(true);
    at::Tensor x = x0.detach().requires_grad_(true);
    std::vector<at::Tensor> attention;  // layers start .. L - 1
    for (int l = start; l < L; ++l) {
        BlockTaps taps;
        x = runVisionBlock(model, l, x, &taps);
        attention.push_back(taps.attention);
    }
    at::Tensor poolAttention;
    const VisionResult r = v.pool.defined() ? resultWithPool(model, x, &poolAttention) : outputsFromResidual(model, x);
    const at::Tensor score = targetScores(model, r, target, aligner, true).sum();
    std::vector<at::Tensor> inputs = attention;
    if (poolAttention.defined()) inputs.push_back(poolAttention);
    const std::vector<at::Tensor> grads = torch::autograd::grad({score}, inputs);
    const int64_t n = attention.front().size(2);
    at::Tensor rel = at::eye(n, attention.front().options()).expand({c.batch, n, n}).clone();
    for (std::size_t i = 0; i < attention.size(); ++i) {
        const at::Tensor cam = (grads[i] * attention[i].detach()).clamp_min(0).mean(1);
        rel = rel + at::bmm(cam, rel);
    }
    at::Tensor map;
    if (poolAttention.defined()) {
        const at::Tensor cam = (grads.back() * poolAttention.detach()).clamp_min(0).mean(1);  // [B, N]
        map = at::bmm(cam.unsqueeze(1), rel).squeeze(1);
    } else {
        map = rel.select(1, 0);
    }
    return minMaxRows(map.narrow(1, n - c.patches, c.patches).detach()).to(at::kCPU);
}

at::Tensor legradScores(const Model& model, const at::Tensor& pixels, const GradientTarget& target, const GradientMapParams& params,
                        const Aligner* aligner) {
    const Checked c = check(model, pixels, target, aligner, "LeGrad");
    const VisionTower& v = model.vision;
    const int L = v.layers();
    const int start = L - std::clamp(params.legradLayers, 1, L);
    const std::vector<at::Tensor> xs = residuals(model, pixels);
    at::AutoGradMode grad(true);
    // Per layer, from its detached input: the attention as a leaf and the feature it leads to.
    std::vector<at::Tensor> leaves, features, logits;
    for (int l = start; l < L; ++l) {
        const at::Tensor in = xs[static_cast<std::size_t>(l)].detach();
        if (v.pool.defined()) {
            const at::Tensor y = runVisionBlock(model, l, in, nullptr);
            at::Tensor attn;
            features.push_back(pooledWithAttention(model, y, true, false, &attn));
            leaves.push_back(attn);
            if (target.classIndex >= 0) logits.push_back(at::linear(features.back(), v.headW, v.headB));
        } else {
            BlockTaps taps;
            taps.attentionLeaf = true;
            const at::Tensor y = runVisionBlock(model, l, in, &taps);
            const at::Tensor normed = at::layer_norm(y.mean(1), {v.width}, v.normW, v.normB, v.normEps);
            features.push_back(v.proj.defined() ? at::matmul(normed, v.proj) : normed);
            leaves.push_back(taps.attention);
            if (target.classIndex >= 0) logits.push_back(at::linear(normed, v.headW, v.headB));
        }
    }
    auto relevance = [&](const GradientTarget& t) {
        at::Tensor total;
        for (std::size_t i = 0; i < features.size(); ++i) {
            VisionResult r;
            r.output = features[i];
            if (!logits.empty()) r.logits = logits[i];
            const at::Tensor s = targetScores(model, r, t, aligner, false).sum();
            total = total.defined() ? total + s : s;
        }
        const std::vector<at::Tensor> grads = torch::autograd::grad({total}, leaves, {}, true);
        at::Tensor sum;
        for (const at::Tensor& g : grads) {
            const at::Tensor pos = g.detach().clamp_min(0);
            // CLIP: heads, then query rows, prefix columns dropped; SigLIP: the pool's heads.
            const at::Tensor m = v.pool.defined() ? pos.mean(1) : pos.mean(1).mean(1);
            const at::Tensor patches = m.narrow(1, m.size(1) - c.patches, c.patches);
            sum = sum.defined() ? sum + patches : patches;
        }
        return sum;
    };
    at::Tensor map = relevance(target);
    if (v.pool.defined() && params.legradEmptyText.defined() && target.classIndex < 0) {
        GradientTarget empty;
        empty.texts = params.legradEmptyText.to(at::kFloat).reshape({1, -1}).expand({c.batch, -1});
        const at::Tensor emptyMap = minMaxRows(relevance(empty));
        map = map.masked_fill(emptyMap > params.legradThreshold, 0.0);
    }
    return minMaxRows(map).to(at::kCPU);
}

}  // namespace vitscope
