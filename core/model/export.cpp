#include "model/export.h"

#include "error.h"
#include "io/file_util.h"

#include <cmath>
#include <filesystem>

namespace vitscope {

namespace {

void addBlock(std::vector<std::pair<std::string, at::Tensor*>>& out, const std::string& p, Block& b) {
    out.push_back({p + "ln_1.weight", &b.ln1W});
    out.push_back({p + "ln_1.bias", &b.ln1B});
    out.push_back({p + "attn.in_proj_weight", &b.qkvW});
    out.push_back({p + "attn.in_proj_bias", &b.qkvB});
    out.push_back({p + "attn.out_proj.weight", &b.outW});
    out.push_back({p + "attn.out_proj.bias", &b.outB});
    out.push_back({p + "ln_2.weight", &b.ln2W});
    out.push_back({p + "ln_2.bias", &b.ln2B});
    out.push_back({p + "mlp.c_fc.weight", &b.fc1W});
    out.push_back({p + "mlp.c_fc.bias", &b.fc1B});
    out.push_back({p + "mlp.c_proj.weight", &b.fc2W});
    out.push_back({p + "mlp.c_proj.bias", &b.fc2B});
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor*>> namedModelTensors(Model& model) {
    if (!model.text) throw InputError(model.info.weightsPath, "only CLIP models can be written in the open_clip layout");
    std::vector<std::pair<std::string, at::Tensor*>> out;
    VisionTower& v = model.vision;
    if (v.patchB.defined() || v.extraPrefix.defined() || v.registers.defined() || v.headW.defined() || v.posPrefix != 1)
        throw InputError(model.info.weightsPath, "model has parts the open_clip layout cannot store");
    out.push_back({"visual.conv1.weight", &v.patchW});
    out.push_back({"visual.class_embedding", &v.cls});
    out.push_back({"visual.positional_embedding", &v.pos});
    out.push_back({"visual.ln_pre.weight", &v.lnPreW});
    out.push_back({"visual.ln_pre.bias", &v.lnPreB});
    for (std::size_t i = 0; i < v.encoder.blocks.size(); ++i)
        addBlock(out, "visual.transformer.resblocks." + std::to_string(i) + ".", v.encoder.blocks[i]);
    out.push_back({"visual.ln_post.weight", &v.normW});
    out.push_back({"visual.ln_post.bias", &v.normB});
    out.push_back({"visual.proj", &v.proj});
    TextTower& t = *model.text;
    out.push_back({"token_embedding.weight", &t.tokenEmbedding});
    out.push_back({"positional_embedding", &t.pos});
    for (std::size_t i = 0; i < t.encoder.blocks.size(); ++i)
        addBlock(out, "transformer.resblocks." + std::to_string(i) + ".", t.encoder.blocks[i]);
    out.push_back({"ln_final.weight", &t.lnFinalW});
    out.push_back({"ln_final.bias", &t.lnFinalB});
    out.push_back({"text_projection", &t.proj});
    return out;
}

StateDict toOpenClipStateDict(const Model& model) {
    Model copy = model;  // tensors are shared handles; only the names are collected
    StateDict sd;
    for (const auto& [name, t] : namedModelTensors(copy)) sd[name] = t->detach().to(at::kCPU).contiguous();
    sd["logit_scale"] = at::full({}, std::log(model.logitScale));
    return sd;
}

nlohmann::json openClipConfig(const Model& model) {
    const VisionTower& v = model.vision;
    const TextTower& t = *model.text;
    nlohmann::json cfg;
    cfg["model_cfg"] = {
        {"embed_dim", v.embedDim()},
        {"quick_gelu", v.encoder.activation == Activation::QuickGelu},
        {"vision_cfg",
         {{"image_size", v.imageSize}, {"layers", v.layers()}, {"width", v.width}, {"patch_size", v.patchSize},
          {"head_width", v.width / v.heads()}}},
        {"text_cfg",
         {{"context_length", t.contextLength}, {"vocab_size", t.tokenEmbedding.size(0)}, {"width", t.width},
          {"heads", t.encoder.heads}, {"layers", t.encoder.blocks.size()}}}};
    cfg["preprocess_cfg"] = {{"mean", model.preprocess.mean}, {"std", model.preprocess.std}};
    return cfg;
}

void saveOpenClipModel(const Model& model, const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    writeSafetensorsTensors((std::filesystem::path(dir) / "open_clip_model.safetensors").string(), toOpenClipStateDict(model),
                            {{"format", "pt"}});
    writeFileAtomic((std::filesystem::path(dir) / "open_clip_config.json").string(), openClipConfig(model).dump(2) + "\n");
}

}  // namespace vitscope

namespace vitscope {

StateDict toTimmStateDict(const Model& model) {
    const VisionTower& v = model.vision;
    if (model.text || v.proj.defined() || v.lnPreW.defined() || v.posPrefix != 1 + v.numExtraPrefix())
        throw InputError(model.info.weightsPath, "model has parts the timm layout cannot store");
    StateDict sd;
    auto put = [&](const std::string& name, const at::Tensor& t) {
        if (t.defined()) sd[name] = t.detach().to(at::kCPU).contiguous();
    };
    const int64_t d = v.width;
    put("patch_embed.proj.weight", v.patchW);
    put("patch_embed.proj.bias", v.patchB);
    put("cls_token", v.cls.view({1, 1, d}));
    put("pos_embed", v.pos.unsqueeze(0));
    if (v.registers.defined()) put("reg_token", v.registers.unsqueeze(0));
    for (std::size_t i = 0; i < v.encoder.blocks.size(); ++i) {
        const Block& b = v.encoder.blocks[i];
        const std::string p = "blocks." + std::to_string(i) + ".";
        put(p + "norm1.weight", b.ln1W);
        put(p + "norm1.bias", b.ln1B);
        put(p + "attn.qkv.weight", b.qkvW);
        put(p + "attn.qkv.bias", b.qkvB);
        put(p + "attn.proj.weight", b.outW);
        put(p + "attn.proj.bias", b.outB);
        put(p + "norm2.weight", b.ln2W);
        put(p + "norm2.bias", b.ln2B);
        put(p + "mlp.fc1.weight", b.fc1W);
        put(p + "mlp.fc1.bias", b.fc1B);
        put(p + "mlp.fc2.weight", b.fc2W);
        put(p + "mlp.fc2.bias", b.fc2B);
        put(p + "ls1.gamma", b.ls1);
        put(p + "ls2.gamma", b.ls2);
    }
    put("norm.weight", v.normW);
    put("norm.bias", v.normB);
    put("head.weight", v.headW);
    put("head.bias", v.headB);
    return sd;
}

void saveTimmModel(const Model& model, const std::string& dir, const nlohmann::json& extra) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    writeSafetensorsTensors((std::filesystem::path(dir) / "model.safetensors").string(), toTimmStateDict(model), {{"format", "pt"}});
    nlohmann::json cfg = {{"architecture", "vit"},
                          {"num_heads", model.vision.heads()},
                          {"img_size", model.preprocess.imageSize},
                          {"patch_size", model.vision.patchSize},
                          {"num_classes", model.numClasses},
                          {"crop_pct", 1.0},
                          {"mean", model.preprocess.mean},
                          {"std", model.preprocess.std}};
    cfg.update(extra);
    writeFileAtomic((std::filesystem::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace vitscope
