// CLIP checkpoints: OpenAI / open_clip names and Hugging Face CLIPModel names.
#include "error.h"
#include "model/loader_common.h"

#include <cmath>

namespace vitscope::loader {

namespace {

// The CLIP text tower of a layout; `e` is the shared embedding dimension.
TextTower readTextTower(const Tensors& t, const LayoutTable& table, int64_t e) {
    TextTower text = readTextBody(t, table);
    const int64_t dt = text.width;
    text.proj = table.projIsLinear ? t.get(table.textProj, {e, dt}).t().contiguous() : t.get(table.textProj, {dt, e});
    text.endToken = text.tokenEmbedding.size(0) - 1;
    return text;
}

// The image tower's embedding, blocks and final norm (CLIP layouts have ln_pre and one class token).
void readClipVision(const Tensors& t, const LayoutTable& table, VisionTower& v) {
    readPatchEmbed(t, table, v);
    readClsAndPositions(t, table, v);
    v.posPrefix = 1;
    v.imageSize = gridFromPositions(v.pos.size(0), 1, t.where()) * v.patchSize;
    readNorm(t, table.lnPre, v.width, v.lnPreW, v.lnPreB);
    v.encoder = readEncoder(t, table, table.visionBlocks, v.width, "image");
    readNorm(t, table.norm, v.width, v.normW, v.normB);
}

double logitScaleOf(const Tensors& t, const LayoutTable& table) {
    return t.has(table.logitScale) ? std::exp(t.get(table.logitScale).item<double>()) : 100.0;
}

Activation activationFromName(const nlohmann::json& j, Activation fallback) {
    const auto& act = sub(j, "hidden_act");
    if (!act.is_string()) return fallback;
    const std::string s = act.get<std::string>();
    if (s == "quick_gelu") return Activation::QuickGelu;
    if (s == "gelu") return Activation::Gelu;
    throw ModelError("config", "unsupported hidden_act '" + s + "'");
}

}  // namespace

Model buildOpenAiClip(const Tensors& t, const nlohmann::json& config) {
    const LayoutTable& table = layoutTable(Layout::OpenAi);
    Model model;
    model.info.family = "clip";
    model.info.layout = table.name;
    const auto& cfg = sub(config, "model_cfg").is_object() ? sub(config, "model_cfg") : config;
    const auto& vcfg = sub(cfg, "vision_cfg");
    const auto& tcfg = sub(cfg, "text_cfg");
    if (t.has("visual.trunk.patch_embed.proj.weight") || t.has("visual.attnpool.c_proj.weight") ||
        t.has("visual.layer1.0.conv1.weight"))
        throw ModelError(t.where(), "unsupported CLIP image tower (ResNet or timm trunk); only ViT towers are supported");
    VisionTower& v = model.vision;
    readClipVision(t, table, v);
    const bool quick = sub(cfg, "quick_gelu").is_boolean() ? sub(cfg, "quick_gelu").get<bool>() : true;
    v.encoder.activation = quick ? Activation::QuickGelu : Activation::Gelu;
    v.encoder.heads = headsFor(v.width, 0, intOr(vcfg, "head_width", 64), t.where(), "image");
    v.encoder.eps = 1e-5;
    v.normEps = 1e-5;
    const int64_t e = t.dim(table.proj, 1);
    v.proj = t.get(table.proj, {v.width, e});

    TextTower text = readTextTower(t, table, e);
    text.encoder.activation = v.encoder.activation;
    text.encoder.heads = headsFor(text.width, intOr(tcfg, "heads", 0), 64, t.where(), "text");
    text.encoder.eps = 1e-5;
    model.text = std::move(text);
    model.logitScale = logitScaleOf(t, table);
    model.preprocess.imageSize = v.imageSize;
    model.preprocess.resizeShortest = v.imageSize;
    readMeanStd(sub(config, "preprocess_cfg"), "mean", "std", model.preprocess);
    return model;
}

Model buildHfClip(const Tensors& t, const nlohmann::json& config, const nlohmann::json& prep) {
    const LayoutTable& table = layoutTable(Layout::HfClip);
    Model model;
    model.info.family = "clip";
    model.info.layout = table.name;
    const auto& vcfg = sub(config, "vision_config");
    const auto& tcfg = sub(config, "text_config");
    VisionTower& v = model.vision;
    readClipVision(t, table, v);
    v.encoder.activation = activationFromName(vcfg, Activation::QuickGelu);
    v.encoder.heads = headsFor(v.width, intOr(vcfg, "num_attention_heads", 0), 64, t.where(), "image");
    v.encoder.eps = numberOr(vcfg, "layer_norm_eps", 1e-5);
    v.normEps = v.encoder.eps;
    const int64_t e = t.dim(table.proj, 0);
    v.proj = t.get(table.proj, {e, v.width}).t().contiguous();

    TextTower text = readTextTower(t, table, e);
    text.encoder.activation = activationFromName(tcfg, Activation::QuickGelu);
    text.encoder.heads = headsFor(text.width, intOr(tcfg, "num_attention_heads", 0), 64, t.where(), "text");
    text.encoder.eps = numberOr(tcfg, "layer_norm_eps", 1e-5);
    text.lnEps = text.encoder.eps;
    text.endToken = intOr(tcfg, "eos_token_id", static_cast<int>(text.tokenEmbedding.size(0) - 1));
    if (text.endToken == 2) text.endToken = text.tokenEmbedding.size(0) - 1;  // legacy configs: the end token is the largest id
    model.text = std::move(text);
    model.logitScale = logitScaleOf(t, table);
    model.preprocess.imageSize = intOr(sub(prep, "crop_size"), "height", v.imageSize);
    model.preprocess.resizeShortest = intOr(sub(prep, "size"), "shortest_edge", model.preprocess.imageSize);
    readMeanStd(prep, "image_mean", "image_std", model.preprocess);
    return model;
}

}  // namespace vitscope::loader
