#include "model/loader.h"

#include "error.h"
#include "io/checkpoint.h"
#include "io/file_util.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

std::string shapeText(at::IntArrayRef shape) {
    std::ostringstream s;
    s << "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << "]";
    return s.str();
}

// Checked access to a state dict; every problem names the file and the tensor.
class Tensors {
public:
    Tensors(const StateDict& sd, std::string where) : m_sd(sd), m_where(std::move(where)) {}

    bool has(const std::string& name) const { return m_sd.count(name) != 0; }
    at::Tensor get(const std::string& name) const {
        auto it = m_sd.find(name);
        if (it == m_sd.end()) throw ModelError(m_where, "missing tensor '" + name + "'");
        if (!at::isFloatingType(it->second.scalar_type()))
            throw ModelError(m_where, "tensor '" + name + "' is not floating point");
        return it->second;
    }
    at::Tensor get(const std::string& name, std::vector<int64_t> shape) const {
        at::Tensor t = get(name);
        if (t.sizes().vec() != shape)
            throw ModelError(m_where, "tensor '" + name + "' has shape " + shapeText(t.sizes()) + ", expected " +
                                          shapeText(shape));
        return t;
    }
    at::Tensor opt(const std::string& name, std::vector<int64_t> shape) const {
        return has(name) ? get(name, std::move(shape)) : at::Tensor();
    }
    int countIndexed(const std::string& prefix, const std::string& suffix) const {
        int n = 0;
        while (has(prefix + std::to_string(n) + suffix)) ++n;
        return n;
    }
    int64_t dim(const std::string& name, int d) const {
        at::Tensor t = get(name);
        if (t.dim() <= d) throw ModelError(m_where, "tensor '" + name + "' has shape " + shapeText(t.sizes()));
        return t.size(d);
    }
    const std::string& where() const { return m_where; }

private:
    const StateDict& m_sd;
    std::string m_where;
};

int headsFor(int width, int configured, int headWidth, const std::string& where, const char* tower) {
    if (configured > 0) {
        if (width % configured != 0)
            throw ModelError(where, std::string(tower) + " width " + std::to_string(width) + " is not divisible by " +
                                        std::to_string(configured) + " heads");
        return configured;
    }
    if (headWidth <= 0) headWidth = 64;
    if (width % headWidth != 0)
        throw ModelError(where, std::string(tower) + " width " + std::to_string(width) + " is not a multiple of head dim " +
                                    std::to_string(headWidth) + "; give num_heads in a config file");
    return width / headWidth;
}

int gridFromPositions(int64_t positions, int prefix, const std::string& where) {
    const int64_t patches = positions - prefix;
    const auto g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0)))));
    if (patches <= 0 || g * g != patches)
        throw ModelError(where, "position embedding has " + std::to_string(positions) +
                                    " rows, not a class token plus a square patch grid");
    return static_cast<int>(g);
}

// Reads one pre-norm block given the names of its tensors.
struct BlockNames {
    std::string ln1, ln2, fc1, fc2, out;
    std::string qkvW, qkvB;  // fused; empty when q/k/v are separate
    std::string q, k, v;     // separate projections (Hugging Face)
    std::string ls1, ls2;    // LayerScale (may be absent)
};

Block readBlock(const Tensors& t, const BlockNames& n, int64_t d) {
    Block b;
    b.ln1W = t.get(n.ln1 + ".weight", {d});
    b.ln1B = t.get(n.ln1 + ".bias", {d});
    if (!n.qkvW.empty()) {
        b.qkvW = t.get(n.qkvW, {3 * d, d});
        b.qkvB = t.has(n.qkvB) ? t.get(n.qkvB, {3 * d}) : at::zeros({3 * d});
    } else {
        b.qkvW = at::cat({t.get(n.q + ".weight", {d, d}), t.get(n.k + ".weight", {d, d}), t.get(n.v + ".weight", {d, d})});
        auto bias = [&](const std::string& p) { return t.has(p + ".bias") ? t.get(p + ".bias", {d}) : at::zeros({d}); };
        b.qkvB = at::cat({bias(n.q), bias(n.k), bias(n.v)});
    }
    b.outW = t.get(n.out + ".weight", {d, d});
    b.outB = t.has(n.out + ".bias") ? t.get(n.out + ".bias", {d}) : at::zeros({d});
    b.ln2W = t.get(n.ln2 + ".weight", {d});
    b.ln2B = t.get(n.ln2 + ".bias", {d});
    const int64_t m = t.dim(n.fc1 + ".weight", 0);
    b.fc1W = t.get(n.fc1 + ".weight", {m, d});
    b.fc1B = t.get(n.fc1 + ".bias", {m});
    b.fc2W = t.get(n.fc2 + ".weight", {d, m});
    b.fc2B = t.get(n.fc2 + ".bias", {d});
    if (!n.ls1.empty() && t.has(n.ls1)) b.ls1 = t.get(n.ls1, {d});
    if (!n.ls2.empty() && t.has(n.ls2)) b.ls2 = t.get(n.ls2, {d});
    return b;
}

