// SigLIP: ViT towers without a class token whose image embedding is a multi-head attention pool
// (the "MAP" head), in Hugging Face (SiglipModel / SiglipVisionModel), timm (vit_*_siglip_*,
// attn_pool.*) and open_clip (the timm tower under visual.trunk., open_clip's text tower) names.
#include "error.h"
#include "model/loader_common.h"

#include <cmath>

namespace vitscope::loader {

namespace {

// Heads of SigLIP towers whose head width is not 64 (so400m: 1152 / 16 = 72; giant: 1536 / 16).
int siglipHeads(int width, int configured, const std::string& where, const char* tower) {
    if (configured <= 0 && (width == 1152 || width == 1536)) configured = 16;
    return headsFor(width, configured, 64, where, tower);
}

Activation siglipActivation(const std::string& name, const std::string& where) {
    if (name.empty() || name == "gelu_pytorch_tanh" || name == "gelu_tanh" || name == "gelu_new") return Activation::GeluTanh;
    if (name == "gelu") return Activation::Gelu;
    if (name == "quick_gelu") return Activation::QuickGelu;
    throw ModelError(where, "unsupported activation '" + name + "'");
}

std::string stringOr(const nlohmann::json& j, const char* key) {
    const auto& v = sub(j, key);
    return v.is_string() ? v.get<std::string>() : std::string();
}

// Patch embedding and a position table without prefix rows ([1, G, D] or [G, D]).
void readPatchesAndPositions(const Tensors& t, const LayoutTable& table, VisionTower& v) {
    readPatchEmbed(t, table, v);
    const int64_t d = v.width;
    const at::Tensor pos = t.get(table.pos);
    if (pos.dim() == 3 && pos.size(0) == 1 && pos.size(2) == d) v.pos = pos.reshape({pos.size(1), d});
    else if (pos.dim() == 2 && pos.size(1) == d) v.pos = pos;
    else throw ModelError(t.where(), "tensor '" + table.pos + "' has shape " + shapeText(pos.sizes()) + ", expected [G, " +
                                         std::to_string(d) + "]");
    v.posPrefix = 0;
    v.imageSize = gridFromPositions(v.pos.size(0), 0, t.where()) * v.patchSize;
}

void readPool(const Tensors& t, const PoolNames& n, VisionTower& v, int heads, double eps) {
    const int64_t d = v.width;
    AttentionPool& p = v.pool;
    const at::Tensor probe = t.get(n.probe);
    if (probe.numel() != d)
        throw ModelError(t.where(), "tensor '" + n.probe + "' has shape " + shapeText(probe.sizes()) + ", expected [1, 1, " +
                                        std::to_string(d) + "] (one probe)");
    p.probe = probe.reshape({d});
    if (!n.inProjW.empty()) {
        p.qkvW = t.get(n.inProjW, {3 * d, d});
        p.qkvB = t.has(n.inProjB) ? t.get(n.inProjB, {3 * d}) : at::zeros({3 * d});
    } else {
        p.qkvW = at::cat({t.get(n.q + ".weight", {d, d}), t.get(n.kv + ".weight", {2 * d, d})});
        p.qkvB = at::cat({t.has(n.q + ".bias") ? t.get(n.q + ".bias", {d}) : at::zeros({d}),
                          t.has(n.kv + ".bias") ? t.get(n.kv + ".bias", {2 * d}) : at::zeros({2 * d})});
    }
    p.outW = t.get(n.out + ".weight", {d, d});
    p.outB = t.has(n.out + ".bias") ? t.get(n.out + ".bias", {d}) : at::zeros({d});
    readNorm(t, n.norm, d, p.lnW, p.lnB);
    const int64_t m = t.dim(n.fc1 + ".weight", 0);
    p.fc1W = t.get(n.fc1 + ".weight", {m, d});
    p.fc1B = t.get(n.fc1 + ".bias", {m});
    p.fc2W = t.get(n.fc2 + ".weight", {d, m});
    p.fc2B = t.get(n.fc2 + ".bias", {d});
    p.heads = heads;
    p.eps = eps;
}

// SigLIP preprocessing: resize the whole image to the input size (no crop), mean = std = 0.5
// unless a config states others.
void setSiglipPreprocess(Model& model, int imageSize) {
    model.preprocess.imageSize = imageSize;
    model.preprocess.resizeShortest = imageSize;
    model.preprocess.squash = true;
    model.preprocess.mean = {0.5f, 0.5f, 0.5f};
    model.preprocess.std = {0.5f, 0.5f, 0.5f};
}

// The SigLIP text tower of a layout: no causal mask, pooled at the last position, a Linear head.
TextTower readSiglipText(const Tensors& t, const LayoutTable& table, int heads, Activation act, double eps) {
    TextTower text = readTextBody(t, table);
    const int64_t dt = text.width;
    text.encoder.heads = siglipHeads(text.width, heads, t.where(), "text");
    text.encoder.activation = act;
    text.encoder.eps = eps;
    text.lnEps = eps;
    const int64_t e = t.dim(table.textProj + ".weight", 0);
    text.proj = t.get(table.textProj + ".weight", {e, dt}).t().contiguous();
    text.projB = t.has(table.textProj + ".bias") ? t.get(table.textProj + ".bias", {e}) : at::Tensor();
    text.causal = false;
    text.poolLast = true;
    text.endToken = -1;
    return text;
}

void readLogits(const Tensors& t, const LayoutTable& table, Model& model) {
    model.sigmoidScores = true;
    model.logitScale = t.has(table.logitScale) ? std::exp(t.get(table.logitScale).reshape({-1})[0].item<double>()) : 10.0;
    model.logitBias = t.has(table.logitBias) ? t.get(table.logitBias).reshape({-1})[0].item<double>() : -10.0;
}

void checkEmbedDims(const Model& model, const std::string& where) {
    if (model.text && model.text->proj.size(1) != model.vision.width)
        throw ModelError(where, "text embedding dim " + std::to_string(model.text->proj.size(1)) +
                                    " differs from the image embedding dim " + std::to_string(model.vision.width));
}

}  // namespace

Model buildHfSiglip(const Tensors& t, const nlohmann::json& config, const nlohmann::json& prep) {
    const LayoutTable& table = layoutTable(Layout::HfSiglip);
    const std::string type = stringOr(config, "model_type");
    if (t.has(table.patch + ".weight") && t.get(table.patch + ".weight").dim() == 2)
        throw ModelError(t.where(), "NaFlex SigLIP 2 (variable-resolution patch embedding) is not supported; "
                                    "use a fixed-resolution SigLIP / SigLIP 2 checkpoint");
    if (!t.has(table.pool.probe))
        throw ModelError(t.where(), "missing tensor '" + table.pool.probe + "' (a SigLIP tower's attention-pooling probe; towers "
                                    "without the head, vision_use_head = false, are not supported) or '" +
                                        layoutTable(Layout::HfClip).cls + "' (a CLIP tower's class token)");
    Model model;
    model.info.family = "siglip";
    model.info.layout = table.name;
    const bool nested = sub(config, "vision_config").is_object();
    const auto& vcfg = nested ? sub(config, "vision_config") : config;
    const auto& tcfg = sub(config, "text_config");
    VisionTower& v = model.vision;
    readPatchesAndPositions(t, table, v);
    v.encoder = readEncoder(t, table, table.visionBlocks, v.width, "image");
    v.encoder.heads = siglipHeads(v.width, intOr(vcfg, "num_attention_heads", 0), t.where(), "image");
    v.encoder.activation = siglipActivation(stringOr(vcfg, "hidden_act"), t.where());
    v.encoder.eps = numberOr(vcfg, "layer_norm_eps", 1e-6);
    readNorm(t, table.norm, v.width, v.normW, v.normB);
    v.normEps = v.encoder.eps;
    readPool(t, table.pool, v, v.encoder.heads, v.encoder.eps);
    if (t.has(table.tokenEmbedding)) {
        model.text = readSiglipText(t, table, intOr(tcfg, "num_attention_heads", 0),
                                    siglipActivation(stringOr(tcfg, "hidden_act"), t.where()), numberOr(tcfg, "layer_norm_eps", 1e-6));
        readLogits(t, table, model);
        checkEmbedDims(model, t.where());
    }
    setSiglipPreprocess(model, intOr(sub(prep, "size"), "height", intOr(vcfg, "image_size", v.imageSize)));
    readMeanStd(prep, "image_mean", "image_std", model.preprocess);
    model.preprocess.bilinear = intOr(prep, "resample", 3) == 2;  // PIL's BILINEAR; 3 (BICUBIC) is the processor's default
    if (!type.empty() && type.rfind("siglip", 0) != 0)
        throw ModelError(t.where(), "config.json names model_type '" + type + "', but the tensors are SigLIP's");
    return model;
}

Model buildTimmSiglip(const Tensors& t, const nlohmann::json& config) {
    const LayoutTable& table = layoutTable(Layout::TimmSiglip);
    Model model;
    model.info.family = "siglip";
    model.info.layout = "timm";
    VisionTower& v = model.vision;
    readPatchesAndPositions(t, table, v);
    const int64_t d = v.width;
    if (t.has("cls_token"))
        throw ModelError(t.where(), "attention-pooled timm ViT with a class token is not supported (SigLIP towers have none)");
    if (t.has(table.lnPre + ".weight")) readNorm(t, table.lnPre, d, v.lnPreW, v.lnPreB);
    v.encoder = readEncoder(t, table, table.visionBlocks, d, "image");
    const auto& args = sub(config, "model_args").is_object() ? sub(config, "model_args") : config;
    v.encoder.heads = siglipHeads(v.width, intOr(args, "num_heads", 0), t.where(), "image");
    v.encoder.activation = siglipActivation(stringOr(args, "act_layer"), t.where());
    v.encoder.eps = 1e-6;
    readNorm(t, table.norm, d, v.normW, v.normB);
    v.normEps = 1e-6;
    readPool(t, table.pool, v, v.encoder.heads, 1e-6);
    if (t.has("head.weight")) {
        const int64_t c = t.dim("head.weight", 0);
        v.headW = t.get("head.weight", {c, d});
        v.headB = t.opt("head.bias", {c});
        model.numClasses = static_cast<int>(c);
    }
    const auto& input = sub(sub(config, "pretrained_cfg"), "input_size");
    const int cfgSize = input.is_array() && input.size() == 3 && input[2].is_number_integer() ? input[2].get<int>() : 0;
    setSiglipPreprocess(model, cfgSize > 0 && cfgSize % v.patchSize == 0 ? cfgSize : v.imageSize);
    readMeanStd(sub(config, "pretrained_cfg"), "mean", "std", model.preprocess);
    model.preprocess.bilinear = stringOr(sub(config, "pretrained_cfg"), "interpolation") == "bilinear";
    return model;
}

Model buildOpenClipSiglip(const Tensors& t, const nlohmann::json& config) {
    static const std::string kTrunk = "visual.trunk.";
    StateDict trunk;
    for (const auto& [name, tensor] : t.all()) {
        if (name.compare(0, kTrunk.size(), kTrunk) == 0) trunk.emplace(name.substr(kTrunk.size()), tensor);
        // open_clip's SigLIP configs pass the pooled trunk output through (timm_proj "none"); a
        // projection after it (visual.head.*, or the trunk's own head) would follow the pool.
        if (name.rfind("visual.head.", 0) == 0 || name.rfind("visual.trunk.head.", 0) == 0)
            throw ModelError(t.where(), "open_clip SigLIP tower with a projection after the pool ('" + name +
                                            "') is not supported; only timm_proj \"none\" towers are");
    }
    const auto& cfg = sub(config, "model_cfg").is_object() ? sub(config, "model_cfg") : config;
    const auto& vcfg = sub(cfg, "vision_cfg");
    const auto& tcfg = sub(cfg, "text_cfg");
    nlohmann::json timmConfig = nlohmann::json::object();
    if (sub(vcfg, "image_size").is_number_integer())
        timmConfig["pretrained_cfg"]["input_size"] = {3, vcfg["image_size"], vcfg["image_size"]};
    Model model = buildTimmSiglip(Tensors(trunk, t.where()), timmConfig);
    model.info.layout = "open_clip";
    const LayoutTable& table = layoutTable(Layout::OpenClipSiglip);
    const std::string act = sub(sub(tcfg, "act_kwargs"), "approximate").is_string() &&
                                    sub(sub(tcfg, "act_kwargs"), "approximate").get<std::string>() == "none"
                                ? "gelu"
                                : "";
    model.text = readSiglipText(t, table, intOr(tcfg, "heads", 0), siglipActivation(act, t.where()),
                                numberOr(sub(tcfg, "norm_kwargs"), "eps", 1e-6));
    readLogits(t, table, model);
    checkEmbedDims(model, t.where());
    readMeanStd(sub(config, "preprocess_cfg"), "mean", "std", model.preprocess);
    return model;
}

}  // namespace vitscope::loader
