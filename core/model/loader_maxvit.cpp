// MaxViT: timm's MaxxVit with the TF-ported settings (maxvit_*_tf_*, hub layout) and
// torchvision's maxvit_t, read through the layout tables' MaxVitNames.
#include "error.h"
#include "model/loader_common.h"

#include <cmath>

namespace vitscope::loader {

namespace {

std::string blockPrefix(const MaxVitNames& m, int stage, int block) {
    std::string p = m.block;
    p.replace(p.find("{s}"), 3, std::to_string(stage));
    p.replace(p.find("{b}"), 3, std::to_string(block));
    return p;
}

BlockNames prefixed(const BlockNames& rel, const std::string& p) {
    BlockNames n = rel;
    for (std::string* s : {&n.ln1, &n.ln2, &n.qkvW, &n.qkvB, &n.out, &n.fc1, &n.fc2})
        if (!s->empty()) *s = p + *s;
    return n;
}

// Eval-mode BatchNorm (weight, bias, running statistics) folded to scale and shift.
Affine readBatchNorm(const Tensors& t, const std::string& p, int64_t c, double eps) {
    const at::Tensor w = t.get(p + ".weight", {c}), b = t.get(p + ".bias", {c});
    const at::Tensor mean = t.get(p + ".running_mean", {c}), var = t.get(p + ".running_var", {c});
    if ((var < 0).any().item<bool>()) throw ModelError(t.where(), "tensor '" + p + ".running_var' has negative values");
    Affine a;
    a.scale = w / at::sqrt(var + eps);
    a.shift = b - mean * a.scale;
    return a;
}

// The dense relative-position bias [H, P^2, P^2] of a unit from its table, and the partition P.
at::Tensor denseBias(const Tensors& t, const std::string& name, bool headsFirst, int* partition) {
    const at::Tensor tab = t.get(name);
    int64_t side = 0, heads = 0;
    if (headsFirst && tab.dim() == 3 && tab.size(1) == tab.size(2)) {
        side = tab.size(1);
        heads = tab.size(0);
    } else if (!headsFirst && tab.dim() == 2) {
        side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(tab.size(0)))));
        if (side * side != tab.size(0)) side = 0;
        heads = tab.size(1);
    }
    if (side < 1 || side % 2 == 0 || heads < 1)
        throw ModelError(t.where(), "tensor '" + name + "' has shape " + shapeText(tab.sizes()) +
                                        (headsFirst ? ", expected [H, 2P-1, 2P-1]" : ", expected [(2P-1)^2, H]"));
    const int p = static_cast<int>((side + 1) / 2);
    if (*partition == 0) *partition = p;
    if (p != *partition)
        throw ModelError(t.where(), "tensor '" + name + "' is for partition " + std::to_string(p) + ", the model's first unit for " +
                                        std::to_string(*partition));
    // Query (qy, qx), key (ky, kx) inside a P x P partition. timm's TF bias reads
    // table[h, ky - qy + P - 1, kx - qx + P - 1]; torchvision's (Swin's) table[(qy - ky + P - 1) *
    // (2P - 1) + qx - kx + P - 1, h].
    std::vector<int64_t> index;
    for (int q = 0; q < p * p; ++q)
        for (int k = 0; k < p * p; ++k) {
            const int qy = q / p, qx = q % p, ky = k / p, kx = k % p;
            index.push_back(headsFirst ? (ky - qy + p - 1) * side + (kx - qx + p - 1) : (qy - ky + p - 1) * side + (qx - kx + p - 1));
        }
    const at::Tensor idx = at::tensor(index, at::kLong);
    const at::Tensor flat = headsFirst ? tab.reshape({heads, side * side}) : tab.t();  // [H, (2P-1)^2]
    return flat.index_select(1, idx).view({heads, p * p, p * p}).contiguous();
}

}  // namespace

