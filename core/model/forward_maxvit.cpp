// MaxViT: forward pass and exact decomposition (README, "MaxViT").
//
// Readout. The decomposed output is LN(mean over the last stage's N tokens): with the norm's
// sigma frozen, a write c_t at a last-stage token reaches it as c_t C diag(gamma) / (N sigma).
// Each stage starts with a downsampling MBConv whose shortcut is linear: an average pool, then
// (when the width changes) a 1x1 conv W_s with bias. A write at a token of the level before
// stage s therefore reaches stage s through the pool's weights and W_s^T: the readout weight of
// a token is the pool's transpose applied to the next level's weights, and the map is
// G_{s-1} = W_s^T G_s (the conv's bias is its own term, written at every token of stage s).
// Each MBConv's residual branch, each attention unit's heads, bias and MLP, and the stem's
// output are components.
#include "model/forward_maxvit.h"

#include "error.h"
#include "model/vit_decompose.h"
#include "model/windows.h"

#include <cmath>

namespace vitscope::maxvit {

namespace {

using namespace windows;

at::Tensor affine(const at::Tensor& x, const Affine& a) { return x * a.scale.view({1, -1, 1, 1}) + a.shift.view({1, -1, 1, 1}); }

// A k x k conv; stride-2 convs of TF-ported models pad as TF's "same" does (the extra row and
// column at the end), the others symmetrically.
at::Tensor conv(const MaxVitTower& mx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t stride, int64_t groups = 1) {
    const int64_t k = w.size(2);
    if (mx.tfPadding && stride > 1) {
        auto pad = [&](int64_t i) { return std::max<int64_t>(((i + stride - 1) / stride - 1) * stride + k - i, 0); };
        const int64_t ph = pad(x.size(2)), pw = pad(x.size(3));
        const std::vector<int64_t> s{stride, stride}, zero{0, 0}, one{1, 1};
        return at::conv2d(at::constant_pad_nd(x, {pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}), w, b, s, zero, one, groups);
    }
    const std::vector<int64_t> s{stride, stride}, pad{k / 2, k / 2}, one{1, 1};
    return at::conv2d(x, w, b, s, pad, one, groups);
}

at::Tensor pool(const MaxVitTower& mx, const at::Tensor& x) {
    return mx.poolTwo ? at::avg_pool2d(x, {2, 2}, {2, 2}) : at::avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false, true);
}

// The shortcut: identity, or pool then the 1x1 conv (its bias only when asked).
at::Tensor shortcut(const MaxVitTower& mx, const MbConv& c, const at::Tensor& x, bool withBias) {
    at::Tensor y = c.stride > 1 ? pool(mx, x) : x;
    if (c.shortW.defined()) y = at::conv2d(y, c.shortW, withBias ? c.shortB : at::Tensor());
    return y;
}

// The MBConv's residual branch (one non-linear component).
at::Tensor branch(const MaxVitTower& mx, const MbConv& c, const at::Tensor& x) {
    at::Tensor y = at::conv2d(affine(x, c.pre), c.expandW);
    y = activate(affine(y, c.norm1), mx.convActivation);
    y = conv(mx, y, c.dwW, at::Tensor(), c.stride, c.dwW.size(0));
    y = activate(affine(y, c.norm2), mx.convActivation);
    at::Tensor s = at::conv2d(y.mean({2, 3}, true), c.seW1, c.seB1);
    s = at::sigmoid(at::conv2d(at::silu(s), c.seW2, c.seB2));
    return at::conv2d(y * s, c.projW, c.projB);
}

at::Tensor tokens(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1, x.size(1)}); }

struct Pass {
    at::Tensor embed;                  // [B, N_stem, C_stem] the stem's output
    std::vector<at::Tensor> convs;     // per block: the MBConv branch [B, N_s, C_s]
    std::vector<at::Tensor> blockIn;   // per block: its input [B, N, C] (the level before it)
    std::vector<BlockRecord> units;    // per attention unit (when recording)
    std::vector<Geometry> geometries;  // per attention unit
    std::vector<int> gh, gw;           // per level: stem, then each stage
    at::Tensor last;                   // [B, N_last, C_last]
};

