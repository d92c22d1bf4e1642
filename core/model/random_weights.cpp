#include "model/random_weights.h"

#include "model/layouts.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

namespace vitscope {

namespace {

class Filler {
public:
    Filler(uint64_t seed, bool training) : m_gen(at::make_generator<at::CPUGeneratorImpl>(seed)), m_training(training) {}
    at::Tensor normal(std::vector<int64_t> shape, double stdv) { return at::normal(0.0, stdv, shape, m_gen); }
    at::Tensor gain(int64_t d) { return m_training ? at::ones({d}) : 1.0 + normal({d}, 0.1); }
    at::Tensor bias(int64_t d) { return m_training ? at::zeros({d}) : normal({d}, 0.05); }
    at::Tensor linear(int64_t out, int64_t in) { return normal({out, in}, 1.0 / std::sqrt(static_cast<double>(in))); }

private:
    at::Generator m_gen;
    bool m_training;
};

void addBlock(StateDict& sd, Filler& f, const BlockNames& n, int64_t d, int64_t m, bool layerScale) {
    sd[n.ln1 + ".weight"] = f.gain(d);
    sd[n.ln1 + ".bias"] = f.bias(d);
    if (n.qkvW.empty()) {
        for (const std::string* p : {&n.q, &n.k, &n.v}) {
            sd[*p + ".weight"] = f.linear(d, d);
            sd[*p + ".bias"] = f.bias(d);
        }
    } else {
        sd[n.qkvW] = f.linear(3 * d, d);
        sd[n.qkvB] = f.bias(3 * d);
    }
    sd[n.out + ".weight"] = f.linear(d, d);
    sd[n.out + ".bias"] = f.bias(d);
    sd[n.ln2 + ".weight"] = f.gain(d);
    sd[n.ln2 + ".bias"] = f.bias(d);
    sd[n.fc1 + ".weight"] = f.linear(m, d);
    sd[n.fc1 + ".bias"] = f.bias(m);
    sd[n.fc2 + ".weight"] = f.linear(d, m);
    sd[n.fc2 + ".bias"] = f.bias(d);
    if (layerScale) {
        sd[n.ls1] = 0.5 + f.normal({d}, 0.2);
        sd[n.ls2] = 0.5 + f.normal({d}, 0.2);
    }
}

void addBlocks(StateDict& sd, Filler& f, const LayoutTable& t, const std::string& pattern, int layers, int64_t d, int64_t m,
               bool layerScale) {
    for (int i = 0; i < layers; ++i) addBlock(sd, f, blockNames(t, pattern, i), d, m, layerScale);
}

// Patch embedding, class token and positions as the layout stores them.
void addEmbedding(StateDict& sd, Filler& f, const LayoutTable& t, const RandomVitSpec& s, bool patchBias) {
    const int64_t d = s.width, g = s.imageSize / s.patchSize;
    sd[t.patch + ".weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    if (patchBias) sd[t.patch + ".bias"] = f.bias(d);
    sd[t.cls] = t.batchedTokens ? f.normal({1, 1, d}, 0.5) : f.normal({d}, 0.5);
    sd[t.pos] = t.batchedTokens ? f.normal({1, 1 + g * g, d}, 0.5) : f.normal({1 + g * g, d}, 0.5);
}

void addNorm(StateDict& sd, Filler& f, const std::string& prefix, int64_t d) {
    sd[prefix + ".weight"] = f.gain(d);
    sd[prefix + ".bias"] = f.bias(d);
}

// A CLIP layout: image tower with its projection, text tower, logit scale.
void addClip(StateDict& sd, Filler& f, const LayoutTable& t, const RandomVitSpec& s) {
    const int64_t d = s.width, e = s.embedDim, dt = s.textWidth;
    addEmbedding(sd, f, t, s, false);
    addNorm(sd, f, t.lnPre, d);
    addBlocks(sd, f, t, t.visionBlocks, s.layers, d, d * s.mlpRatio, false);
    addNorm(sd, f, t.norm, d);
    sd[t.proj] = t.projIsLinear ? f.linear(e, d) : f.linear(e, d).t().contiguous();
    sd[t.tokenEmbedding] = f.normal({s.vocabSize, dt}, 0.02);
    sd[t.textPos] = f.normal({s.contextLength, dt}, 0.01);
    addBlocks(sd, f, t, t.textBlocks, s.textLayers, dt, dt * 4, false);
    addNorm(sd, f, t.lnFinal, dt);
    sd[t.textProj] = t.projIsLinear ? f.linear(e, dt) : f.linear(e, dt).t().contiguous();
    sd[t.logitScale] = at::full({}, std::log(1.0 / 0.07));
}

void addTimm(StateDict& sd, Filler& f, const RandomVitSpec& s, bool dinov2) {
    const LayoutTable& t = layoutTable(Layout::Timm);
    const int64_t d = s.width;
    addEmbedding(sd, f, t, s, true);
    if (dinov2) {
        sd["mask_token"] = at::zeros({1, d});
        if (s.registers > 0) sd["register_tokens"] = f.normal({1, s.registers, d}, 0.5);
    }
    addBlocks(sd, f, t, t.visionBlocks, s.layers, d, d * s.mlpRatio, s.layerScale);
    addNorm(sd, f, t.norm, d);
    if (s.numClasses > 0) {
        sd[t.head + ".weight"] = f.linear(s.numClasses, d);
        sd[t.head + ".bias"] = f.bias(s.numClasses);
    }
}

void addTorchvision(StateDict& sd, Filler& f, const RandomVitSpec& s) {
    const LayoutTable& t = layoutTable(Layout::Torchvision);
    const int64_t d = s.width;
    addEmbedding(sd, f, t, s, true);
    addBlocks(sd, f, t, t.visionBlocks, s.layers, d, d * s.mlpRatio, false);
    addNorm(sd, f, t.norm, d);
    sd[t.head + ".weight"] = f.linear(s.numClasses, d);
    sd[t.head + ".bias"] = f.bias(s.numClasses);
}

// SigLIP: no class token, positions for the patches only, the attention-pooling head, and
// (Hugging Face / open_clip) a text tower pooled at its last position with a Linear head.
void addSiglip(StateDict& sd, Filler& f, const RandomVitSpec& s) {
    const bool openClip = s.layout == RandomLayout::OpenClipSiglip;
    const LayoutTable& t = layoutTable(s.layout == RandomLayout::HfSiglip ? Layout::HfSiglip : Layout::TimmSiglip);
    const std::string pre = openClip ? "visual.trunk." : "";
    const int64_t d = s.width, g = s.imageSize / s.patchSize, m = d * s.mlpRatio;
    StateDict v;
    v[t.patch + ".weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    v[t.patch + ".bias"] = f.bias(d);
    v[t.pos] = t.batchedTokens ? f.normal({1, g * g, d}, 0.5) : f.normal({g * g, d}, 0.5);
    addBlocks(v, f, t, t.visionBlocks, s.layers, d, m, false);
    addNorm(v, f, t.norm, d);
    const PoolNames& p = t.pool;
    v[p.probe] = f.normal({1, 1, d}, 1.0);
    if (!p.inProjW.empty()) {
        v[p.inProjW] = f.linear(3 * d, d);
        v[p.inProjB] = f.bias(3 * d);
    } else {
        v[p.q + ".weight"] = f.linear(d, d);
        v[p.q + ".bias"] = f.bias(d);
        v[p.kv + ".weight"] = f.linear(2 * d, d);
        v[p.kv + ".bias"] = f.bias(2 * d);
    }
    v[p.out + ".weight"] = f.linear(d, d);
    v[p.out + ".bias"] = f.bias(d);
    addNorm(v, f, p.norm, d);
    v[p.fc1 + ".weight"] = f.linear(m, d);
    v[p.fc1 + ".bias"] = f.bias(m);
    v[p.fc2 + ".weight"] = f.linear(d, m);
    v[p.fc2 + ".bias"] = f.bias(d);
    for (auto& [name, tensor] : v) sd[pre + name] = tensor;
    if (s.layout == RandomLayout::TimmSiglip) return;
    const LayoutTable& tt = layoutTable(openClip ? Layout::OpenClipSiglip : Layout::HfSiglip);
    const int64_t dt = s.textWidth;
    sd[tt.tokenEmbedding] = f.normal({s.vocabSize, dt}, 0.5);
    sd[tt.textPos] = f.normal({s.contextLength, dt}, 0.1);
    addBlocks(sd, f, tt, tt.textBlocks, s.textLayers, dt, dt * 4, false);
    addNorm(sd, f, tt.lnFinal, dt);
    sd[tt.textProj + ".weight"] = f.linear(d, dt);
    sd[tt.textProj + ".bias"] = f.bias(d);
    sd[tt.logitScale] = at::full({1}, std::log(10.0));
    sd[tt.logitBias] = at::full({1}, -10.0);
}

// Swin through the layout table's SwinNames: stage s has width * 2^s channels.
void addSwin(StateDict& sd, Filler& f, const LayoutTable& t, const RandomVitSpec& s) {
    const SwinNames& n = t.swin;
    int64_t d = s.width;
    sd[t.patch + ".weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.2);
    sd[t.patch + ".bias"] = f.bias(d);
    addNorm(sd, f, n.patchNorm, d);
    const int64_t table = static_cast<int64_t>(2 * s.window - 1) * (2 * s.window - 1);
    for (std::size_t st = 0; st < s.swinDepths.size(); ++st) {
        if (st > 0) {
            const std::string m = indexed(n.merge, static_cast<int>(st) * n.mergeStep + n.mergeStart);
            addNorm(sd, f, m + "." + n.mergeNorm, 4 * d);
            sd[m + "." + n.reduction + ".weight"] = f.linear(2 * d, 4 * d);
            d *= 2;
        }
        const std::string blocks = indexed(n.stage, static_cast<int>(st) * n.stageStep + n.stageStart) + "{i}.";
        for (int i = 0; i < s.swinDepths[st]; ++i) {
            addBlock(sd, f, blockNames(t, blocks, i), d, d * s.mlpRatio, false);
            sd[indexed(blocks, i) + n.relBias] = f.normal({table, s.swinHeads[st]}, 0.5);
        }
    }
    addNorm(sd, f, t.norm, d);
    sd[t.head + ".weight"] = f.linear(s.numClasses, d);
    sd[t.head + ".bias"] = f.bias(s.numClasses);
}

// Eval-mode BatchNorm: weight, bias and running statistics (variances positive).
void addBatchNorm(StateDict& sd, Filler& f, const std::string& p, int64_t c) {
    sd[p + ".weight"] = f.gain(c);
    sd[p + ".bias"] = f.bias(c);
    sd[p + ".running_mean"] = f.normal({c}, 0.2);
    sd[p + ".running_var"] = 0.5 + f.normal({c}, 0.1).abs();
}

void addConv(StateDict& sd, Filler& f, const std::string& p, int64_t out, int64_t in, int64_t k, bool bias) {
    sd[p + ".weight"] = f.normal({out, in, k, k}, 1.0 / std::sqrt(static_cast<double>(in * k * k)));
    if (bias) sd[p + ".bias"] = f.bias(out);
}

// MaxViT through the layout table's MaxVitNames (timm's TF-ported names or torchvision's).
void addMaxVit(StateDict& sd, Filler& f, const LayoutTable& t, const RandomVitSpec& s) {
    const MaxVitNames& m = t.maxvit;
    const bool timm = m.tableHeadsFirst;
    const int64_t stem = s.stemWidth, p = s.partition, side = 2 * p - 1;
    addConv(sd, f, m.stem1, stem, 3, 3, timm);
    addBatchNorm(sd, f, m.stemNorm, stem);
    addConv(sd, f, m.stem2, stem, stem, 3, true);
    int64_t in = stem;
    for (std::size_t st = 0; st < s.maxvitWidths.size(); ++st) {
        const int64_t out = s.maxvitWidths[st], mid = 4 * out, r = out / 4, heads = out / s.headDim;
        for (int b = 0; b < s.maxvitDepths[st]; ++b) {
            std::string pre = m.block;
            pre.replace(pre.find("{s}"), 3, std::to_string(st));
            pre.replace(pre.find("{b}"), 3, std::to_string(b));
            const std::string c = pre + m.conv;
            addBatchNorm(sd, f, c + m.preNorm, in);
            addConv(sd, f, c + m.expand, mid, in, 1, false);
            addBatchNorm(sd, f, c + m.norm1, mid);
            sd[c + m.dw + ".weight"] = f.normal({mid, 1, 3, 3}, 1.0 / 3.0);
            addBatchNorm(sd, f, c + m.norm2, mid);
            addConv(sd, f, c + m.se1, r, mid, 1, true);
            addConv(sd, f, c + m.se2, mid, r, 1, true);
            addConv(sd, f, c + m.proj, out, mid, 1, true);
            // timm's shortcut conv only changes the width; torchvision's downsampling block always has one.
            if (b == 0 && (!timm || in != out)) addConv(sd, f, pre + m.shortcut, out, in, 1, true);
            in = out;
            for (const std::string& unit : {m.unitBlock, m.unitGrid}) {
                BlockNames n = m.unit;
                for (std::string* x : {&n.ln1, &n.ln2, &n.qkvW, &n.qkvB, &n.out, &n.fc1, &n.fc2}) *x = pre + unit + *x;
                addBlock(sd, f, n, out, 4 * out, false);
                sd[pre + unit + m.relBias] = timm ? f.normal({heads, side, side}, 0.5) : f.normal({side * side, heads}, 0.5);
            }
        }
    }
    addNorm(sd, f, m.headNorm, in);
    sd[m.preLogits + ".weight"] = f.linear(in, in);
    sd[m.preLogits + ".bias"] = f.bias(in);
    sd[m.head + ".weight"] = f.linear(s.numClasses, in);
    if (timm) sd[m.head + ".bias"] = f.bias(s.numClasses);
}

}  // namespace

RandomVitSpec clipBenchSpec(bool large) {
    RandomVitSpec spec;
    spec.layout = RandomLayout::OpenAiClip;
    spec.imageSize = 224;
    spec.patchSize = large ? 14 : 16;
    spec.width = large ? 1024 : 768;
    spec.layers = large ? 24 : 12;
    spec.embedDim = large ? 768 : 512;
    spec.textWidth = 64;
    spec.textLayers = 1;
    spec.seed = 1;
    return spec;
}

StateDict randomVitStateDict(const RandomVitSpec& spec) {
    Filler f(spec.seed, spec.trainingInit);
    StateDict sd;
    switch (spec.layout) {
    case RandomLayout::OpenAiClip: addClip(sd, f, layoutTable(Layout::OpenAi), spec); break;
    case RandomLayout::HfClip: addClip(sd, f, layoutTable(Layout::HfClip), spec); break;
    case RandomLayout::Timm: addTimm(sd, f, spec, false); break;
    case RandomLayout::Dinov2: addTimm(sd, f, spec, true); break;
    case RandomLayout::Torchvision: addTorchvision(sd, f, spec); break;
    case RandomLayout::HfSiglip:
    case RandomLayout::TimmSiglip:
    case RandomLayout::OpenClipSiglip: addSiglip(sd, f, spec); break;
    case RandomLayout::TimmSwin: addSwin(sd, f, layoutTable(Layout::TimmSwin), spec); break;
    case RandomLayout::TorchvisionSwin: addSwin(sd, f, layoutTable(Layout::TorchvisionSwin), spec); break;
    case RandomLayout::TimmMaxVit: addMaxVit(sd, f, layoutTable(Layout::TimmMaxVit), spec); break;
    case RandomLayout::TorchvisionMaxVit: addMaxVit(sd, f, layoutTable(Layout::TorchvisionMaxVit), spec); break;
    }
    return sd;
}

}  // namespace vitscope
