// The class token's residual stream after a block, decomposed (residual_decompose.h).
#include "model/residual_decompose.h"

#include "error.h"
#include "model/forward.h"
#include "model/windows.h"

namespace vitscope {

namespace {

void checkResidualModel(const Model& model, int layer) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError(model.info.weightsPath,
                         "the residual stream at the class token is decomposed for plain ViTs with a class token "
                         "(not Swin, MaxViT or attention-pooled SigLIP)");
    if (layer < 0 || layer >= v.layers())
        throw InputError("layer:" + std::to_string(layer),
                         "is not a block of this model (0.." + std::to_string(v.layers() - 1) + ")");
}

// One block's class-token terms from the residual x entering it [B, N, D] and its taps: per-head
// (per-token) writes, the output bias, and the MLP on the class token's mid-block residual.
struct BlockTerms {
    at::Tensor heads;  // [B, H, D] or [B, H, N, D]
    at::Tensor bias;   // [D]
    at::Tensor mlp;    // [B, D]
};

BlockTerms blockTerms(const VisionTower& v, const Block& b, const at::Tensor& x, const BlockTaps& taps, bool tokens) {
    const int64_t batch = x.size(0), n = x.size(1), d = v.width, h = v.heads(), dh = d / h;
    const at::Tensor values =
        at::linear(taps.normed, b.qkvW.narrow(0, 2 * d, d), b.qkvB.narrow(0, 2 * d, d)).view({batch, n, h, dh});
    const at::Tensor row = taps.attention.select(2, 0);  // [B, H, N]
    const at::Tensor wo = (b.ls1.defined() ? b.outW * b.ls1.unsqueeze(1) : b.outW).view({d, h, dh});
    BlockTerms t;
    t.bias = b.ls1.defined() ? b.outB * b.ls1 : b.outB;
    const at::Tensor perHead = at::einsum("bhn,bnhk,dhk->bhd", {row, values, wo});
    t.heads = tokens ? at::einsum("bhn,bnhk,dhk->bhnd", {row, values, wo}) : perHead;
    const at::Tensor mid = x.select(1, 0) + perHead.sum(1) + t.bias;  // [B, D]
    at::Tensor m = windows::mlp(at::layer_norm(mid, {d}, b.ln2W, b.ln2B, v.encoder.eps), b.fc1W, b.fc1B, b.fc2W, b.fc2B,
                                v.encoder.activation, false);
    t.mlp = b.ls2.defined() ? m * b.ls2 : m;
    return t;
}

}  // namespace

ResidualDecomposition decomposeResidual(const Model& model, const at::Tensor& pixels, int layer, bool tokens) {
    checkResidualModel(model, layer);
    const VisionTower& v = model.vision;
    at::Tensor x = embedImageTokens(model, pixels);
    const int64_t batch = x.size(0), n = x.size(1), d = v.width, h = v.heads(), count = layer + 1;
    ResidualDecomposition dec;
    dec.layer = layer;
    dec.embed = x.select(1, 0).clone();
    dec.heads = tokens ? at::empty({batch, count, h, n, d}, x.options()) : at::empty({batch, count, h, d}, x.options());
    dec.attnBias = at::empty({batch, count, d}, x.options());
    dec.mlps = at::empty({batch, count, d}, x.options());
    for (int l = 0; l <= layer; ++l) {
        BlockTaps taps;
        const at::Tensor next = runVisionBlock(model, l, x, &taps);
        const BlockTerms t = blockTerms(v, v.encoder.blocks[static_cast<std::size_t>(l)], x, taps, tokens);
        dec.heads.select(1, l).copy_(t.heads);
        dec.attnBias.select(1, l).copy_(t.bias.unsqueeze(0).expand({batch, d}));
        dec.mlps.select(1, l).copy_(t.mlp);
        x = next;
    }
    dec.residual = x.select(1, 0).clone();
    const at::Tensor headSum = tokens ? dec.heads.sum(at::IntArrayRef{1, 2, 3}) : dec.heads.sum(at::IntArrayRef{1, 2});
    const at::Tensor total = dec.embed + headSum + dec.attnBias.sum(1) + dec.mlps.sum(1);
    dec.maxAbsError = (total - dec.residual).abs().max().item<double>();
    return dec;
}

at::Tensor residualTermsByComponent(const ResidualDecomposition& dec, std::vector<std::string>* names) {
    const bool tokens = dec.heads.dim() == 5;
    const at::Tensor heads = tokens ? dec.heads.sum(3) : dec.heads;  // [B, L', H, D]
    const int64_t count = heads.size(1), h = heads.size(2);
    std::vector<at::Tensor> parts{dec.embed.unsqueeze(1)};
    if (names) names->assign({"embed"});
    for (int64_t l = 0; l < count; ++l) {
        parts.push_back(heads.select(1, l));
        parts.push_back(dec.attnBias.select(1, l).unsqueeze(1));
        parts.push_back(dec.mlps.select(1, l).unsqueeze(1));
        if (!names) continue;
        for (int64_t j = 0; j < h; ++j) names->push_back(std::to_string(l) + "." + std::to_string(j));
        names->push_back("attn_bias." + std::to_string(l));
        names->push_back("mlp." + std::to_string(l));
    }
    return at::cat(parts, 1);
}

}  // namespace vitscope