Pass run(const VisionTower& v, const at::Tensor& pixels, bool record) {
    if (pixels.dim() != 4 || pixels.size(1) != 3)
        throw InputError("pixels", "expected [B, 3, H, W], got " + std::to_string(pixels.dim()) + "-D tensor");
    if (!at::isFloatingType(pixels.scalar_type())) throw InputError("pixels", "expected floating-point pixels");
    if (pixels.size(0) == 0) throw InputError("pixels", "empty batch");
    checkSize(v, pixels.size(2), pixels.size(3));
    const MaxVitTower& mx = v.maxvit;
    Pass p;
    at::Tensor x = pixels.to(mx.stem1W.device(), at::kFloat);
    x = activate(affine(conv(mx, x, mx.stem1W, mx.stem1B, 2), mx.stemNorm), mx.convActivation);
    x = conv(mx, x, mx.stem2W, mx.stem2B, 1);
    if (record) p.embed = tokens(x);
    p.gh.push_back(static_cast<int>(x.size(2)));
    p.gw.push_back(static_cast<int>(x.size(3)));
    for (const MaxVitStage& st : mx.stages) {
        for (int b = 0; b < st.depth; ++b) {
            const MbConv& c = st.convs[static_cast<std::size_t>(b)];
            if (record) p.blockIn.push_back(tokens(x));
            const at::Tensor br = branch(mx, c, x);
            x = shortcut(mx, c, x, true) + br;
            if (record) p.convs.push_back(tokens(br));
            const int gh = static_cast<int>(x.size(2)), gw = static_cast<int>(x.size(3));
            if (b == 0) {
                p.gh.push_back(gh);
                p.gw.push_back(gw);
            }
            at::Tensor t = tokens(x);
            const double scale = 1.0 / std::sqrt(static_cast<double>(mx.scaleByWidth ? st.width : st.width / st.heads));
            for (bool grid : {false, true}) {
                const auto l = static_cast<std::size_t>(st.firstLayer + 2 * b + (grid ? 1 : 0));
                p.geometries.push_back(partition(gh, gw, mx.partition, grid, x.device()));
                BlockRecord rec;
                t = runBlock(v.encoder.blocks[l], mx.relBias[l], st.heads, p.geometries.back(), v.encoder, scale, t, record ? &rec : nullptr);
                if (record) p.units.push_back(std::move(rec));
            }
            x = t.view({x.size(0), gh, gw, x.size(1)}).permute({0, 3, 1, 2});
        }
    }
    p.last = tokens(x);
    return p;
}

// The transpose of a stage's downsampling pool: readout weights of the finer grid [B, H, W]
// from the coarser one's [B, h, w].
at::Tensor poolTranspose(const MaxVitTower& mx, const at::Tensor& coarse, int fineH, int fineW) {
    const at::Tensor c = coarse.unsqueeze(1);
    const at::Tensor input = at::zeros({c.size(0), 1, fineH, fineW}, c.options());
    const at::Tensor f = mx.poolTwo ? at::avg_pool2d_backward(c, input, {2, 2}, {2, 2}, {0, 0}, false, true, c10::nullopt)
                                    : at::avg_pool2d_backward(c, input, {3, 3}, {2, 2}, {1, 1}, false, true, c10::nullopt);
    return f.squeeze(1);
}

}  // namespace

void checkSize(const VisionTower& v, int64_t height, int64_t width) {
    const MaxVitTower& mx = v.maxvit;
    const int64_t stride = int64_t{2} << mx.stages.size();  // stem + one halving per stage
    const int64_t lastH = height / stride, lastW = width / stride;
    if (height % stride != 0 || width % stride != 0 || lastH == 0 || lastW == 0 || lastH % mx.partition != 0 || lastW % mx.partition != 0)
        throw InputError("pixels", "image size " + std::to_string(height) + "x" + std::to_string(width) +
                                       " does not tile into this MaxViT's partitions (sides must be multiples of " +
                                       std::to_string(stride * mx.partition) + ")");
}