Encoder readEncoder(const Tensors& t, int layers, int64_t d, const std::function<BlockNames(int)>& names) {
    Encoder enc;
    for (int i = 0; i < layers; ++i) enc.blocks.push_back(readBlock(t, names(i), d));
    return enc;
}

const nlohmann::json& sub(const nlohmann::json& j, const char* key) {
    static const nlohmann::json kNull;
    if (j.is_object()) {
        auto it = j.find(key);
        if (it != j.end()) return *it;
    }
    return kNull;
}

int intOr(const nlohmann::json& j, const char* key, int fallback) {
    const auto& v = sub(j, key);
    return v.is_number_integer() ? v.get<int>() : fallback;
}

double numberOr(const nlohmann::json& j, const char* key, double fallback) {
    const auto& v = sub(j, key);
    return v.is_number() ? v.get<double>() : fallback;
}

void readMeanStd(const nlohmann::json& j, const char* meanKey, const char* stdKey, ImagePreprocess& p) {
    const auto& m = sub(j, meanKey);
    const auto& s = sub(j, stdKey);
    if (m.is_array() && m.size() == 3 && s.is_array() && s.size() == 3) {
        for (int c = 0; c < 3; ++c) {
            if (!m[c].is_number() || !s[c].is_number() || s[c].get<double>() <= 0) return;
        }
        for (int c = 0; c < 3; ++c) {
            p.mean[c] = m[c].get<float>();
            p.std[c] = s[c].get<float>();
        }
    }
}

// ---- CLIP, OpenAI / open_clip layout -------------------------------------------------------

