// Supervised and self-supervised plain ViTs: timm names (DeiT, DINO, DINOv2 hub, timm hub)
// and torchvision's VisionTransformer.
#include "error.h"
#include "model/loader_common.h"

#include <algorithm>
#include <cmath>

namespace vitscope::loader {

namespace {

void readClassifier(const Tensors& t, const LayoutTable& table, Model& model) {
    const std::string w = table.head + ".weight";
    if (!t.has(w)) return;
    const int64_t c = t.dim(w, 0);
    model.vision.headW = t.get(w, {c, model.vision.width});
    model.vision.headB = t.opt(table.head + ".bias", {c});
    model.numClasses = static_cast<int>(c);
}

}  // namespace

Model buildTimmVit(const Tensors& t, const nlohmann::json& config) {
    const LayoutTable& table = layoutTable(Layout::Timm);
    Model model;
    VisionTower& v = model.vision;
    readPatchEmbed(t, table, v);
    const int64_t d = v.width;
    readClsAndPositions(t, table, v);
    if (t.has("dist_token")) v.extraPrefix = t.get("dist_token", {1, 1, d}).reshape({1, d});
    for (const char* name : {"reg_token", "register_tokens"}) {
        if (t.has(name)) {
            const int64_t r = t.dim(name, 1);
            v.registers = t.get(name, {1, r, d}).reshape({r, d});
        }
    }
    // The position table covers the patches, and the class (+ distillation) token unless the
    // model was built with no_embed_class; registers never have positions here.
    const int64_t positions = v.pos.size(0);
    const int withPrefix = 1 + v.numExtraPrefix();
    const int64_t patchesIfPrefix = positions - withPrefix;
    const auto root = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(patchesIfPrefix, 0)))));
    v.posPrefix = (patchesIfPrefix > 0 && root * root == patchesIfPrefix) ? withPrefix : 0;
    if (v.posPrefix == 0 && v.numExtraPrefix() > 0)
        throw ModelError(t.where(), "distillation token without a position embedding is not supported");
    v.imageSize = gridFromPositions(positions, v.posPrefix, t.where()) * v.patchSize;
    if (t.has(table.lnPre + ".weight")) readNorm(t, table.lnPre, d, v.lnPreW, v.lnPreB);
    v.encoder = readEncoder(t, table, table.visionBlocks, d, "image");
    const auto& args = sub(config, "model_args").is_object() ? sub(config, "model_args") : config;
    v.encoder.heads = headsFor(v.width, intOr(args, "num_heads", 0), 64, t.where(), "image");
    v.encoder.activation = Activation::Gelu;
    v.encoder.eps = 1e-6;
    v.normEps = 1e-6;
    if (t.has("fc_norm.weight"))
        throw ModelError(t.where(), "average-pooled timm ViTs (fc_norm) are not supported; the class token is decomposed");
    readNorm(t, table.norm, d, v.normW, v.normB);
    readClassifier(t, table, model);
    const bool dinov2 = v.encoder.blocks[0].ls1.defined() || v.numRegisters() > 0 || t.has("mask_token");
    model.info.family = dinov2 ? "dinov2" : "vit";
    model.info.layout = t.has("register_tokens") || t.has("mask_token") ? "dinov2" : table.name;
    // The input size a config states (pretrained_cfg.input_size or img_size), else the native one.
    const auto& input = sub(sub(config, "pretrained_cfg"), "input_size");
    const int cfgSize = input.is_array() && input.size() == 3 && input[2].is_number_integer() ? input[2].get<int>()
                                                                                             : intOr(config, "img_size", 0);
    setImageNetPreprocess(model, config, cfgSize > 0 && cfgSize % v.patchSize == 0 ? cfgSize : v.imageSize);
    return model;
}

Model buildTorchvisionVit(const Tensors& t, const nlohmann::json& config) {
    const LayoutTable& table = layoutTable(Layout::Torchvision);
    Model model;
    model.info.family = "vit";
    model.info.layout = table.name;
    VisionTower& v = model.vision;
    readPatchEmbed(t, table, v);
    readClsAndPositions(t, table, v);
    v.imageSize = gridFromPositions(v.pos.size(0), 1, t.where()) * v.patchSize;
    v.encoder = readEncoder(t, table, table.visionBlocks, v.width, "image");
    v.encoder.heads = headsFor(v.width, intOr(config, "num_heads", 0), 64, t.where(), "image");
    v.encoder.activation = Activation::Gelu;
    v.encoder.eps = 1e-6;
    v.normEps = 1e-6;
    readNorm(t, table.norm, v.width, v.normW, v.normB);
    if (t.has("heads.pre_logits.weight"))
        throw ModelError(t.where(), "torchvision ViTs with a pre-logits layer are not supported");
    readClassifier(t, table, model);
    setImageNetPreprocess(model, config, v.imageSize);
    return model;
}

}  // namespace vitscope::loader
