#include "model/export.h"

#include "error.h"
#include "io/file_util.h"
#include "model/layouts.h"

#include <cmath>
#include <filesystem>

namespace vitscope {

namespace {

// A fused-qkv block's tensors under the layout's names (LayerScale only where the model has it).
void addBlock(std::vector<std::pair<std::string, at::Tensor*>>& out, const BlockNames& n, Block& b) {
    out.push_back({n.ln1 + ".weight", &b.ln1W});
    out.push_back({n.ln1 + ".bias", &b.ln1B});
    out.push_back({n.qkvW, &b.qkvW});
    out.push_back({n.qkvB, &b.qkvB});
    out.push_back({n.out + ".weight", &b.outW});
    out.push_back({n.out + ".bias", &b.outB});
    out.push_back({n.ln2 + ".weight", &b.ln2W});
    out.push_back({n.ln2 + ".bias", &b.ln2B});
    out.push_back({n.fc1 + ".weight", &b.fc1W});
    out.push_back({n.fc1 + ".bias", &b.fc1B});
    out.push_back({n.fc2 + ".weight", &b.fc2W});
    out.push_back({n.fc2 + ".bias", &b.fc2B});
    if (b.ls1.defined()) out.push_back({n.ls1, &b.ls1});
    if (b.ls2.defined()) out.push_back({n.ls2, &b.ls2});
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor*>> namedModelTensors(Model& model) {
    if (!model.text) throw InputError(model.info.weightsPath, "only CLIP models can be written in the open_clip layout");
    std::vector<std::pair<std::string, at::Tensor*>> out;
    VisionTower& v = model.vision;
    if (v.patchB.defined() || v.extraPrefix.defined() || v.registers.defined() || v.headW.defined() || v.posPrefix != 1)
        throw InputError(model.info.weightsPath, "model has parts the open_clip layout cannot store");
    const LayoutTable& lt = layoutTable(Layout::OpenAi);
    out.push_back({lt.patch + ".weight", &v.patchW});
    out.push_back({lt.cls, &v.cls});
    out.push_back({lt.pos, &v.pos});
    out.push_back({lt.lnPre + ".weight", &v.lnPreW});
    out.push_back({lt.lnPre + ".bias", &v.lnPreB});
    for (std::size_t i = 0; i < v.encoder.blocks.size(); ++i)
        addBlock(out, blockNames(lt, lt.visionBlocks, static_cast<int>(i)), v.encoder.blocks[i]);
    out.push_back({lt.norm + ".weight", &v.normW});
    out.push_back({lt.norm + ".bias", &v.normB});
    out.push_back({lt.proj, &v.proj});
    TextTower& t = *model.text;
    out.push_back({lt.tokenEmbedding, &t.tokenEmbedding});
    out.push_back({lt.textPos, &t.pos});
    for (std::size_t i = 0; i < t.encoder.blocks.size(); ++i)
        addBlock(out, blockNames(lt, lt.textBlocks, static_cast<int>(i)), t.encoder.blocks[i]);
    out.push_back({lt.lnFinal + ".weight", &t.lnFinalW});
    out.push_back({lt.lnFinal + ".bias", &t.lnFinalB});
    out.push_back({lt.textProj, &t.proj});
    return out;
}

StateDict toOpenClipStateDict(const Model& model) {
    Model copy = model;  // tensors are shared handles; only the names are collected
    StateDict sd;
    for (const auto& [name, t] : namedModelTensors(copy)) sd[name] = t->detach().to(at::kCPU).contiguous();
    sd[layoutTable(Layout::OpenAi).logitScale] = at::full({}, std::log(model.logitScale));
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

namespace {

// Swin in timm's hub names (through the layout table's SwinNames).
StateDict toTimmSwinStateDict(const Model& model) {
    const VisionTower& v = model.vision;
    StateDict sd;
    auto put = [&](const std::string& name, const at::Tensor& t) {
        if (t.defined()) sd[name] = t.detach().to(at::kCPU).contiguous();
    };
    const LayoutTable& lt = layoutTable(Layout::TimmSwin);
    const SwinNames& sn = lt.swin;
    put(lt.patch + ".weight", v.patchW);
    put(lt.patch + ".bias", v.patchB);
    put(sn.patchNorm + ".weight", v.swin.patchNormW);
    put(sn.patchNorm + ".bias", v.swin.patchNormB);
    for (std::size_t s = 0; s < v.swin.stages.size(); ++s) {
        const SwinStage& st = v.swin.stages[s];
        if (s > 0) {
            const std::string m = indexed(sn.merge, static_cast<int>(s) * sn.mergeStep + sn.mergeStart) + ".";
            put(m + sn.mergeNorm + ".weight", st.mergeNormW);
            put(m + sn.mergeNorm + ".bias", st.mergeNormB);
            put(m + sn.reduction + ".weight", st.mergeW);
        }
        const std::string blocks = indexed(sn.stage, static_cast<int>(s) * sn.stageStep + sn.stageStart) + "{i}.";
        for (int i = 0; i < st.depth; ++i) {
            const auto l = static_cast<std::size_t>(st.firstLayer + i);
            Block b = v.encoder.blocks[l];  // shared tensor handles; only read
            std::vector<std::pair<std::string, at::Tensor*>> named;
            addBlock(named, blockNames(lt, blocks, i), b);
            for (const auto& [name, t] : named) put(name, *t);
            put(indexed(blocks, i) + sn.relBias, v.swin.relBias[l]);
        }
    }
    put(lt.norm + ".weight", v.normW);
    put(lt.norm + ".bias", v.normB);
    put(lt.head + ".weight", v.headW);
    put(lt.head + ".bias", v.headB);
    return sd;
}

}  // namespace

StateDict toTimmStateDict(const Model& model) {
    const VisionTower& v = model.vision;
    if (v.maxvit.defined()) throw InputError(model.info.weightsPath, "MaxViT cannot be written in the timm layout (its BatchNorms are folded)");
    if (v.hierarchical()) return toTimmSwinStateDict(model);
    if (model.text || v.proj.defined() || v.lnPreW.defined() || v.posPrefix != 1 + v.numExtraPrefix())
        throw InputError(model.info.weightsPath, "model has parts the timm layout cannot store");
    StateDict sd;
    auto put = [&](const std::string& name, const at::Tensor& t) {
        if (t.defined()) sd[name] = t.detach().to(at::kCPU).contiguous();
    };
    const LayoutTable& lt = layoutTable(Layout::Timm);
    const int64_t d = v.width;
    put(lt.patch + ".weight", v.patchW);
    put(lt.patch + ".bias", v.patchB);
    put(lt.cls, v.cls.view({1, 1, d}));
    put(lt.pos, v.pos.unsqueeze(0));
    if (v.registers.defined()) put("reg_token", v.registers.unsqueeze(0));
    for (std::size_t i = 0; i < v.encoder.blocks.size(); ++i) {
        Block b = v.encoder.blocks[i];  // shared tensor handles; only read
        std::vector<std::pair<std::string, at::Tensor*>> named;
        addBlock(named, blockNames(lt, lt.visionBlocks, static_cast<int>(i)), b);
        for (const auto& [name, t] : named) put(name, *t);
    }
    put(lt.norm + ".weight", v.normW);
    put(lt.norm + ".bias", v.normB);
    put(lt.head + ".weight", v.headW);
    put(lt.head + ".bias", v.headB);
    return sd;
}

void saveTimmModel(const Model& model, const std::string& dir, const nlohmann::json& extra) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    writeSafetensorsTensors((std::filesystem::path(dir) / "model.safetensors").string(), toTimmStateDict(model), {{"format", "pt"}});
    nlohmann::json cfg = {{"architecture", model.vision.hierarchical() ? "swin" : "vit"},
                          {"num_heads", model.vision.heads()},
                          {"img_size", model.preprocess.imageSize},
                          {"patch_size", model.vision.patchSize},
                          {"num_classes", model.numClasses},
                          {"crop_pct", 1.0},
                          {"mean", model.preprocess.mean},
                          {"std", model.preprocess.std}};
    if (model.vision.hierarchical()) {
        std::vector<int> depths, heads;
        for (const SwinStage& st : model.vision.swin.stages) {
            depths.push_back(st.depth);
            heads.push_back(st.heads);
        }
        cfg["num_heads"] = heads;
        cfg["model_args"] = {{"img_size", model.preprocess.imageSize}, {"window_size", model.vision.swin.window},
                             {"embed_dim", model.vision.swin.stages[0].width}, {"depths", depths}, {"num_heads", heads}};
    }
    cfg.update(extra);
    writeFileAtomic((std::filesystem::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace vitscope