Model buildOpenAiClip(const Tensors& t, const nlohmann::json& config) {
    Model model;
    model.info.family = "clip";
    model.info.layout = "openai";
    const auto& cfg = sub(config, "model_cfg").is_object() ? sub(config, "model_cfg") : config;
    const auto& vcfg = sub(cfg, "vision_cfg");
    const auto& tcfg = sub(cfg, "text_cfg");
    if (t.has("visual.trunk.patch_embed.proj.weight") || t.has("visual.attnpool.c_proj.weight") ||
        t.has("visual.layer1.0.conv1.weight"))
        throw ModelError(t.where(), "unsupported CLIP image tower (ResNet or timm trunk); only ViT towers are supported");
    VisionTower& v = model.vision;
    const at::Tensor conv = t.get("visual.conv1.weight");
    if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
        throw ModelError(t.where(), "tensor 'visual.conv1.weight' has shape " + shapeText(conv.sizes()) +
                                        ", expected [D, 3, p, p]");
    const int64_t d = conv.size(0);
    v.width = static_cast<int>(d);
    v.patchSize = static_cast<int>(conv.size(2));
    v.patchW = conv;
    v.cls = t.get("visual.class_embedding", {d});
    const int64_t positions = t.dim("visual.positional_embedding", 0);
    v.pos = t.get("visual.positional_embedding", {positions, d});
    v.posPrefix = 1;
    v.imageSize = gridFromPositions(positions, 1, t.where()) * v.patchSize;
    v.lnPreW = t.get("visual.ln_pre.weight", {d});
    v.lnPreB = t.get("visual.ln_pre.bias", {d});
    const int layers = t.countIndexed("visual.transformer.resblocks.", ".ln_1.weight");
    if (layers == 0) throw ModelError(t.where(), "no image transformer blocks ('visual.transformer.resblocks.N')");
    auto names = [](const std::string& prefix) {
        return [prefix](int i) {
            const std::string p = prefix + std::to_string(i) + ".";
            BlockNames n;
            n.ln1 = p + "ln_1";
            n.ln2 = p + "ln_2";
            n.qkvW = p + "attn.in_proj_weight";
            n.qkvB = p + "attn.in_proj_bias";
            n.out = p + "attn.out_proj";
            n.fc1 = p + "mlp.c_fc";
            n.fc2 = p + "mlp.c_proj";
            n.ls1 = p + "ls_1.gamma";
            n.ls2 = p + "ls_2.gamma";
            return n;
        };
    };
    v.encoder = readEncoder(t, layers, d, names("visual.transformer.resblocks."));
    const bool quick = sub(cfg, "quick_gelu").is_boolean() ? sub(cfg, "quick_gelu").get<bool>() : true;
    v.encoder.activation = quick ? Activation::QuickGelu : Activation::Gelu;
    v.encoder.heads = headsFor(v.width, 0, intOr(vcfg, "head_width", 64), t.where(), "image");
    v.encoder.eps = 1e-5;
    v.normEps = 1e-5;
    v.normW = t.get("visual.ln_post.weight", {d});
    v.normB = t.get("visual.ln_post.bias", {d});
    const int64_t e = t.dim("visual.proj", 1);
    v.proj = t.get("visual.proj", {d, e});

    TextTower text;
    const at::Tensor tok = t.get("token_embedding.weight");
    if (tok.dim() != 2) throw ModelError(t.where(), "tensor 'token_embedding.weight' is not 2-D");
    const int64_t dt = tok.size(1);
    text.width = static_cast<int>(dt);
    text.tokenEmbedding = tok;
    text.contextLength = static_cast<int>(t.dim("positional_embedding", 0));
    text.pos = t.get("positional_embedding", {text.contextLength, dt});
    const int textLayers = t.countIndexed("transformer.resblocks.", ".ln_1.weight");
    if (textLayers == 0) throw ModelError(t.where(), "no text transformer blocks ('transformer.resblocks.N')");
    text.encoder = readEncoder(t, textLayers, dt, names("transformer.resblocks."));
    text.encoder.activation = v.encoder.activation;
    text.encoder.heads = headsFor(text.width, intOr(tcfg, "heads", 0), 64, t.where(), "text");
    text.encoder.eps = 1e-5;
    text.lnFinalW = t.get("ln_final.weight", {dt});
    text.lnFinalB = t.get("ln_final.bias", {dt});
    text.proj = t.get("text_projection", {dt, e});
    text.endToken = tok.size(0) - 1;
    model.text = std::move(text);
    model.logitScale = t.has("logit_scale") ? std::exp(t.get("logit_scale").item<double>()) : 100.0;
    model.preprocess.imageSize = v.imageSize;
    model.preprocess.resizeShortest = v.imageSize;
    readMeanStd(sub(config, "preprocess_cfg"), "mean", "std", model.preprocess);
    return model;
}

// ---- CLIP, Hugging Face layout -------------------------------------------------------------

Activation activationFromName(const nlohmann::json& j, Activation fallback) {
    const auto& act = sub(j, "hidden_act");
    if (!act.is_string()) return fallback;
    const std::string s = act.get<std::string>();
    if (s == "quick_gelu") return Activation::QuickGelu;
    if (s == "gelu") return Activation::Gelu;
    throw ModelError("config", "unsupported hidden_act '" + s + "'");
}