VisionResult encode(const VisionTower& v, const at::Tensor& pixels) {
    const Pass p = run(v, pixels, false);
    VisionResult r;
    r.output = at::layer_norm(p.last.mean(1), {v.width}, v.normW, v.normB, v.normEps);
    const MaxVitTower& mx = v.maxvit;
    const at::Tensor pre = mx.preLogitsW.defined() ? at::tanh(at::linear(r.output, mx.preLogitsW, mx.preLogitsB)) : r.output;
    if (mx.preLogitsW.defined()) r.features = pre;
    if (v.headW.defined()) r.logits = at::linear(pre, v.headW, v.headB);
    return r;
}

at::Tensor lastTokens(const VisionTower& v, const at::Tensor& pixels, int* gridH, int* gridW) {
    const Pass p = run(v, pixels, false);
    if (gridH) *gridH = p.gh.back();
    if (gridW) *gridW = p.gw.back();
    return p.last;
}

std::vector<at::Tensor> readoutMaps(const VisionTower& v) {
    const MaxVitTower& mx = v.maxvit;
    const std::size_t stages = mx.stages.size();
    std::vector<at::Tensor> G(stages + 1);
    const at::Tensor m = at::diag(v.normW);
    at::Tensor g = m - m.mean(0, true);  // [C_last, E]
    for (std::size_t s = stages; s-- > 0;) {
        G[s] = g.unsqueeze(0).contiguous();
        const MbConv& first = mx.stages[s].convs.front();
        if (first.shortW.defined()) g = at::matmul(first.shortW.flatten(1).t(), g);  // [C_in, E]
    }
    G[stages] = g.unsqueeze(0).contiguous();  // the stem's level
    return G;
}