Model buildMaxVit(const Tensors& t, const nlohmann::json& config, Layout layout) {
    const LayoutTable& table = layoutTable(layout);
    const MaxVitNames& m = table.maxvit;
    const bool timm = layout == Layout::TimmMaxVit;
    Model model;
    model.info.family = "maxvit";
    model.info.layout = table.name;
    VisionTower& v = model.vision;
    MaxVitTower& mx = v.maxvit;
    mx.partition = 0;  // set by the first unit's table
    if (timm && !t.has(blockPrefix(m, 0, 0) + m.unitBlock + m.relBias))
        throw ModelError(t.where(), "timm MaxxVit variant without block attention or with another position bias "
                                    "(CoAtNet, *_rw_, *_rmlp_) is not supported; the *_tf_* MaxViTs are");
    if (timm && t.get(blockPrefix(m, 0, 0) + m.unitBlock + m.relBias).dim() != 3)
        throw ModelError(t.where(), "timm MaxViT with a Swin-style position bias (*_rw_) is not supported; the *_tf_* MaxViTs are");
    const double bnEps = 1e-3;  // both: TF's BatchNorm epsilon
    mx.tfPadding = timm;
    mx.poolTwo = timm;
    mx.scaleByWidth = !timm;
    mx.convActivation = timm ? Activation::GeluTanh : Activation::Gelu;
    v.encoder.activation = mx.convActivation;
    v.encoder.eps = 1e-5;
    // Stem.
    const at::Tensor s1 = t.get(m.stem1 + ".weight");
    if (s1.dim() != 4 || s1.size(1) != 3 || s1.size(2) != 3 || s1.size(3) != 3)
        throw ModelError(t.where(), "tensor '" + m.stem1 + ".weight' has shape " + shapeText(s1.sizes()) + ", expected [C, 3, 3, 3]");
    const int64_t stem = s1.size(0);
    mx.stem1W = s1;
    mx.stem1B = t.opt(m.stem1 + ".bias", {stem});
    mx.stemNorm = readBatchNorm(t, m.stemNorm, stem, bnEps);
    mx.stem2W = t.get(m.stem2 + ".weight", {stem, stem, 3, 3});
    mx.stem2B = t.opt(m.stem2 + ".bias", {stem});
    // Stages.
    int64_t width = stem;
    for (int s = 0; t.has(blockPrefix(m, s, 0) + m.conv + m.preNorm + ".weight"); ++s) {
        MaxVitStage st;
        st.firstLayer = v.layers();
        for (int b = 0; t.has(blockPrefix(m, s, b) + m.conv + m.preNorm + ".weight"); ++b) {
            const std::string p = blockPrefix(m, s, b), c = p + m.conv;
            MbConv conv;
            const int64_t in = width;
            const at::Tensor expand = t.get(c + m.expand + ".weight");
            if (expand.dim() != 4 || expand.size(1) != in || expand.size(2) != 1)
                throw ModelError(t.where(), "tensor '" + c + m.expand + ".weight' has shape " + shapeText(expand.sizes()) +
                                                ", expected [M, " + std::to_string(in) + ", 1, 1]");
            const int64_t mid = expand.size(0);
            const at::Tensor projW = t.get(c + m.proj + ".weight");
            if (projW.dim() != 4 || projW.size(1) != mid)
                throw ModelError(t.where(), "tensor '" + c + m.proj + ".weight' has shape " + shapeText(projW.sizes()));
            const int64_t out = projW.size(0);
            conv.pre = readBatchNorm(t, c + m.preNorm, in, bnEps);
            conv.expandW = expand;
            conv.norm1 = readBatchNorm(t, c + m.norm1, mid, bnEps);
            const int64_t k = t.dim(c + m.dw + ".weight", 2);
            conv.dwW = t.get(c + m.dw + ".weight", {mid, 1, k, k});
            conv.norm2 = readBatchNorm(t, c + m.norm2, mid, bnEps);
            const int64_t r = t.dim(c + m.se1 + ".weight", 0);
            conv.seW1 = t.get(c + m.se1 + ".weight", {r, mid, 1, 1});
            conv.seB1 = t.get(c + m.se1 + ".bias", {r});
            conv.seW2 = t.get(c + m.se2 + ".weight", {mid, r, 1, 1});
            conv.seB2 = t.get(c + m.se2 + ".bias", {mid});
            conv.projW = projW;
            conv.projB = t.opt(c + m.proj + ".bias", {out});
            conv.stride = b == 0 ? 2 : 1;  // every stage starts by halving the grid
            if (t.has(p + m.shortcut + ".weight")) {
                conv.shortW = t.get(p + m.shortcut + ".weight", {out, in, 1, 1});
                conv.shortB = t.opt(p + m.shortcut + ".bias", {out});
            } else if (out != in) {
                throw ModelError(t.where(), "block '" + p + "' changes the width " + std::to_string(in) + " -> " + std::to_string(out) +
                                                " without a shortcut conv ('" + p + m.shortcut + ".weight')");
            }
            width = out;
            st.convs.push_back(conv);
            for (const std::string& unit : {m.unitBlock, m.unitGrid}) {
                v.encoder.blocks.push_back(readBlock(t, prefixed(m.unit, p + unit), width));
                mx.relBias.push_back(denseBias(t, p + unit + m.relBias, m.tableHeadsFirst, &mx.partition));
                const int heads = static_cast<int>(mx.relBias.back().size(0));
                if (st.convs.size() == 1 && unit == m.unitBlock) st.heads = heads;
                if (heads != st.heads || width % heads != 0)
                    throw ModelError(t.where(), "unit '" + p + unit + "' has " + std::to_string(heads) + " heads for width " +
                                                    std::to_string(width) + " (the stage's first has " + std::to_string(st.heads) + ")");
            }
        }
        st.width = static_cast<int>(width);
        st.depth = static_cast<int>(st.convs.size());
        mx.stages.push_back(std::move(st));
    }
    if (mx.stages.empty()) throw ModelError(t.where(), "no MaxViT blocks ('" + blockPrefix(m, 0, 0) + m.conv + m.preNorm + ".weight')");
    v.width = static_cast<int>(width);
    for (const MaxVitStage& st : mx.stages) v.encoder.heads = std::max(v.encoder.heads, st.heads);
    // The heatmap grid is the first stage's (stride 4: stem and first block halve the input).
    v.patchSize = 4;
    readNorm(t, m.headNorm, width, v.normW, v.normB);
    v.normEps = 1e-5;
    if (t.has(m.preLogits + ".weight")) {
        mx.preLogitsW = t.get(m.preLogits + ".weight", {width, width});
        mx.preLogitsB = t.opt(m.preLogits + ".bias", {width});
    }
    if (t.has(m.head + ".weight")) {
        const int64_t classes = t.dim(m.head + ".weight", 0);
        v.headW = t.get(m.head + ".weight", {classes, width});
        v.headB = t.opt(m.head + ".bias", {classes});
        model.numClasses = static_cast<int>(classes);
    }
    // Input size: the config's, else partition x 32 (the size MaxViT's partitions are made for).
    const auto& input = sub(sub(config, "pretrained_cfg"), "input_size");
    int size = input.is_array() && input.size() == 3 && input[2].is_number_integer() ? input[2].get<int>() : 0;
    if (size <= 0) size = intOr(sub(config, "model_args"), "img_size", intOr(config, "img_size", 0));
    if (size <= 0) size = mx.partition << (mx.stages.size() + 1);
    v.imageSize = size;
    setImageNetPreprocess(model, config, size);
    // torchvision's maxvit_t evaluates a 224 resize and 224 crop (no margin).
    if (!timm && !sub(sub(config, "pretrained_cfg"), "crop_pct").is_number() && !sub(config, "crop_pct").is_number())
        model.preprocess.resizeShortest = size;
    return model;
}

}  // namespace vitscope::loader