Model buildHfClip(const Tensors& t, const nlohmann::json& config, const nlohmann::json& prep) {
    Model model;
    model.info.family = "clip";
    model.info.layout = "hf";
    const auto& vcfg = sub(config, "vision_config");
    const auto& tcfg = sub(config, "text_config");
    VisionTower& v = model.vision;
    const std::string ve = "vision_model.embeddings.";
    const at::Tensor conv = t.get(ve + "patch_embedding.weight");
    if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
        throw ModelError(t.where(), "tensor '" + ve + "patch_embedding.weight' has shape " + shapeText(conv.sizes()));
    const int64_t d = conv.size(0);
    v.width = static_cast<int>(d);
    v.patchSize = static_cast<int>(conv.size(2));
    v.patchW = conv;
    v.cls = t.get(ve + "class_embedding", {d});
    const int64_t positions = t.dim(ve + "position_embedding.weight", 0);
    v.pos = t.get(ve + "position_embedding.weight", {positions, d});
    v.imageSize = gridFromPositions(positions, 1, t.where()) * v.patchSize;
    v.lnPreW = t.get("vision_model.pre_layrnorm.weight", {d});
    v.lnPreB = t.get("vision_model.pre_layrnorm.bias", {d});
    auto names = [](const std::string& prefix) {
        return [prefix](int i) {
            const std::string p = prefix + std::to_string(i) + ".";
            BlockNames n;
            n.ln1 = p + "layer_norm1";
            n.ln2 = p + "layer_norm2";
            n.q = p + "self_attn.q_proj";
            n.k = p + "self_attn.k_proj";
            n.v = p + "self_attn.v_proj";
            n.out = p + "self_attn.out_proj";
            n.fc1 = p + "mlp.fc1";
            n.fc2 = p + "mlp.fc2";
            return n;
        };
    };
    const int layers = t.countIndexed("vision_model.encoder.layers.", ".layer_norm1.weight");
    if (layers == 0) throw ModelError(t.where(), "no image transformer blocks ('vision_model.encoder.layers.N')");
    v.encoder = readEncoder(t, layers, d, names("vision_model.encoder.layers."));
    v.encoder.activation = activationFromName(vcfg, Activation::QuickGelu);
    v.encoder.heads = headsFor(v.width, intOr(vcfg, "num_attention_heads", 0), 64, t.where(), "image");
    v.encoder.eps = numberOr(vcfg, "layer_norm_eps", 1e-5);
    v.normEps = v.encoder.eps;
    v.normW = t.get("vision_model.post_layernorm.weight", {d});
    v.normB = t.get("vision_model.post_layernorm.bias", {d});
    const int64_t e = t.dim("visual_projection.weight", 0);
    v.proj = t.get("visual_projection.weight", {e, d}).t().contiguous();

    TextTower text;
    const std::string te = "text_model.embeddings.";
    const at::Tensor tok = t.get(te + "token_embedding.weight");
    if (tok.dim() != 2) throw ModelError(t.where(), "tensor '" + te + "token_embedding.weight' is not 2-D");
    const int64_t dt = tok.size(1);
    text.width = static_cast<int>(dt);
    text.tokenEmbedding = tok;
    text.contextLength = static_cast<int>(t.dim(te + "position_embedding.weight", 0));
    text.pos = t.get(te + "position_embedding.weight", {text.contextLength, dt});
    const int textLayers = t.countIndexed("text_model.encoder.layers.", ".layer_norm1.weight");
    if (textLayers == 0) throw ModelError(t.where(), "no text transformer blocks ('text_model.encoder.layers.N')");
    text.encoder = readEncoder(t, textLayers, dt, names("text_model.encoder.layers."));
    text.encoder.activation = activationFromName(tcfg, Activation::QuickGelu);
    text.encoder.heads = headsFor(text.width, intOr(tcfg, "num_attention_heads", 0), 64, t.where(), "text");
    text.encoder.eps = numberOr(tcfg, "layer_norm_eps", 1e-5);
    text.lnEps = text.encoder.eps;
    text.lnFinalW = t.get("text_model.final_layer_norm.weight", {dt});
    text.lnFinalB = t.get("text_model.final_layer_norm.bias", {dt});
    text.proj = t.get("text_projection.weight", {e, dt}).t().contiguous();
    text.endToken = intOr(tcfg, "eos_token_id", static_cast<int>(tok.size(0) - 1));
    if (text.endToken == 2) text.endToken = tok.size(0) - 1;  // legacy configs: the end token is the largest id
    model.text = std::move(text);
    model.logitScale = t.has("logit_scale") ? std::exp(t.get("logit_scale").item<double>()) : 100.0;
    model.preprocess.imageSize = intOr(sub(prep, "crop_size"), "height", v.imageSize);
    model.preprocess.resizeShortest = intOr(sub(prep, "size"), "shortest_edge", model.preprocess.imageSize);
    readMeanStd(prep, "image_mean", "image_std", model.preprocess);
    return model;
}

// ---- timm ViT (DeiT, DINO, DINOv2) ---------------------------------------------------------

// ImageNet-style evaluation preprocessing: resize the short side to size / crop_pct, crop `size`.
void setImageNetPreprocess(Model& model, const nlohmann::json& cfg, int imageSize) {
    model.preprocess.imageSize = imageSize;
    model.preprocess.mean = {0.485f, 0.456f, 0.406f};
    model.preprocess.std = {0.229f, 0.224f, 0.225f};
    const auto& pre = sub(cfg, "pretrained_cfg").is_object() ? sub(cfg, "pretrained_cfg") : cfg;
    readMeanStd(pre, "mean", "std", model.preprocess);
    const double cropPct = numberOr(pre, "crop_pct", 0.875);
    model.preprocess.resizeShortest = static_cast<int>(std::floor(imageSize / std::max(cropPct, 0.1)));
}