Decomposition decompose(const VisionTower& v, const DecompositionMaps& maps, const at::Tensor& pixels,
                        const DecomposeOptions& options) {
    const MaxVitTower& mx = v.maxvit;
    const Pass p = run(v, pixels, true);
    const int64_t batch = p.last.size(0), e = v.embedDim(), L = v.layers(), H = v.heads();
    const int64_t S = static_cast<int64_t>(mx.stages.size());
    const auto opts = p.last.options();
    // Readout weights per level (0 = stem, s + 1 = stage s), one class.
    const at::Tensor pooled = p.last.mean(1);
    const at::Tensor sigma = at::sqrt(pooled.var(1, false) + v.normEps);  // [B], frozen
    std::vector<at::Tensor> rho(static_cast<std::size_t>(S + 1));
    rho[static_cast<std::size_t>(S)] = (1.0 / (sigma * static_cast<double>(p.last.size(1)))).unsqueeze(1).expand({batch, p.last.size(1)}).contiguous();
    for (int64_t s = S; s > 0; --s) {
        const auto si = static_cast<std::size_t>(s);
        const at::Tensor coarse = rho[si].view({batch, p.gh[si], p.gw[si]});
        rho[si - 1] = poolTranspose(mx, coarse, p.gh[si - 1], p.gw[si - 1]).reshape({batch, -1});
    }
    auto zeros = [&](int64_t n) { return at::zeros({n}, opts.dtype(at::kLong)); };
    auto G = [&](int64_t level) { return level == 0 ? maps.swinG[static_cast<std::size_t>(S)] : maps.swinG[static_cast<std::size_t>(level - 1)]; };

    Decomposition dec;
    for (int64_t l = 0; l < L; ++l) dec.headCounts.push_back(v.headsIn(static_cast<int>(l)));
    dec.output = at::layer_norm(pooled, {v.width}, v.normW, v.normB, v.normEps);
    if (v.headW.defined()) {
        const at::Tensor pre = mx.preLogitsW.defined() ? at::tanh(at::linear(dec.output, mx.preLogitsW, mx.preLogitsB)) : dec.output;
        dec.logits = at::linear(pre, v.headW, v.headB);
    }
    dec.heads = options.tokens ? at::zeros({batch, L, H, p.embed.size(1) / 4, e}, opts) : at::zeros({batch, L, H, e}, opts);
    dec.attnBias = at::empty({batch, L, e}, opts);
    dec.mlps = at::empty({batch, L, e}, opts);
    int64_t blocks = 0;
    for (const MaxVitStage& st : mx.stages) blocks += st.depth;
    dec.convs = at::empty({batch, blocks, e}, opts);
    dec.layersPerConv = 2;
    dec.stageBias = at::zeros({batch, S, e}, opts);
    dec.stageBiasName = "shortcut_bias";
    dec.stageBiasFirst = 0;
    {
        StageTerms stem;
        stem.add(classPool(p.embed, rho[0], zeros(p.embed.size(1)), 1).unsqueeze(1));
        dec.embed = stem.through(G(0)).select(1, 0).contiguous();
    }
    at::Tensor headSum = at::zeros({batch, e}, opts);
    int64_t block = 0;
    for (int64_t s = 0; s < S; ++s) {
        const auto si = static_cast<std::size_t>(s);
        const MaxVitStage& st = mx.stages[si];
        const at::Tensor& w = rho[si + 1];
        const at::Tensor cls = zeros(w.size(1));
        const at::Tensor g = G(s + 1);
        const int64_t h = st.heads;
        StageTerms stage;
        const MbConv& first = st.convs.front();
        const int64_t biasAt = first.shortB.defined() ? stage.add((classWeights(w, cls, 1).unsqueeze(2) * first.shortB).unsqueeze(1)) : -1;
        std::vector<int64_t> convAt, headAt, attnAt, mlpAt;
        for (int b = 0; b < st.depth; ++b) {
            convAt.push_back(stage.add(classPool(p.convs[static_cast<std::size_t>(block + b)], w, cls, 1).unsqueeze(1)));
            for (int u = 0; u < 2; ++u) {
                const int64_t l = st.firstLayer + 2 * b + u;
                const auto li = static_cast<std::size_t>(l);
                const Block& bl = v.encoder.blocks[li];
                const BlockTerms t = addBlockTerms(stage, bl, p.units[li], p.geometries[li], w, cls, g, h, static_cast<int>(s),
                                                   options.tokens ? dec.heads.select(1, l).narrow(1, 0, h) : at::Tensor(),
                                                   options.tokenFactors && !options.tokens ? &dec.swinFactors : nullptr);
                headAt.push_back(t.heads);
                attnAt.push_back(t.bias);
                mlpAt.push_back(t.mlp);
            }
        }
        const at::Tensor terms = stage.through(g);  // [B, F, E]
        if (biasAt >= 0) dec.stageBias.select(1, s).copy_(terms.select(1, biasAt));
        for (int b = 0; b < st.depth; ++b) {
            dec.convs.select(1, block + b).copy_(terms.select(1, convAt[static_cast<std::size_t>(b)]));
            for (int u = 0; u < 2; ++u) {
                const auto i = static_cast<std::size_t>(2 * b + u);
                const int64_t l = st.firstLayer + 2 * b + u;
                const at::Tensor heads = terms.narrow(1, headAt[i], h);
                headSum.add_(heads.sum(1));
                if (!options.tokens) dec.heads.select(1, l).narrow(1, 0, h).copy_(heads);
                dec.attnBias.select(1, l).copy_(terms.select(1, attnAt[i]));
                dec.mlps.select(1, l).copy_(terms.select(1, mlpAt[i]));
            }
        }
        block += st.depth;
    }
    dec.postBias = v.normB.unsqueeze(0).expand({batch, e}).contiguous();
    dec.maxAbsError = sumIdentityError(dec, headSum, options.tokens);
    return dec;
}

