// Swin: forward pass and exact decomposition (design.md, "Hierarchical towers").
//
// Readout. The output is the mean over the last stage's N tokens of LN(x_t). With every
// LayerNorm's statistics frozen at the forward pass, it is linear in each stage's residual
// stream: a write c_t at token t of stage s reaches the output as rho_s[t] * c_t G_s[k_s(t)]:
// - last stage: rho[t] = 1 / (N sigma_t), G = C diag(gamma) (C centres over channels), one class;
// - a patch merging into stage s + 1 maps child k (k = row parity + 2 * column parity) of the
//   parent token p through K_k = rows k of C_4C diag(gamma_m) W_m^T, divided by the merge
//   norm's sigma_p: rho_s[t] = rho_{s+1}[p] / sigma_p and G_s[k + 4 c] = K_k G_{s+1}[c].
// The 4^(S-1-s) maps G_s depend on the model only; rho carries the image's statistics. Offsets
// (final norm, each merging's LayerNorm offset through its Linear) are their own terms.
#include "model/forward_swin.h"

#include "model/forward_maxvit.h"
#include "model/vit_decompose.h"
#include "model/windows.h"

#include "error.h"

#include <cmath>

namespace vitscope::swin {

namespace {

using namespace windows;

// 2x2 neighbours of a [B, gh * gw, C] grid concatenated in Swin's order: [B, gh/2 * gw/2, 4C].
at::Tensor gatherMerge(const at::Tensor& x, int gh, int gw) {
    const int64_t batch = x.size(0), c = x.size(2);
    return x.view({batch, gh / 2, 2, gw / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).reshape({batch, (gh / 2) * (gw / 2), 4 * c});
}

struct Pass {
    at::Tensor embed;                  // [B, N0, C0]
    std::vector<BlockRecord> blocks;   // per layer (when recording)
    std::vector<at::Tensor> mergeIn;   // per stage s >= 1: [B, N_s, 4 C_{s-1}] (index 0 undefined)
    std::vector<Geometry> geometries;  // per layer
    std::vector<int> gh, gw;           // per stage
    at::Tensor last;                   // [B, N_last, C_last] final residual
};

Pass run(const VisionTower& v, const at::Tensor& pixels, bool record) {
    if (pixels.dim() != 4 || pixels.size(1) != 3)
        throw InputError("pixels", "expected [B, 3, H, W], got " + std::to_string(pixels.dim()) + "-D tensor");
    if (!at::isFloatingType(pixels.scalar_type())) throw InputError("pixels", "expected floating-point pixels");
    if (pixels.size(0) == 0) throw InputError("pixels", "empty batch");
    checkSize(v, pixels.size(2), pixels.size(3));
    const SwinTower& sw = v.swin;
    const at::Tensor px = pixels.to(v.patchW.device(), at::kFloat);
    Pass p;
    at::Tensor x = at::conv2d(px, v.patchW, v.patchB, {v.patchSize, v.patchSize});
    int gh = static_cast<int>(x.size(2)), gw = static_cast<int>(x.size(3));
    x = x.flatten(2).transpose(1, 2);
    x = at::layer_norm(x, {x.size(2)}, sw.patchNormW, sw.patchNormB, sw.eps);
    if (record) p.embed = x;
    p.mergeIn.resize(sw.stages.size());
    for (std::size_t s = 0; s < sw.stages.size(); ++s) {
        const SwinStage& st = sw.stages[s];
        if (s > 0) {
            const at::Tensor u = gatherMerge(x, gh, gw);
            if (record) p.mergeIn[s] = u;
            x = at::linear(at::layer_norm(u, {u.size(2)}, st.mergeNormW, st.mergeNormB, sw.eps), st.mergeW);
            gh /= 2;
            gw /= 2;
        }
        p.gh.push_back(gh);
        p.gw.push_back(gw);
        for (int i = 0; i < st.depth; ++i) {
            const auto l = static_cast<std::size_t>(st.firstLayer + i);
            p.geometries.push_back(shiftedWindows(gh, gw, sw.window, i % 2 == 1, x.device()));
            BlockRecord rec;
            const double scale = 1.0 / std::sqrt(static_cast<double>(st.width / st.heads));
            x = runBlock(v.encoder.blocks[l], sw.relBias[l], st.heads, p.geometries.back(), v.encoder, scale, x, record ? &rec : nullptr);
            if (record) p.blocks.push_back(std::move(rec));
        }
    }
    p.last = x;
    return p;
}

// Readout weights rho_s [B, N_s] and classes k_s [N_s] of every stage (see the top of the file).
void readout(const VisionTower& v, const Pass& p, std::vector<at::Tensor>& rho, std::vector<at::Tensor>& cls) {
    const std::size_t stages = v.swin.stages.size();
    rho.assign(stages, at::Tensor());
    cls.assign(stages, at::Tensor());
    const int64_t nLast = p.last.size(1);
    rho[stages - 1] = 1.0 / (at::sqrt(p.last.var(2, false) + v.normEps) * static_cast<double>(nLast));
    cls[stages - 1] = at::zeros({nLast}, p.last.options().dtype(at::kLong));
    for (std::size_t s = stages - 1; s > 0; --s) {
        const at::Tensor sigma = at::sqrt(p.mergeIn[s].var(2, false) + v.swin.eps);  // [B, N_s]
        const int gh = p.gh[s - 1], gw = p.gw[s - 1];
        const at::Tensor yy = at::arange(gh, cls[s].options()).view({gh, 1}), xx = at::arange(gw, cls[s].options()).view({1, gw});
        const at::Tensor parent = (yy.div(2, "floor") * (gw / 2) + xx.div(2, "floor")).reshape({-1});
        const at::Tensor child = (yy.remainder(2) + 2 * xx.remainder(2)).reshape({-1});
        rho[s - 1] = (rho[s] / sigma).index_select(1, parent);
        cls[s - 1] = child + 4 * cls[s].index_select(0, parent);
    }
}

}  // namespace

void checkSize(const VisionTower& v, int64_t height, int64_t width) {
    const SwinTower& sw = v.swin;
    const int64_t stride = static_cast<int64_t>(v.patchSize) << (sw.stages.size() - 1);
    const int64_t lastH = height / stride, lastW = width / stride;
    if (height % stride != 0 || width % stride != 0 || lastH % sw.window != 0 || lastW % sw.window != 0 || lastH == 0 || lastW == 0)
        throw InputError("pixels", "image size " + std::to_string(height) + "x" + std::to_string(width) +
                                       " does not tile into this Swin's windows (sides must be multiples of " +
                                       std::to_string(stride * sw.window) + ")");
}

VisionResult encode(const VisionTower& v, const at::Tensor& pixels) {
    const Pass p = run(v, pixels, false);
    VisionResult r;
    r.output = at::layer_norm(p.last, {v.width}, v.normW, v.normB, v.normEps).mean(1);
    if (v.headW.defined()) r.logits = at::linear(r.output, v.headW, v.headB);
    return r;
}

at::Tensor finalTokens(const VisionTower& v, const at::Tensor& pixels, int* gridH, int* gridW) {
    const Pass p = run(v, pixels, false);
    if (gridH) *gridH = p.gh.back();
    if (gridW) *gridW = p.gw.back();
    return at::layer_norm(p.last, {v.width}, v.normW, v.normB, v.normEps);
}

std::vector<at::Tensor> readoutMaps(const VisionTower& v) {
    const SwinTower& sw = v.swin;
    const std::size_t stages = sw.stages.size();
    std::vector<at::Tensor> G(stages);
    const at::Tensor m = at::diag(v.normW);  // [C, E]
    G[stages - 1] = (m - m.mean(0, true)).unsqueeze(0).contiguous();
    for (std::size_t s = stages - 1; s > 0; --s) {
        const SwinStage& st = sw.stages[s];
        const int64_t cPrev = sw.stages[s - 1].width, c = st.width;
        const at::Tensor k = st.mergeNormW.unsqueeze(1) * st.mergeW.t();  // [4 C_prev, C]
        const at::Tensor kc = (k - k.mean(0, true)).view({4, cPrev, c});
        // class 4 * c' + k: [K_s, 4, C_prev, E] flattened with k fastest
        G[s - 1] = at::einsum("kac,jce->jkae", {kc, G[s]}).reshape({-1, cPrev, G[s].size(2)}).contiguous();
    }
    return G;
}

Decomposition decompose(const VisionTower& v, const DecompositionMaps& maps, const at::Tensor& pixels,
                        const DecomposeOptions& options) {
    const SwinTower& sw = v.swin;
    const Pass p = run(v, pixels, true);
    std::vector<at::Tensor> rho, cls;
    readout(v, p, rho, cls);
    const int64_t batch = p.last.size(0), e = v.embedDim(), L = v.layers(), H = v.heads();
    const int64_t n0 = p.embed.size(1);
    const auto opts = p.last.options();

    Decomposition dec;
    for (int64_t l = 0; l < L; ++l) dec.headCounts.push_back(v.headsIn(static_cast<int>(l)));
    dec.output = at::layer_norm(p.last, {v.width}, v.normW, v.normB, v.normEps).mean(1);
    if (v.headW.defined()) dec.logits = at::linear(dec.output, v.headW, v.headB);
    auto classes = [&](std::size_t s) { return maps.swinG[s].size(0); };
    dec.heads = options.tokens ? at::zeros({batch, L, H, n0, e}, opts) : at::zeros({batch, L, H, e}, opts);
    dec.attnBias = at::empty({batch, L, e}, opts);
    dec.mlps = at::empty({batch, L, e}, opts);
    const int64_t S = static_cast<int64_t>(sw.stages.size());
    dec.stageBias = at::zeros({batch, std::max<int64_t>(S - 1, 0), e}, opts);
    at::Tensor headSum = at::zeros({batch, e}, opts);
    for (int64_t si = 0; si < S; ++si) {
        const auto s = static_cast<std::size_t>(si);
        const SwinStage& st = sw.stages[s];
        const at::Tensor& G = maps.swinG[s];
        const int64_t K = classes(s), h = st.heads;
        StageTerms stage;
        // The stage's first term: the embedding (stage 0) or the merging's offset, written at every token.
        const int64_t first = si == 0 ? stage.add(classPool(p.embed, rho[0], cls[0], K).unsqueeze(1))
                                      : stage.add((classWeights(rho[s], cls[s], K).unsqueeze(2) *
                                                   at::matmul(st.mergeW, st.mergeNormB)).unsqueeze(1));
        std::vector<int64_t> headAt, biasAt, mlpAt;
        for (int64_t l = st.firstLayer; l < st.firstLayer + st.depth; ++l) {
            const auto li = static_cast<std::size_t>(l);
            const BlockTerms t = addBlockTerms(stage, v.encoder.blocks[li], p.blocks[li], p.geometries[li], rho[s], cls[s], G, h, static_cast<int>(s),
                                               options.tokens ? dec.heads.select(1, l).narrow(1, 0, h) : at::Tensor(),
                                               options.tokenFactors && !options.tokens ? &dec.swinFactors : nullptr);
            headAt.push_back(t.heads);
            biasAt.push_back(t.bias);
            mlpAt.push_back(t.mlp);
        }
        const at::Tensor terms = stage.through(G);  // [B, F, E]
        if (si == 0) dec.embed = terms.select(1, first).contiguous();
        else dec.stageBias.select(1, si - 1).copy_(terms.select(1, first));
        for (int i = 0; i < st.depth; ++i) {
            const int64_t l = st.firstLayer + i;
            const at::Tensor heads = terms.narrow(1, headAt[static_cast<std::size_t>(i)], h);
            headSum.add_(heads.sum(1));
            if (!options.tokens) dec.heads.select(1, l).narrow(1, 0, h).copy_(heads);
            dec.attnBias.select(1, l).copy_(terms.select(1, biasAt[static_cast<std::size_t>(i)]));
            dec.mlps.select(1, l).copy_(terms.select(1, mlpAt[static_cast<std::size_t>(i)]));
        }
    }
    dec.postBias = v.normB.unsqueeze(0).expand({batch, e}).contiguous();
    dec.maxAbsError = sumIdentityError(dec, headSum, options.tokens);
    return dec;
}

Decomposition decomposeReference(const VisionTower& v, const at::Tensor& pixels, const DecomposeOptions& options) {
    const SwinTower& sw = v.swin;
    const int64_t S = static_cast<int64_t>(sw.stages.size());
    if (options.fromStage < 0 || options.fromStage >= S || options.fromBlock < 0 ||
        options.fromBlock >= sw.stages[static_cast<std::size_t>(options.fromStage)].depth)
        throw InputError("--from-block " + std::to_string(options.fromStage) + "," + std::to_string(options.fromBlock),
                         "is not a block of this Swin (" + std::to_string(S) + " stages)");
    const Pass p = run(v, pixels, true);
    const int64_t batch = p.last.size(0), L = v.layers();
    const int first = sw.stages[static_cast<std::size_t>(options.fromStage)].firstLayer + options.fromBlock;
    vitdecompose::Fields fields;
    vitdecompose::TermIndex index;
    index.heads.assign(static_cast<std::size_t>(L), -1);
    index.mlps.assign(static_cast<std::size_t>(L), -1);
    fields.add(p.blocks[static_cast<std::size_t>(first)].input.unsqueeze(1));  // init
    for (int64_t si = options.fromStage; si < S; ++si) {
        const auto s = static_cast<std::size_t>(si);
        const SwinStage& st = sw.stages[s];
        if (si > options.fromStage) {  // the merging: neighbours gathered, LayerNorm, Linear (no bias)
            const int gh = p.gh[s - 1], gw = p.gw[s - 1];
            fields.map([&](const at::Tensor& f) {
                return gatherMerge(f.flatten(0, 1).contiguous(), gh, gw).reshape({batch, f.size(1), -1, 4 * f.size(3)});
            });
            fields.layerNorm(p.mergeIn[s], st.mergeNormW, st.mergeNormB);
            fields.linear(st.mergeW, at::Tensor());
        }
        for (int l = std::max(st.firstLayer, first); l < st.firstLayer + st.depth; ++l) {
            const auto li = static_cast<std::size_t>(l);
            index.heads[li] = fields.count();
            fields.add(vitdecompose::headFields(v.encoder.blocks[li], p.blocks[li], p.geometries[li], st.heads));
            index.mlps[li] = fields.count();
            fields.add(p.blocks[li].mlp.unsqueeze(1));
        }
    }
    // The final norm's statistics are the forward's (the value the walker carries), its input the
    // terms' sum: the two differ where the heads re-normalised their block's input.
    const at::Tensor termSum = fields.sum();
    fields.layerNorm(p.last, v.normW, v.normB);
    const at::Tensor terms = fields.meanOverTokens();  // [B, K, E]
    Decomposition dec;
    for (int64_t l = 0; l < L; ++l) dec.headCounts.push_back(v.headsIn(static_cast<int>(l)));
    dec.output = at::layer_norm(p.last, {v.width}, v.normW, v.normB, v.normEps).mean(1);
    if (v.headW.defined()) dec.logits = at::linear(dec.output, v.headW, v.headB);
    dec.stageBias = at::zeros({batch, std::max<int64_t>(S - 1, 0), terms.size(2)}, terms.options());
    const at::Tensor coeff = v.normW / at::sqrt(p.last.var(2, true, true) + 1e-5);
    const at::Tensor walker = (coeff * (termSum - p.last.mean(2, true)) + v.normB).mean(1);
    vitdecompose::fill(dec, terms, index, walker, v.heads());
    return dec;
}

}  // namespace vitscope::swin

namespace vitscope {

at::Tensor lastStageTokens(const Model& model, const at::Tensor& pixels, int* gridH, int* gridW) {
    const VisionTower& v = model.vision;
    if (!v.hierarchical()) throw InputError(model.info.weightsPath, "is not a hierarchical (Swin / MaxViT) model");
    // MaxViT normalises the pooled vector: each token through the same LayerNorm is its analogue.
    if (v.maxvit.defined()) return at::layer_norm(maxvit::lastTokens(v, pixels, gridH, gridW), {v.width}, v.normW, v.normB, v.normEps);
    return swin::finalTokens(v, pixels, gridH, gridW);
}

at::Tensor readoutDirections(const Model& model, int stage, const at::Tensor& directions) {
    const at::Tensor& G = decompositionMaps(model, Convention::Exact).swinG.at(static_cast<std::size_t>(stage));  // [K, C, E]
    return at::matmul(G.reshape({G.size(0) * G.size(1), -1}), directions.to(G.device(), at::kFloat).t()).view({G.size(0), G.size(1), -1});
}

at::Tensor swinTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, const std::vector<int>& heads,
                           const at::Tensor& directions, const at::Tensor& projected) {
    const VisionTower& v = model.vision;
    if (!v.hierarchical() || dec.swinFactors.empty())
        throw InputError("decomposition", "per-token scores need a Swin model decomposed with tokenFactors");
    if (layer < 0 || layer >= v.layers()) throw InputError("layer " + std::to_string(layer), "is not a layer of this model");
    const int64_t n = static_cast<int64_t>(heads.size());
    if (directions.dim() != 2 || directions.size(0) != n)
        throw InputError("directions", "expected one direction per head [" + std::to_string(n) + ", E]");
    for (int head : heads)
        if (head < 0 || head >= v.headsIn(layer))
            throw InputError("head " + std::to_string(layer) + "." + std::to_string(head), "is not a head of this model");
    const SwinLayerFactors& f = dec.swinFactors[static_cast<std::size_t>(layer)];
    const at::Tensor& G = decompositionMaps(model, Convention::Exact).swinG[static_cast<std::size_t>(f.stage)];  // [K, C, E]
    const Block& b = v.encoder.blocks[static_cast<std::size_t>(layer)];
    const int64_t K = G.size(0), c = G.size(1), h = v.headsIn(layer), dh = c / h;
    const int64_t windows = f.attn.size(1), ww = f.attn.size(3);
    // <term of source j, u> = sum_i a[i, j] <kappa_i, v_j>, kappa_i = rho_i W_O[:, h]^T G[k_i] u:
    // G is read once for every direction (one product), then each head's slice of W_O.
    // Every head of the layer in order (the map of all heads): views, no copies.
    bool all = n == h;
    for (int64_t i = 0; all && i < n; ++i) all = heads[static_cast<std::size_t>(i)] == i;
    const at::Tensor idx = at::tensor(std::vector<int64_t>(heads.begin(), heads.end()), at::kLong).to(G.device());
    const at::Tensor gu = projected.defined() ? projected : readoutDirections(model, f.stage, directions);  // [K, C, n]
    if (gu.size(0) != K || gu.size(1) != c || gu.size(2) != n) throw InputError("projected directions", "do not match the layer's stage");
    const at::Tensor wo = all ? b.outW.view({c, h, dh}) : b.outW.view({c, h, dh}).index_select(1, idx);  // [C, n, dh]
    const at::Tensor gk = at::einsum("kcn,cnd->nkd", {gu, wo});                              // [n, K, dh]
    const at::Tensor kappa = gk.index_select(1, f.cls) * f.weight[index].view({1, -1, 1});  // [n, W * w^2, dh]
    const at::Tensor vals = (all ? f.values[index] : f.values[index].index_select(1, idx)).transpose(0, 1);  // [n, W, w^2, dh]
    const at::Tensor attn = (all ? f.attn[index] : f.attn[index].index_select(1, idx)).transpose(0, 1);      // [n, W, w^2, w^2]
    const at::Tensor m = at::matmul(kappa.view({n, windows, ww, dh}), vals.transpose(2, 3));  // [n, W, i, j]
    const at::Tensor s = (attn * m).sum(2).reshape({n, -1});                                  // [n, W * w^2] by source
    const at::Tensor grid = at::zeros_like(s).index_copy_(1, f.pos, s);
    const int factor = 1 << f.stage;
    return grid.view({n, f.gridH, 1, f.gridW, 1})
        .expand({n, f.gridH, factor, f.gridW, factor})
        .reshape({n, -1})
        .div(static_cast<double>(factor * factor));
}

at::Tensor swinTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, int head,
                           const at::Tensor& direction) {
    return swinTokenScores(model, dec, index, layer, std::vector<int>{head}, direction.view({1, -1}))[0];
}

}  // namespace vitscope