Model buildTimmVit(const Tensors& t, const nlohmann::json& config) {
    Model model;
    VisionTower& v = model.vision;
    const at::Tensor conv = t.get("patch_embed.proj.weight");
    if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
        throw ModelError(t.where(), "tensor 'patch_embed.proj.weight' has shape " + shapeText(conv.sizes()));
    const int64_t d = conv.size(0);
    v.width = static_cast<int>(d);
    v.patchSize = static_cast<int>(conv.size(2));
    v.patchW = conv;
    v.patchB = t.opt("patch_embed.proj.bias", {d});
    v.cls = t.get("cls_token", {1, 1, d}).reshape({d});
    if (t.has("dist_token")) v.extraPrefix = t.get("dist_token", {1, 1, d}).reshape({1, d});
    for (const char* name : {"reg_token", "register_tokens"}) {
        if (t.has(name)) {
            const int64_t r = t.dim(name, 1);
            v.registers = t.get(name, {1, r, d}).reshape({r, d});
        }
    }
    const int64_t positions = t.dim("pos_embed", 1);
    v.pos = t.get("pos_embed", {1, positions, d}).reshape({positions, d});
    // The position table covers the patches, and the class (+ distillation) token unless the
    // model was built with no_embed_class; registers never have positions here.
    const int withPrefix = 1 + v.numExtraPrefix();
    const int64_t patchesIfPrefix = positions - withPrefix;
    const auto root = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(patchesIfPrefix, 0)))));
    v.posPrefix = (patchesIfPrefix > 0 && root * root == patchesIfPrefix) ? withPrefix : 0;
    if (v.posPrefix == 0 && v.numExtraPrefix() > 0)
        throw ModelError(t.where(), "distillation token without a position embedding is not supported");
    v.imageSize = gridFromPositions(positions, v.posPrefix, t.where()) * v.patchSize;
    if (t.has("norm_pre.weight")) {
        v.lnPreW = t.get("norm_pre.weight", {d});
        v.lnPreB = t.get("norm_pre.bias", {d});
    }
    const int layers = t.countIndexed("blocks.", ".norm1.weight");
    if (layers == 0) throw ModelError(t.where(), "no transformer blocks ('blocks.N')");
    v.encoder = readEncoder(t, layers, d, [](int i) {
        const std::string p = "blocks." + std::to_string(i) + ".";
        BlockNames n;
        n.ln1 = p + "norm1";
        n.ln2 = p + "norm2";
        n.qkvW = p + "attn.qkv.weight";
        n.qkvB = p + "attn.qkv.bias";
        n.out = p + "attn.proj";
        n.fc1 = p + "mlp.fc1";
        n.fc2 = p + "mlp.fc2";
        n.ls1 = p + "ls1.gamma";
        n.ls2 = p + "ls2.gamma";
        return n;
    });
    const auto& args = sub(config, "model_args").is_object() ? sub(config, "model_args") : config;
    v.encoder.heads = headsFor(v.width, intOr(args, "num_heads", 0), 64, t.where(), "image");
    v.encoder.activation = Activation::Gelu;
    v.encoder.eps = 1e-6;
    v.normEps = 1e-6;
    if (t.has("fc_norm.weight"))
        throw ModelError(t.where(), "average-pooled timm ViTs (fc_norm) are not supported; the class token is decomposed");
    v.normW = t.get("norm.weight", {d});
    v.normB = t.get("norm.bias", {d});
    if (t.has("head.weight")) {
        const int64_t c = t.dim("head.weight", 0);
        v.headW = t.get("head.weight", {c, d});
        v.headB = t.opt("head.bias", {c});
        model.numClasses = static_cast<int>(c);
    }
    const bool dinov2 = v.encoder.blocks[0].ls1.defined() || v.numRegisters() > 0 || t.has("mask_token");
    model.info.family = dinov2 ? "dinov2" : "vit";
    model.info.layout = t.has("register_tokens") || t.has("mask_token") ? "dinov2" : "timm";
    // The input size a config states (pretrained_cfg.input_size or img_size), else the native one.
    const auto& input = sub(sub(config, "pretrained_cfg"), "input_size");
    const int cfgSize = input.is_array() && input.size() == 3 && input[2].is_number_integer() ? input[2].get<int>()
                                                                                             : intOr(config, "img_size", 0);
    setImageNetPreprocess(model, config, cfgSize > 0 && cfgSize % v.patchSize == 0 ? cfgSize : v.imageSize);
    return model;
}

