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
