// Swin transformers: timm's SwinTransformer (hub layout: model.safetensors + config.json) and
// torchvision's swin_t / swin_s / swin_b, read through the layout tables' SwinNames.
#include "error.h"
#include "model/loader_common.h"

#include <algorithm>
#include <cmath>

namespace vitscope::loader {

namespace {

// Heads of a block from its relative-position table [(2w-1)^2, H]; sets / checks the window.
int readTable(const Tensors& t, const std::string& name, SwinTower& swin, at::Tensor& table) {
    const at::Tensor tab = t.get(name);
    if (tab.dim() != 2) throw ModelError(t.where(), "tensor '" + name + "' has shape " + shapeText(tab.sizes()) + ", expected [(2w-1)^2, H]");
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tab.size(0)))));
    if (side * side != tab.size(0) || side % 2 == 0)
        throw ModelError(t.where(), "tensor '" + name + "' has " + std::to_string(tab.size(0)) + " rows, not (2w-1)^2 for a window w");
    const int window = static_cast<int>((side + 1) / 2);
    if (swin.stages.empty() && swin.relBias.empty()) swin.window = window;
    if (window != swin.window)
        throw ModelError(t.where(), "tensor '" + name + "' is for window " + std::to_string(window) + ", the model's first block for " +
                                        std::to_string(swin.window) + " (per-stage windows are not supported)");
    table = tab.contiguous();
    return static_cast<int>(tab.size(1));
}

}  // namespace

Model buildSwin(const Tensors& t, const nlohmann::json& config, Layout layout) {
    const LayoutTable& table = layoutTable(layout);
    const SwinNames& sn = table.swin;
    Model model;
    model.info.family = "swin";
    model.info.layout = table.name;
    VisionTower& v = model.vision;
    SwinTower& swin = v.swin;
    // Swin V2: cosine attention with a learned scale and a continuous (MLP) position bias.
    for (const auto& [name, tensor] : t.all()) {
        if (name.find("cpb_mlp") != std::string::npos || name.find("attn.logit_scale") != std::string::npos)
            throw ModelError(t.where(), "Swin V2 (cosine attention, continuous position bias: '" + name + "') is not supported");
        if (name == "absolute_pos_embed" || name.find(".absolute_pos_embed") != std::string::npos)
            throw ModelError(t.where(), "Swin with absolute position embeddings ('" + name + "') is not supported");
    }
    readPatchEmbed(t, table, v);
    int64_t width = v.width;
    readNorm(t, sn.patchNorm, width, swin.patchNormW, swin.patchNormB);
    // timm < 0.9 kept the merging at the end of the previous stage: layers.0.downsample exists.
    const bool mergeAtEnd = layout == Layout::TimmSwin && t.has(indexed(sn.merge, 0) + "." + sn.mergeNorm + ".weight");
    for (int s = 0;; ++s) {
        const std::string stage = indexed(sn.stage, s * sn.stageStep + sn.stageStart);
        const std::string blocks = stage + "{i}.";
        if (!t.has(blockNames(table, blocks, 0).ln1 + ".weight")) break;
        SwinStage st;
        st.firstLayer = v.layers();
        if (s > 0) {
            const std::string m = indexed(sn.merge, mergeAtEnd ? s - 1 : s * sn.mergeStep + sn.mergeStart);
            readNorm(t, m + "." + sn.mergeNorm, 4 * width, st.mergeNormW, st.mergeNormB);
            const std::string red = m + "." + sn.reduction + ".weight";
            const int64_t next = t.dim(red, 0);
            st.mergeW = t.get(red, {next, 4 * width});
            if (t.has(m + "." + sn.reduction + ".bias"))
                throw ModelError(t.where(), "patch merging '" + m + "' has a bias (not a Swin checkpoint?)");
            width = next;
        }
        st.width = static_cast<int>(width);
        for (int i = 0; t.has(blockNames(table, blocks, i).ln1 + ".weight"); ++i) {
            const BlockNames n = blockNames(table, blocks, i);
            at::Tensor rel;
            const int heads = readTable(t, indexed(blocks, i) + sn.relBias, swin, rel);
            if (i == 0) st.heads = heads;
            if (heads != st.heads || width % heads != 0)
                throw ModelError(t.where(), "block '" + indexed(blocks, i) + "' has " + std::to_string(heads) + " heads for width " +
                                                std::to_string(width) + " (stage " + std::to_string(s) + " has " +
                                                std::to_string(st.heads) + ")");
            v.encoder.blocks.push_back(readBlock(t, n, width));
            swin.relBias.push_back(rel);
            ++st.depth;
        }
        swin.stages.push_back(st);
    }
    if (swin.stages.empty())
        throw ModelError(t.where(), "no Swin blocks ('" + indexed(sn.stage, sn.stageStart) + "0.norm1.weight')");
    v.width = static_cast<int>(width);
    for (const SwinStage& st : swin.stages) v.encoder.heads = std::max(v.encoder.heads, st.heads);
    v.encoder.activation = Activation::Gelu;
    v.encoder.eps = 1e-5;
    swin.eps = 1e-5;
    readNorm(t, table.norm, width, v.normW, v.normB);
    v.normEps = 1e-5;
    if (t.has(table.head + ".weight")) {
        const int64_t c = t.dim(table.head + ".weight", 0);
        v.headW = t.get(table.head + ".weight", {c, width});
        v.headB = t.opt(table.head + ".bias", {c});
        model.numClasses = static_cast<int>(c);
    } else if (layout == Layout::TimmSwin && t.has("head.weight")) {  // timm < 0.9
        const int64_t c = t.dim("head.weight", 0);
        v.headW = t.get("head.weight", {c, width});
        v.headB = t.opt("head.bias", {c});
        model.numClasses = static_cast<int>(c);
    }
    // Input size: the config's (pretrained_cfg.input_size, model_args.img_size), else 224.
    const auto& input = sub(sub(config, "pretrained_cfg"), "input_size");
    int size = input.is_array() && input.size() == 3 && input[2].is_number_integer() ? input[2].get<int>() : 0;
    if (size <= 0) size = intOr(sub(config, "model_args"), "img_size", intOr(config, "img_size", 0));
    if (size <= 0) {
        // No config: 224 (the released Swins), or the nearest size this one's windows tile.
        const int unit = v.patchSize * (1 << (swin.stages.size() - 1)) * swin.window;
        size = std::max(unit, static_cast<int>(std::lround(224.0 / unit)) * unit);
    }
    v.imageSize = size;
    setImageNetPreprocess(model, config, size);
    if (!sub(sub(config, "pretrained_cfg"), "crop_pct").is_number() && !sub(config, "crop_pct").is_number()) {
        // torchvision's released swin_t / swin_s / swin_b evaluate at 224 after a bicubic resize
        // to 232 / 246 / 238; otherwise timm's Swin crop ratio, 0.9.
        model.preprocess.resizeShortest = static_cast<int>(std::floor(size / 0.9));
        std::vector<int> depths;
        for (const SwinStage& st : swin.stages) depths.push_back(st.depth);
        const int c0 = swin.stages[0].width;
        if (layout == Layout::TorchvisionSwin && size == 224 && depths.size() == 4 && depths[0] == 2 && depths[1] == 2 &&
            depths[3] == 2) {
            if (c0 == 96 && depths[2] == 6) model.preprocess.resizeShortest = 232;
            if (c0 == 96 && depths[2] == 18) model.preprocess.resizeShortest = 246;
            if (c0 == 128 && depths[2] == 18) model.preprocess.resizeShortest = 238;
        }
    }
    return model;
}

}  // namespace vitscope::loader