// ---- torchvision ViT -----------------------------------------------------------------------

Model buildTorchvisionVit(const Tensors& t, const nlohmann::json& config) {
    Model model;
    model.info.family = "vit";
    model.info.layout = "torchvision";
    VisionTower& v = model.vision;
    const at::Tensor conv = t.get("conv_proj.weight");
    if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
        throw ModelError(t.where(), "tensor 'conv_proj.weight' has shape " + shapeText(conv.sizes()));
    const int64_t d = conv.size(0);
    v.width = static_cast<int>(d);
    v.patchSize = static_cast<int>(conv.size(2));
    v.patchW = conv;
    v.patchB = t.opt("conv_proj.bias", {d});
    v.cls = t.get("class_token", {1, 1, d}).reshape({d});
    const int64_t positions = t.dim("encoder.pos_embedding", 1);
    v.pos = t.get("encoder.pos_embedding", {1, positions, d}).reshape({positions, d});
    v.imageSize = gridFromPositions(positions, 1, t.where()) * v.patchSize;
    const std::string p0 = "encoder.layers.encoder_layer_";
    const int layers = t.countIndexed(p0, ".ln_1.weight");
    if (layers == 0) throw ModelError(t.where(), "no transformer blocks ('encoder.layers.encoder_layer_N')");
    const bool numbered = t.has(p0 + "0.mlp.0.weight");
    v.encoder = readEncoder(t, layers, d, [&](int i) {
        const std::string p = p0 + std::to_string(i) + ".";
        BlockNames n;
        n.ln1 = p + "ln_1";
        n.ln2 = p + "ln_2";
        n.qkvW = p + "self_attention.in_proj_weight";
        n.qkvB = p + "self_attention.in_proj_bias";
        n.out = p + "self_attention.out_proj";
        n.fc1 = p + (numbered ? "mlp.0" : "mlp.linear_1");
        n.fc2 = p + (numbered ? "mlp.3" : "mlp.linear_2");
        return n;
    });
    v.encoder.heads = headsFor(v.width, intOr(config, "num_heads", 0), 64, t.where(), "image");
    v.encoder.activation = Activation::Gelu;
    v.encoder.eps = 1e-6;
    v.normEps = 1e-6;
    v.normW = t.get("encoder.ln.weight", {d});
    v.normB = t.get("encoder.ln.bias", {d});
    if (t.has("heads.pre_logits.weight"))
        throw ModelError(t.where(), "torchvision ViTs with a pre-logits layer are not supported");
    if (t.has("heads.head.weight")) {
        const int64_t c = t.dim("heads.head.weight", 0);
        v.headW = t.get("heads.head.weight", {c, d});
        v.headB = t.opt("heads.head.bias", {c});
        model.numClasses = static_cast<int>(c);
    }
    setImageNetPreprocess(model, config, v.imageSize);
    return model;
}

std::string someKeys(const StateDict& sd) {
    std::string out;
    int n = 0;
    for (const auto& [name, tensor] : sd) {
        if (n++ == 4) break;
        out += (out.empty() ? "" : ", ") + name;
    }
    return out;
}

nlohmann::json readJson(const std::string& path) {
    if (path.empty()) return nlohmann::json();
    const std::string text = readFileText(path);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw FormatError(path, "not valid JSON");
    return j;
}