Decomposition decomposeReference(const VisionTower& v, const at::Tensor& pixels, const DecomposeOptions& options) {
    const MaxVitTower& mx = v.maxvit;
    const int64_t S = static_cast<int64_t>(mx.stages.size());
    if (options.fromStage < 0 || options.fromStage >= S || options.fromBlock < 0 ||
        options.fromBlock >= mx.stages[static_cast<std::size_t>(options.fromStage)].depth)
        throw InputError("--from-block " + std::to_string(options.fromStage) + "," + std::to_string(options.fromBlock),
                         "is not a block of this MaxViT (" + std::to_string(S) + " stages)");
    const Pass p = run(v, pixels, true);
    const int64_t batch = p.last.size(0), L = v.layers();
    int64_t firstBlock = options.fromBlock, blocks = 0;
    for (int64_t s = 0; s < S; ++s) {
        if (s < options.fromStage) firstBlock += mx.stages[static_cast<std::size_t>(s)].depth;
        blocks += mx.stages[static_cast<std::size_t>(s)].depth;
    }
    vitdecompose::Fields fields;
    vitdecompose::TermIndex index;
    index.heads.assign(static_cast<std::size_t>(L), -1);
    index.mlps.assign(static_cast<std::size_t>(L), -1);
    index.convs.assign(static_cast<std::size_t>(blocks), -1);
    fields.add(p.blockIn[static_cast<std::size_t>(firstBlock)].unsqueeze(1));  // init
    int64_t block = 0;
    for (int64_t s = 0; s < S; ++s) {
        const MaxVitStage& st = mx.stages[static_cast<std::size_t>(s)];
        for (int b = 0; b < st.depth; ++b, ++block) {
            if (block < firstBlock) continue;
            const MbConv& c = st.convs[static_cast<std::size_t>(b)];
            if (c.stride > 1) {  // the shortcut's pool on every term
                const auto lvl = static_cast<std::size_t>(s);  // level s: the grid before stage s
                const int64_t gh = p.gh[lvl], gw = p.gw[lvl];
                fields.map([&](const at::Tensor& f) {
                    const at::Tensor grid = f.reshape({-1, gh, gw, f.size(3)}).permute({0, 3, 1, 2});
                    const at::Tensor pooled = pool(mx, grid);
                    return pooled.permute({0, 2, 3, 1}).reshape({batch, f.size(1), -1, f.size(3)});
                });
            }
            if (c.shortW.defined()) fields.linear(c.shortW.flatten(1), c.shortB);
            index.convs[static_cast<std::size_t>(block)] = fields.count();
            fields.add(p.convs[static_cast<std::size_t>(block)].unsqueeze(1));
            for (int u = 0; u < 2; ++u) {
                const auto li = static_cast<std::size_t>(st.firstLayer + 2 * b + u);
                index.heads[li] = fields.count();
                fields.add(vitdecompose::headFields(v.encoder.blocks[li], p.units[li], p.geometries[li], st.heads));
                index.mlps[li] = fields.count();
                fields.add(p.units[li].mlp.unsqueeze(1));
            }
        }
    }
    const at::Tensor terms = fields.meanOverTokens();  // [B, K, C]: the mean of the last tokens
    Decomposition dec;
    for (int64_t l = 0; l < L; ++l) dec.headCounts.push_back(v.headsIn(static_cast<int>(l)));
    dec.output = p.last.mean(1);
    if (v.headW.defined()) {
        const at::Tensor normed = at::layer_norm(dec.output, {v.width}, v.normW, v.normB, v.normEps);
        const at::Tensor pre = mx.preLogitsW.defined() ? at::tanh(at::linear(normed, mx.preLogitsW, mx.preLogitsB)) : normed;
        dec.logits = at::linear(pre, v.headW, v.headB);
    }
    dec.layersPerConv = 2;
    dec.stageBias = at::zeros({batch, S, terms.size(2)}, terms.options());
    dec.stageBiasName = "shortcut_bias";
    dec.stageBiasFirst = 0;
    vitdecompose::fill(dec, terms, index, fields.sum().mean(1), v.heads());
    return dec;
}

}  // namespace vitscope::maxvit