bool isFile(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

std::string firstExisting(const fs::path& dir, std::initializer_list<const char*> names) {
    for (const char* n : names)
        if (isFile(dir / n)) return (dir / n).string();
    return {};
}

std::string homeCache(const char* sub) {
    const char* home = std::getenv("HOME");
    return home ? (fs::path(home) / ".cache" / sub).string() : std::string();
}

fs::path hubRoot() {
    if (const char* c = std::getenv("HF_HUB_CACHE")) return c;
    if (const char* h = std::getenv("HF_HOME")) return fs::path(h) / "hub";
    return homeCache("huggingface/hub");
}

// models--ORG--NAME/snapshots/<rev>/ : the snapshot named by refs/main, else the newest.
std::string hubSnapshot(const fs::path& repoDir) {
    std::error_code ec;
    const fs::path snaps = repoDir / "snapshots";
    if (!fs::is_directory(snaps, ec)) return {};
    std::ifstream ref(repoDir / "refs" / "main");
    std::string rev;
    if (ref && std::getline(ref, rev) && fs::is_directory(snaps / rev, ec)) return (snaps / rev).string();
    fs::path best;
    fs::file_time_type bestTime{};
    for (const auto& entry : fs::directory_iterator(snaps, ec)) {
        if (!entry.is_directory()) continue;
        const auto t = fs::last_write_time(entry.path(), ec);
        if (best.empty() || t > bestTime) {
            best = entry.path();
            bestTime = t;
        }
    }
    return best.string();
}

// A shard of a sharded checkpoint: NAME-00001-of-00004.safetensors / .bin.
bool isShardName(const std::string& name) {
    const auto of = name.find("-of-");
    return of != std::string::npos && of >= 5 && std::isdigit(static_cast<unsigned char>(name[of - 1])) &&
           of + 4 < name.size() && std::isdigit(static_cast<unsigned char>(name[of + 4]));
}

std::string findWeightsIn(const fs::path& dir) {
    std::string w = firstExisting(dir, {"open_clip_model.safetensors", "model.safetensors", "model.safetensors.index.json",
                                        "open_clip_pytorch_model.bin", "pytorch_model.bin", "pytorch_model.bin.index.json",
                                        "model.pth", "model.pt"});
    if (!w.empty()) return w;
    std::error_code ec;
    std::vector<std::string> found, shards;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const std::string ext = entry.path().extension().string();
        if (!entry.is_regular_file()) continue;
        if (name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0) found.push_back(entry.path().string());
        else if (ext == ".safetensors" || ext == ".pt" || ext == ".pth" || ext == ".bin")
            (isShardName(name) ? shards : found).push_back(entry.path().string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty() && !shards.empty())
        throw IoError(dir.string(), "holds checkpoint shards (" + fs::path(shards.front()).filename().string() +
                                        ", ...) but no index file (model.safetensors.index.json) naming them");
    return found.empty() ? std::string() : found.front();
}

ModelFiles filesBeside(const std::string& weights) {
    ModelFiles files;
    files.weights = weights;
    const fs::path dir = fs::path(weights).parent_path().empty() ? fs::path(".") : fs::path(weights).parent_path();
    files.config = firstExisting(dir, {"open_clip_config.json", "config.json", "timm_config.json"});
    files.preprocessorConfig = firstExisting(dir, {"preprocessor_config.json"});
    files.tokenizer = firstExisting(dir, {"bpe_simple_vocab_16e6.txt.gz", "vocab.txt"});
    if (files.tokenizer.empty() && isFile(dir / "vocab.json") && isFile(dir / "merges.txt")) files.tokenizer = dir.string();
    if (files.tokenizer.empty()) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
            const std::string name = entry.path().filename().string();
            if (entry.is_regular_file() && name.size() > 7 && name.substr(name.size() - 7) == ".txt.gz")
                files.tokenizer = entry.path().string();
        }
    }
    return files;
}

}  // namespace

ModelFiles resolveModelFiles(const std::string& spec) {
    std::error_code ec;
    fs::path p(spec);
    if (isFile(p)) return filesBeside(spec);
    if (fs::is_directory(p, ec)) {
        const std::string snap = hubSnapshot(p);
        const fs::path dir = snap.empty() ? p : fs::path(snap);
        const std::string w = findWeightsIn(dir);
        if (w.empty()) throw IoError(spec, "directory holds no checkpoint (.safetensors, .bin, .pth or .pt)");
        return filesBeside(w);
    }
    if (!fs::exists(p, ec)) {
        // ORG/NAME in the Hugging Face hub cache.
        const auto slash = spec.find('/');
        if (slash != std::string::npos && spec.find('/', slash + 1) == std::string::npos) {
            const fs::path repo = hubRoot() / ("models--" + spec.substr(0, slash) + "--" + spec.substr(slash + 1));
            const std::string snap = hubSnapshot(repo);
            if (!snap.empty()) return resolveModelFiles(snap);
        }
        // OpenAI names in ~/.cache/clip ("ViT-B/32" is stored as ViT-B-32.pt).
        std::string name = spec;
        std::replace(name.begin(), name.end(), '/', '-');
        for (const std::string& candidate : {name, name + ".pt"}) {
            const fs::path c = fs::path(homeCache("clip")) / candidate;
            if (!homeCache("clip").empty() && isFile(c)) return filesBeside(c.string());
        }
    }
    throw IoError(spec, "no such model file or directory (also looked in the Hugging Face hub cache and ~/.cache/clip)");
}

std::vector<std::string> discoverModels() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(hubRoot(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("models--", 0) == 0 && !hubSnapshot(entry.path()).empty()) {
            std::string id = name.substr(8);
            const auto sep = id.find("--");
            if (sep != std::string::npos) id = id.substr(0, sep) + "/" + id.substr(sep + 2);
            out.push_back(id);
        }
    }
    const std::string clipDir = homeCache("clip");
    for (const auto& entry : fs::directory_iterator(clipDir, ec)) {
        if (entry.is_regular_file() && entry.path().extension() == ".pt") out.push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

Model buildModel(const StateDict& tensors, const nlohmann::json& config, const std::string& where,
                 const nlohmann::json& preprocessorConfig) {
    const Tensors t(tensors, where);
    Model model;
    if (t.has("visual.conv1.weight") || t.has("visual.class_embedding") || t.has("visual.trunk.patch_embed.proj.weight"))
        model = buildOpenAiClip(t, config);
    else if (t.has("vision_model.embeddings.patch_embedding.weight"))
        model = buildHfClip(t, config, preprocessorConfig);
    else if (t.has("patch_embed.proj.weight") && t.has("cls_token"))
        model = buildTimmVit(t, config);
    else if (t.has("conv_proj.weight") && t.has("class_token"))
        model = buildTorchvisionVit(t, config);
    else if (t.has("features.0.0.weight") || t.has("layers.0.blocks.0.attn.relative_position_bias_table"))
        throw ModelError(where, "Swin / hierarchical transformers are not supported yet");
    else
        throw ModelError(where, "unknown architecture (tensors such as: " + someKeys(tensors) + ")");
    model.info.weightsPath = where;
    return model;
}

Model loadModel(const std::string& spec, const CheckpointOptions& options) {
    const ModelFiles files = resolveModelFiles(spec);
    Checkpoint ckpt = loadCheckpoint(files.weights, options);
    const nlohmann::json config = readJson(files.config);
    const nlohmann::json prep = readJson(files.preprocessorConfig);
    Model model = buildModel(ckpt.tensors, config, files.weights, prep);
    if (model.info.layout == "openai" && ckpt.format != CheckpointFormat::TorchScript) model.info.layout = "open_clip";
    model.info.format = checkpointFormatName(ckpt.format);
    model.info.shards = ckpt.shards;
    model.info.wrapperKey = ckpt.wrapperKey;
    model.info.wrapperCandidates = ckpt.wrapperCandidates;
    model.info.strippedPrefix = ckpt.strippedPrefix;
    model.info.ignoredTensors = ckpt.ignored;
    model.info.storedDTypes = ckpt.storedDTypes;
    model.tokenizerPath = files.tokenizer;
    spdlog::info("loaded {} ({} layout, {}{}{}): {} layers, {} heads, width {}", files.weights, model.info.layout,
                 model.info.format, ckpt.wrapperKey.empty() ? "" : ", key ", ckpt.wrapperKey, model.vision.layers(),
                 model.vision.heads(), model.vision.width);
    return model;
}

std::vector<at::Tensor*> modelTensorSlots(Model& model) {
    std::vector<at::Tensor*> out;
    auto addEncoder = [&](Encoder& e) {
        for (Block& b : e.blocks)
            for (at::Tensor* t : {&b.ln1W, &b.ln1B, &b.qkvW, &b.qkvB, &b.outW, &b.outB, &b.ln2W, &b.ln2B, &b.fc1W, &b.fc1B,
                                  &b.fc2W, &b.fc2B, &b.ls1, &b.ls2})
                out.push_back(t);
    };
    VisionTower& v = model.vision;
    for (at::Tensor* t : {&v.patchW, &v.patchB, &v.cls, &v.extraPrefix, &v.registers, &v.pos, &v.lnPreW, &v.lnPreB, &v.normW,
                          &v.normB, &v.proj, &v.headW, &v.headB})
        out.push_back(t);
    addEncoder(v.encoder);
    if (model.text) {
        TextTower& tt = *model.text;
        for (at::Tensor* t : {&tt.tokenEmbedding, &tt.pos, &tt.lnFinalW, &tt.lnFinalB, &tt.proj}) out.push_back(t);
        addEncoder(tt.encoder);
    }
    return out;
}

void moveModel(Model& model, const at::Device& device) {
    for (at::Tensor* t : modelTensorSlots(model))
        if (t->defined()) *t = t->to(device);
}

}  // namespace vitscope
