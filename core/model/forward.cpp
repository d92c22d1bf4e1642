#include "model/forward.h"

#include "error.h"
#include "model/forward_maxvit.h"
#include "model/forward_swin.h"
#include "model/windows.h"
#include "parallel.h"
#include "runtime.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace vitscope {

namespace {

// What one block keeps for the decomposition (class-token query only).
struct LayerRecord {
    at::Tensor attnRow;  // [B, H, N]
    at::Tensor values;   // [B, H, N, dh]
    at::Tensor mlpCls;   // [B, D]
    // Attention-pooled models keep every token (the pool reads them all).
    at::Tensor attnFull;  // [B, H, N, N]
    at::Tensor mlpAll;    // [B, N, D]
    // Second-order neuron effects: the MLP's activations [B, N, M] (after the non-linearity).
    bool keepHidden = false;
    at::Tensor hidden;
};

using windows::activate;

// Attention without autograd on the CPU, split over the cores by (image, head range)
// (parallel.h): each part scales its q in the qkv buffer, lays out its v, and runs its scores,
// softmax and attention-weighted values while they are in cache, reading q and k as [N, dh]
// slices of qkv in place. The same operations as the general path, in the same order.
// qkv [B, N, 3D] -> scores (softmaxed) [B, H, N, N], v [B, H, N, dh], o [B, N, D].
void attendSplit(const at::Tensor& qkv, int64_t h, double qScale, const at::Tensor& mask, at::Tensor& scores, at::Tensor& v,
                 at::Tensor& o) {
    const int64_t batch = qkv.size(0), n = qkv.size(1), d = qkv.size(2) / 3, dh = d / h;
    scores = at::empty({batch, h, n, n}, qkv.options());
    v = at::empty({batch, h, n, dh}, qkv.options());
    o = at::empty({batch, n, d}, qkv.options());
    RECORD_FUNCTION("vitscope::attention", std::vector<c10::IValue>());  // one step in bench_decompose's breakdown
    auto heads = [&](const at::Tensor& rows, int64_t part, int64_t h0, int64_t count) {  // [N, count, dh] -> [count, N, dh]
        return rows.narrow(1, part * d + h0 * dh, count * dh).view({n, count, dh}).transpose(0, 1);
    };
    splitAcrossCores(batch * h, [&](int64_t begin, int64_t end) {
        for (int64_t u = begin; u < end;) {
            const int64_t i = u / h, h0 = u % h, count = std::min(h - h0, end - u);
            const at::Tensor rows = qkv.select(0, i);  // [N, 3D]
            const at::Tensor q = heads(rows, 0, h0, count).mul_(qScale);
            at::Tensor vi = v.select(0, i).narrow(0, h0, count);
            vi.copy_(heads(rows, 2, h0, count));
            at::Tensor si = scores.select(0, i).narrow(0, h0, count);
            at::bmm_out(si, q, heads(rows, 1, h0, count).transpose(1, 2));
            if (mask.defined()) si.add_(mask);
            at::_softmax_out(si, si, -1, false);
            heads(o.select(0, i), 0, h0, count).copy_(at::bmm(si, vi));
            u += count;
        }
    });
}

// Attention products smaller than this (multiply-adds of q k^T) run on one core: waking the split's
// workers costs more than it saves (one CLIP text: 8 x 77^2 x 64 = 3.0 M).
constexpr int64_t kSplitMinAttention = int64_t(1) << 23;

// Reduced-precision attention (model/precision.h) of qkv [B, N, 3D] in the reduced type:
// probabilities [B, H, N, N] fp32 (softmax in fp32), values [B, H, N, dh] as fp32 (the rounded
// values, for the decomposition) and the head outputs o [B, N, D] in the reduced type (undefined
// with exactRows Every: the caller forms them in fp32).
struct ReducedAttention {
    at::Tensor attn, values, o;
};

ReducedAttention attendReduced(const at::Tensor& qkv, const Encoder& enc, const at::Tensor& mask) {
    const int64_t batch = qkv.size(0), n = qkv.size(1), d = qkv.size(2) / 3, h = enc.heads, dh = d / h;
    const double qScale = 1.0 / std::sqrt(static_cast<double>(dh));
    ReducedAttention r;
    if (!enc.reducedAttention) {  // q, k, v to fp32: the fp32 attention of the rounded values
        // (Not split over the cores as the fp32 path is: the block's OpenMP team already spans them.)
        const at::Tensor qkvF = qkv.to(at::kFloat);
        const at::Tensor q = (qkvF.narrow(2, 0, d).view({batch, n, h, dh}).transpose(1, 2) * qScale).contiguous();
        const at::Tensor kT = qkvF.narrow(2, d, d).view({batch, n, h, dh}).permute({0, 2, 3, 1}).contiguous();
        r.values = qkvF.narrow(2, 2 * d, d).view({batch, n, h, dh}).transpose(1, 2).contiguous();
        at::Tensor scores = at::matmul(q, kT);
        if (mask.defined()) scores.add_(mask);
        r.attn = at::_softmax_out(scores, scores, -1, false);
        if (enc.exactRows != ExactRows::Every)
            r.o = at::matmul(r.attn, r.values).permute({0, 2, 1, 3}).reshape({batch, n, d}).to(qkv.scalar_type());
        return r;
    }
    const at::Tensor q = (qkv.narrow(2, 0, d).view({batch, n, h, dh}).transpose(1, 2) * qScale).contiguous();
    const at::Tensor kT = qkv.narrow(2, d, d).view({batch, n, h, dh}).permute({0, 2, 3, 1}).contiguous();
    const at::Tensor v = qkv.narrow(2, 2 * d, d).view({batch, n, h, dh}).transpose(1, 2).contiguous();
    at::Tensor scores = at::matmul(q, kT).to(at::kFloat);  // [B, H, N, N]
    if (mask.defined()) scores.add_(mask);
    r.attn = at::_softmax_out(scores, scores, -1, false);
    r.values = v.to(at::kFloat);
    if (enc.exactRows != ExactRows::Every)
        r.o = at::matmul(r.attn.to(qkv.scalar_type()), v).permute({0, 2, 1, 3}).reshape({batch, n, d});
    return r;
}

// The attention branch's output [B, N, D] fp32 (before LayerScale): through the reduced weights,
// with the rows of enc.exactRows formed and projected in fp32 (precision.h says why).
at::Tensor reducedAttentionOutput(const Block& b, const Encoder& enc, const ReducedAttention& r) {
    const int64_t batch = r.attn.size(0), h = r.attn.size(1), n = r.attn.size(2), dh = r.values.size(3);
    if (enc.exactRows == ExactRows::Every) {
        const at::Tensor o = at::matmul(r.attn, r.values).permute({0, 2, 1, 3}).reshape({batch, n, h * dh});
        return at::linear(o, b.outW, b.outB);
    }
    at::Tensor a = at::linear(r.o, b.outWr, b.outBr).to(at::kFloat);
    if (enc.exactRows == ExactRows::ClassToken) {
        const at::Tensor oCls = at::matmul(r.attn.narrow(2, 0, 1), r.values).reshape({batch, h * dh});  // [B, D]
        a.select(1, 0).copy_(at::linear(oCls, b.outW, b.outB));
    }
    return a;
}

// runBlock with the block's reduced weights (no autograd): LayerNorm in fp32, products in the
// reduced type, the residual stream and the records in fp32.
at::Tensor runBlockReduced(const Block& b, const Encoder& enc, const at::Tensor& x, const at::Tensor& mask, LayerRecord* rec,
                           at::Tensor* fullAttention, bool allTokens) {
    const ReducedPrecisionThreads threads;
    const int64_t d = x.size(2);
    const at::ScalarType type = b.qkvWr.scalar_type();
    const at::Tensor qkv = at::linear(at::layer_norm(x, {d}, b.ln1W, b.ln1B, enc.eps).to(type), b.qkvWr, b.qkvBr);
    const ReducedAttention r = attendReduced(qkv, enc, mask);
    if (fullAttention) *fullAttention = r.attn;
    at::Tensor a = reducedAttentionOutput(b, enc, r);
    if (b.ls1.defined()) a.mul_(b.ls1);
    at::Tensor x1 = a.add_(x);
    at::Tensor hidden = windows::activate(at::linear(at::layer_norm(x1, {d}, b.ln2W, b.ln2B, enc.eps).to(type), b.fc1Wr, b.fc1Br), enc.activation);
    if (b.registerNeurons.defined()) hidden = activateOnRegisters(hidden, b.registerNeurons, enc.testTimeRegisters);
    if (rec && rec->keepHidden) rec->hidden = hidden.to(at::kFloat);
    at::Tensor m = at::linear(hidden, b.fc2Wr, b.fc2Br).to(at::kFloat);
    if (b.ls2.defined()) m.mul_(b.ls2);
    if (rec && allTokens) {
        rec->attnFull = r.attn;
        rec->values = r.values;
        rec->mlpAll = m;
    } else if (rec) {
        rec->attnRow = r.attn.select(2, 0).contiguous();
        rec->values = r.values;
        rec->mlpCls = m.select(1, 0).contiguous();
    }
    return x1.add_(m);
}

at::Tensor runBlock(const Block& b, const Encoder& enc, const at::Tensor& x, const at::Tensor& mask, LayerRecord* rec,
                    at::Tensor* fullAttention = nullptr, bool allTokens = false, BlockTaps* taps = nullptr) {
    if (b.reduced() && !taps && !(at::GradMode::is_enabled() && x.requires_grad()))
        return runBlockReduced(b, enc, x, mask, rec, fullAttention, allTokens);
    const int64_t batch = x.size(0), n = x.size(1), d = x.size(2);
    const int64_t h = enc.heads, dh = d / h;
    at::Tensor y = at::layer_norm(x, {d}, b.ln1W, b.ln1B, enc.eps);
    const at::Tensor qkv = at::linear(y, b.qkvW, b.qkvB);  // [B, N, 3D]
    // Without autograd the block reuses its own fresh tensors (softmax over the scores, the
    // residual adds into the projections): fewer live tensors at a batch, the same bits.
    const bool inPlace = !taps && !(at::GradMode::is_enabled() && (x.requires_grad() || b.qkvW.requires_grad()));
    const double qScale = 1.0 / std::sqrt(static_cast<double>(dh));
    at::Tensor attn, v, o;
    if (inPlace && qkv.is_cpu() && qkv.is_contiguous() && (!mask.defined() || mask.dim() == 2) &&
        batch * h * n * n * dh >= kSplitMinAttention && splitParts() > 1) {
        attendSplit(qkv, h, qScale, mask, attn, v, o);
    } else {
        // q (scaled), k^T and v each copied once into the layout its product reads contiguously
        // ([B, H, N, dh], [B, H, dh, N], [B, H, N, dh]): 40% less attention time at batch 1 than
        // at::matmul on the strided 4-D views (bench_decompose's breakdown, session 7).
        const at::Tensor qView = qkv.narrow(2, 0, d).view({batch, n, h, dh}).transpose(1, 2);
        at::Tensor q;
        if (inPlace) {
            q = at::empty({batch, h, n, dh}, qkv.options());  // scaled and laid out in one pass
            at::mul_out(q, qView, at::Scalar(qScale));
        } else {
            q = (qView * qScale).contiguous();
        }
        const at::Tensor kT = qkv.narrow(2, d, d).view({batch, n, h, dh}).permute({0, 2, 3, 1}).contiguous();
        v = qkv.narrow(2, 2 * d, d).view({batch, n, h, dh}).transpose(1, 2).contiguous();  // [B, H, N, dh]
        at::Tensor scores = at::matmul(q, kT);                                            // [B, H, N, N]
        if (mask.defined()) scores = inPlace ? scores.add_(mask) : scores + mask;
        attn = inPlace ? at::_softmax_out(scores, scores, -1, false) : at::softmax(scores, -1);
        if (taps) {
            if (taps->attentionLeaf) attn = attn.detach().requires_grad_(true);
            taps->normed = y;
            taps->attention = attn;
        }
        o = at::matmul(attn, v).permute({0, 2, 1, 3}).reshape({batch, n, d});
    }
    if (fullAttention) *fullAttention = attn;
    at::Tensor a = at::linear(o, b.outW, b.outB);
    if (b.ls1.defined()) a = inPlace ? a.mul_(b.ls1) : a * b.ls1;
    at::Tensor x1 = inPlace ? a.add_(x) : x + a;
    at::Tensor m;
    if ((rec && rec->keepHidden) || b.registerNeurons.defined()) {
        at::Tensor hidden = windows::activate(at::linear(at::layer_norm(x1, {d}, b.ln2W, b.ln2B, enc.eps), b.fc1W, b.fc1B), enc.activation);
        if (b.registerNeurons.defined()) hidden = activateOnRegisters(hidden, b.registerNeurons, enc.testTimeRegisters);
        if (rec && rec->keepHidden) rec->hidden = hidden;
        m = at::linear(hidden, b.fc2W, b.fc2B);
    } else {
        m = windows::mlp(at::layer_norm(x1, {d}, b.ln2W, b.ln2B, enc.eps), b.fc1W, b.fc1B, b.fc2W, b.fc2B, enc.activation, true);
    }
    if (b.ls2.defined()) m = inPlace ? m.mul_(b.ls2) : m * b.ls2;
    if (rec && allTokens) {
        rec->attnFull = attn;
        rec->values = v;
        rec->mlpAll = m;
    } else if (rec) {
        rec->attnRow = attn.select(2, 0).contiguous();
        rec->values = v;
        rec->mlpCls = m.select(1, 0).contiguous();
    }
    return inPlace ? x1.add_(m) : x1 + m;
}

// The attention-pooling head over a final residual x [B, N, D].
struct PoolPass {
    at::Tensor normed;   // [B, N, D] final norm of every token
    at::Tensor attn;     // [B, P, N]
    at::Tensor values;   // [B, P, N, dh] (value bias included)
    at::Tensor attnOut;  // [B, D] after the output projection (bias included)
    at::Tensor mlp;      // [B, D]
    at::Tensor output;   // [B, D]
};

// The MAP MLP (it uses the tower's activation) on the attention output a [..., D].
at::Tensor poolMlp(const VisionTower& v, const at::Tensor& a) {
    const AttentionPool& p = v.pool;
    const int64_t d = a.size(-1);
    return windows::mlp(at::layer_norm(a, {d}, p.lnW, p.lnB, p.eps), p.fc1W, p.fc1B, p.fc2W, p.fc2B, v.encoder.activation, false);
}

PoolPass runPool(const VisionTower& v, const at::Tensor& x, bool attentionLeaf = false, bool finalNorm = true) {
    const AttentionPool& p = v.pool;
    const int64_t batch = x.size(0), n = x.size(1), d = v.width, h = p.heads, dh = d / h;
    PoolPass r;
    r.normed = finalNorm ? at::layer_norm(x, {d}, v.normW, v.normB, v.normEps) : x;
    const at::Tensor q = at::linear(p.probe, p.qkvW.narrow(0, 0, d), p.qkvB.narrow(0, 0, d)).view({h, 1, dh}) *
                         (1.0 / std::sqrt(static_cast<double>(dh)));
    const at::Tensor kv = at::linear(r.normed, p.qkvW.narrow(0, d, 2 * d), p.qkvB.narrow(0, d, 2 * d)).view({batch, n, 2, h, dh});
    const at::Tensor k = kv.select(2, 0).permute({0, 2, 1, 3});              // [B, P, N, dh]
    r.values = kv.select(2, 1).permute({0, 2, 1, 3}).contiguous();           // [B, P, N, dh]
    r.attn = at::softmax(at::matmul(q.unsqueeze(0), k.transpose(-2, -1)).squeeze(2), -1);  // [B, P, N]
    if (attentionLeaf) r.attn = r.attn.detach().requires_grad_(true);
    const at::Tensor o = at::matmul(r.attn.unsqueeze(2), r.values).squeeze(2).reshape({batch, d});
    r.attnOut = at::linear(o, p.outW, p.outB);
    r.mlp = poolMlp(v, r.attnOut);
    r.output = r.attnOut + r.mlp;
    return r;
}

void checkPixels(const VisionTower& v, const at::Tensor& pixels) {
    if (pixels.dim() != 4 || pixels.size(1) != 3)
        throw InputError("pixels", "expected [B, 3, H, W], got " + std::to_string(pixels.dim()) + "-D tensor");
    if (!at::isFloatingType(pixels.scalar_type())) throw InputError("pixels", "expected floating-point pixels");
    if (pixels.size(0) == 0) throw InputError("pixels", "empty batch");
    if (pixels.size(2) % v.patchSize != 0 || pixels.size(3) % v.patchSize != 0 || pixels.size(2) == 0 ||
        pixels.size(3) == 0)
        throw InputError("pixels", "image size " + std::to_string(pixels.size(2)) + "x" + std::to_string(pixels.size(3)) +
                                       " is not a multiple of the patch size " + std::to_string(v.patchSize));
}

// The residual stream entering block 0: [B, N, D] (after ln_pre where the model has one).
at::Tensor embedTokens(const VisionTower& v, const at::Tensor& pixels) {
    checkPixels(v, pixels);
    const at::Tensor px = pixels.to(v.patchW.device(), at::kFloat);
    const int64_t batch = px.size(0), d = v.width;
    const int gh = static_cast<int>(px.size(2)) / v.patchSize, gw = static_cast<int>(px.size(3)) / v.patchSize;
    at::Tensor patches = at::conv2d(px, v.patchW, v.patchB, {v.patchSize, v.patchSize});  // [B, D, gh, gw]
    patches = patches.flatten(2).transpose(1, 2);                                         // [B, G, D]
    const at::Tensor pos = positionEmbeddings(v, gh, gw);
    std::vector<at::Tensor> prefix;
    if (v.cls.defined()) prefix.push_back(v.cls.view({1, 1, d}).expand({batch, 1, d}));
    if (v.extraPrefix.defined()) prefix.push_back(v.extraPrefix.unsqueeze(0).expand({batch, -1, d}));
    at::Tensor x;
    if (v.posPrefix == 0) {
        patches = patches + pos.unsqueeze(0);
        prefix.push_back(patches);
        x = at::cat(prefix, 1);
    } else {
        prefix.push_back(patches);
        x = at::cat(prefix, 1) + pos.unsqueeze(0);
    }
    if (v.registers.defined()) {
        const int64_t q = (v.cls.defined() ? 1 : 0) + v.numExtraPrefix();
        x = at::cat({x.narrow(1, 0, q), v.registers.unsqueeze(0).expand({batch, -1, d}), x.narrow(1, q, x.size(1) - q)}, 1);
    }
    // Test-time registers: zero tokens after every other token, before ln_pre (the reference appends
    // them to the position-embedded tokens).
    if (v.suffixTokens() > 0) x = at::cat({x, at::zeros({batch, v.suffixTokens(), d}, x.options())}, 1);
    if (v.lnPreW.defined()) x = at::layer_norm(x, {d}, v.lnPreW, v.lnPreB, v.encoder.eps);
    return x;
}

at::Tensor projection(const VisionTower& v) {
    return v.proj.defined() ? v.proj : at::eye(v.width, v.normW.options());
}

VisionResult finish(const VisionTower& v, const at::Tensor& x) {
    VisionResult r;
    if (v.pool.defined()) {
        r.output = runPool(v, x).output;
        if (v.headW.defined()) r.logits = at::linear(r.output, v.headW, v.headB);
        return r;
    }
    at::Tensor cls = at::layer_norm(x.select(1, 0), {v.width}, v.normW, v.normB, v.normEps);
    r.output = v.proj.defined() ? at::matmul(cls, v.proj) : cls;
    if (v.headW.defined()) r.logits = at::linear(cls, v.headW, v.headB);
    return r;
}

// Both decompositions of an attention-pooled model's output (forward.h, Decomposition).
Decomposition decomposePooled(const VisionTower& v, const DecompositionMaps& maps, const at::Tensor& pixels,
                              const DecomposeOptions& options) {
    at::Tensor x = embedTokens(v, pixels);
    const at::Tensor x0 = x;
    std::vector<LayerRecord> records(v.encoder.blocks.size());
    for (std::size_t l = 0; l < v.encoder.blocks.size(); ++l)
        x = runBlock(v.encoder.blocks[l], v.encoder, x, at::Tensor(), &records[l], nullptr, true);
    const PoolPass pool = runPool(v, x);
    const AttentionPool& p = v.pool;
    const int64_t batch = x.size(0), n = x.size(1), d = v.width, e = d, L = v.layers(), H = v.heads();
    const int64_t P = p.heads, dp = d / P;

    Decomposition dec;
    dec.output = pool.output;
    if (v.headW.defined()) dec.logits = at::linear(pool.output, v.headW, v.headB);
    const at::Tensor wo = p.outW;  // [E, D]: pool head q's slice is columns q*dp..
    // TextSpan's level: pooling head q through token t = a[q, t] * value_t[q] through W_O's slice.
    const at::Tensor woHeads = wo.t().reshape({P, dp, e});  // [P, dp, E]
    const bool factors = options.tokenFactors && !options.tokens;
    if (options.tokens || factors) {
        const at::Tensor scaled = pool.values * pool.attn.unsqueeze(-1);  // [B, P, N, dp]
        dec.poolHeads = at::matmul(scaled, woHeads.unsqueeze(0));         // [B, P, N, E]
    } else {
        const at::Tensor o = at::matmul(pool.attn.unsqueeze(2), pool.values);  // [B, P, 1, dp]
        dec.poolHeads = at::matmul(o, woHeads.unsqueeze(0)).squeeze(2);         // [B, P, E]
    }
    dec.poolBias = p.outB.unsqueeze(0).expand({batch, e}).contiguous();
    dec.poolMlp = pool.mlp;

    // Through the encoder: a write c_t at every token reaches the output as
    // sum_q (sum_t w[q, t] c_t) Mv[:, q] W_O[:, q]^T, w = a / sigma_t, Mv = C diag(gamma) W_V^T.
    const at::Tensor sigma = at::sqrt(x.var(2, false) + v.normEps);  // [B, N], frozen
    const at::Tensor w = pool.attn / sigma.unsqueeze(1);              // [B, P, N]
    const at::Tensor wv = p.qkvW.narrow(0, 2 * d, d), bv = p.qkvB.narrow(0, 2 * d, d);
    const at::Tensor& mv = maps.poolMv;  // [D, P, dp]
    // mixed [B, P, D] -> [B, E]
    auto through = [&](const at::Tensor& mixed) {
        const at::Tensor z = at::einsum("bpd,dpk->bpk", {mixed, mv});  // [B, P, dp]
        return at::matmul(z.reshape({batch, d}), wo.t());
    };
    dec.embed = through(at::bmm(w, x0));
    dec.heads = options.tokens ? at::empty({batch, L, H, n, e}, x.options()) : at::empty({batch, L, H, e}, x.options());
    dec.attnBias = at::empty({batch, L, e}, x.options());
    dec.mlps = at::empty({batch, L, e}, x.options());
    at::Tensor headSum = at::zeros({batch, e}, x.options());
    const at::Tensor wSum = w.sum(2, true);  // [B, P, 1]
    for (int64_t l = 0; l < L; ++l) {
        const Block& b = v.encoder.blocks[static_cast<std::size_t>(l)];
        const LayerRecord& rec = records[static_cast<std::size_t>(l)];
        const at::Tensor boL = b.ls1.defined() ? b.outB * b.ls1 : b.outB;
        dec.attnBias.select(1, l).copy_(through(wSum * boL.view({1, 1, d})));
        dec.mlps.select(1, l).copy_(through(at::bmm(w, rec.mlpAll)));
        const at::Tensor& q = maps.poolQ[static_cast<std::size_t>(l)];  // [H, P, dh, dp]
        const at::Tensor r = at::einsum("bpt,bhts->bphs", {w, rec.attnFull});  // [B, P, H, N]
        if (factors) {
            dec.poolTokenMix.push_back(r);
            dec.poolTokenValues.push_back(rec.values);
        }
        if (options.tokens) {
            for (int64_t i = 0; i < batch; ++i) {
                const at::Tensor vq = at::einsum("hsk,hpkj->hspj", {rec.values[i], q});         // [H, N, P, dp]
                const at::Tensor scaled = vq * r[i].permute({1, 2, 0}).unsqueeze(-1);           // [H, N, P, dp]
                at::Tensor out = dec.heads.select(0, i).select(0, l);                           // [H, N, E]
                at::matmul_out(out, scaled.reshape({H, n, d}), wo.t());
                headSum.select(0, i).add_(out.sum(at::IntArrayRef{0, 1}));
            }
        } else {
            const at::Tensor u = at::matmul(r.unsqueeze(3), rec.values.unsqueeze(1)).squeeze(3);  // [B, P, H, dh]
            const at::Tensor z = at::einsum("bphk,hpkj->bhpj", {u, q});           // [B, H, P, dp]
            const at::Tensor terms = at::matmul(z.reshape({batch, H, d}), wo.t());  // [B, H, E]
            dec.heads.select(1, l).copy_(terms);
            headSum.add_(terms.sum(1));
        }
    }
    // Constant: sum_t a[q, t] = 1, so the final norm's offset and the value bias pass whole.
    const at::Tensor constant = at::matmul(at::matmul(v.normB, wv.t()) + bv, wo.t()) + p.outB;
    dec.postBias = constant.unsqueeze(0).expand({batch, e}).contiguous();

    const at::Tensor total2 = dec.embed + headSum + dec.attnBias.sum(1) + dec.mlps.sum(1) + dec.postBias + dec.poolMlp;
    const at::Tensor poolSum = dec.poolHeads.dim() == 4 ? dec.poolHeads.sum(at::IntArrayRef{1, 2}) : dec.poolHeads.sum(1);
    const at::Tensor total1 = poolSum + dec.poolBias + dec.poolMlp;
    dec.maxAbsError = std::max((total2 - dec.output).abs().max().item<double>(), (total1 - dec.output).abs().max().item<double>());
    return dec;
}

}  // namespace

at::Tensor termsByComponent(const Decomposition& dec, std::vector<std::string>* names) {
    const at::Tensor heads = dec.heads.dim() == 5 ? dec.heads.sum(3) : dec.heads;  // [B, L, H, E]
    const int64_t L = heads.size(1), H = heads.size(2);
    const bool reference = dec.convention == Convention::VitDecompose;  // init, heads, MLPs, MBConvs; no biases
    std::vector<at::Tensor> parts{dec.embed.unsqueeze(1)};
    if (names) names->assign({reference ? "init" : "embed"});
    for (int64_t l = reference ? dec.firstLayer : 0; l < L; ++l) {
        if (dec.convs.defined() && dec.layersPerConv > 0 && l % dec.layersPerConv == 0) {
            const int64_t k = l / dec.layersPerConv;
            parts.push_back(dec.convs.select(1, k).unsqueeze(1));
            if (names) names->push_back("conv." + std::to_string(k));
        }
        const int64_t hl = dec.headsIn(l);
        parts.push_back(heads.select(1, l).narrow(1, 0, hl));
        if (!reference) parts.push_back(dec.attnBias.select(1, l).unsqueeze(1));
        parts.push_back(dec.mlps.select(1, l).unsqueeze(1));
        if (!names) continue;
        for (int64_t h = 0; h < hl; ++h) names->push_back(std::to_string(l) + "." + std::to_string(h));
        if (!reference) names->push_back("attn_bias." + std::to_string(l));
        names->push_back("mlp." + std::to_string(l));
    }
    if (reference) return at::cat(parts, 1);
    if (dec.stageBias.defined())
        for (int64_t s = 0; s < dec.stageBias.size(1); ++s) {
            parts.push_back(dec.stageBias.select(1, s).unsqueeze(1));
            if (names) names->push_back(dec.stageBiasName + "." + std::to_string(s + dec.stageBiasFirst));
        }
    parts.push_back(dec.postBias.unsqueeze(1));
    if (names) names->push_back("post_bias");
    if (dec.pooled()) {
        parts.push_back(dec.poolMlp.unsqueeze(1));
        if (names) names->push_back("pool.mlp");
    }
    return at::cat(parts, 1);
}

std::vector<int> headsPerLayer(const VisionTower& v) {
    std::vector<int> out;
    for (int l = 0; l < v.layers(); ++l) out.push_back(v.headsIn(l));
    return out;
}

at::Tensor poolTermsByComponent(const Decomposition& dec, std::vector<std::string>* names) {
    if (!dec.pooled()) throw InputError("decomposition", "the model has no attention-pooling head");
    const at::Tensor heads = dec.poolHeads.dim() == 4 ? dec.poolHeads.sum(2) : dec.poolHeads;  // [B, P, E]
    if (names) {
        names->clear();
        for (int64_t p = 0; p < heads.size(1); ++p) names->push_back("pool.h" + std::to_string(p));
        names->push_back("pool.bias");
        names->push_back("pool.mlp");
    }
    return at::cat({heads, dec.poolBias.unsqueeze(1), dec.poolMlp.unsqueeze(1)}, 1);
}

const char* conventionName(Convention c) {
    switch (c) {
    case Convention::Exact: return "exact";
    case Convention::TextSpan: return "textspan";
    case Convention::VitDecompose: return "vit-decompose";
    }
    return "exact";
}

Convention parseConvention(const std::string& name) {
    if (name == "exact") return Convention::Exact;
    if (name == "textspan") return Convention::TextSpan;
    if (name == "vit-decompose") return Convention::VitDecompose;
    throw InputError("--convention", "unknown convention '" + name + "' (exact, textspan or vit-decompose)");
}

void parseFromBlock(const std::string& text, int* stage, int* block) {
    const auto comma = text.find(',');
    auto number = [&](const std::string& part) {
        if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos)
            throw InputError("--from-block " + text, "expected STAGE,BLOCK (two non-negative integers, e.g. 2,14)");
        return std::stoi(part);
    };
    if (comma == std::string::npos) number("");
    *stage = number(text.substr(0, comma));
    *block = number(text.substr(comma + 1));
}

const DecompositionMaps& decompositionMaps(const Model& model, Convention convention) {
    auto& slot = model.mapsCache[convention == Convention::Exact ? 0 : 1];
    if (slot && slot->P.device() == model.vision.normW.device()) return *slot;
    const VisionTower& v = model.vision;
    auto maps = std::make_shared<DecompositionMaps>();
    if (v.hierarchical()) {
        // vitscope's exact readout maps, used for exact and textspan alike (TextSpan has no Swin /
        // MaxViT convention). vit-decompose's terms are not these (vit_decompose.h): they need no maps.
        maps->P = at::eye(v.width, v.normW.options());
        maps->swinG = v.maxvit.defined() ? maxvit::readoutMaps(v) : swin::readoutMaps(v);
        slot = maps;
        return *slot;
    }
    maps->P = projection(v);
    const at::Tensor M = v.normW.unsqueeze(1) * maps->P;  // diag(gamma) P
    maps->G = convention == Convention::Exact ? M - M.mean(0, true) : M;
    const int64_t h = v.heads(), dh = v.width / h;
    if (v.pool.defined()) {
        // Model-only maps of the decomposition through the pool (decomposePooled); computing
        // them costs D^3 per layer, more than a batch-1 forward of the pool itself.
        const int64_t d = v.width, P = v.pool.heads, dp = d / P;
        const at::Tensor m0 = v.normW.unsqueeze(1) * v.pool.qkvW.narrow(0, 2 * d, d).t();  // diag(gamma) W_V^T
        maps->poolMv = (m0 - m0.mean(0, true)).view({d, P, dp}).contiguous();
        for (const Block& b : v.encoder.blocks) {
            const at::Tensor woL = b.ls1.defined() ? b.outW * b.ls1.unsqueeze(1) : b.outW;
            maps->poolQ.push_back(at::einsum("dhk,dpj->hpkj", {woL.view({d, h, dh}), maps->poolMv}).contiguous());
        }
        slot = maps;
        return *slot;
    }
    for (const Block& b : v.encoder.blocks) {
        // LayerScale multiplies the branch output: fold it into W_O and b_O.
        const at::Tensor wo = b.ls1.defined() ? b.outW * b.ls1.unsqueeze(1) : b.outW;  // [D, D]
        const at::Tensor bo = b.ls1.defined() ? b.outB * b.ls1 : b.outB;              // [D]
        maps->headMaps.push_back(at::matmul(wo.t(), maps->G).view({h, dh, maps->G.size(1)}).contiguous());
        maps->biasTerms.push_back(at::matmul(bo, maps->G));
    }
    slot = maps;
    return *slot;
}

at::Tensor positionEmbeddings(const VisionTower& v, int gh, int gw) {
    const int64_t d = v.width;
    const int64_t g = v.pos.size(0) - v.posPrefix;
    const auto native = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(g))));
    if (gh == native && gw == native) return v.pos;
    at::Tensor grid = v.pos.narrow(0, v.posPrefix, g).reshape({1, native, native, d}).permute({0, 3, 1, 2});
    grid = v.posAntialias ? at::_upsample_bicubic2d_aa(grid, {gh, gw}, false) : at::upsample_bicubic2d(grid, {gh, gw}, false);
    grid = grid.permute({0, 2, 3, 1}).reshape({gh * gw, d});
    return v.posPrefix > 0 ? at::cat({v.pos.narrow(0, 0, v.posPrefix), grid}) : grid;
}

void setInputSize(Model& model, int size) {
    VisionTower& v = model.vision;
    if (v.hierarchical())
        throw InputError(model.info.weightsPath, "--input-size resamples a plain ViT's position embeddings; Swin and MaxViT have none to resample");
    if (size <= 0 || v.patchSize <= 0 || size % v.patchSize != 0)
        throw InputError("--input-size " + std::to_string(size), "must be a positive multiple of the patch size " + std::to_string(v.patchSize));
    v.posAntialias = true;
    model.preprocess.imageSize = size;
    model.preprocess.resizeShortest = size;
    model.preprocess.squash = true;
}

VisionResult encodeImages(const Model& model, const at::Tensor& pixels) {
    const VisionTower& v = model.vision;
    if (v.maxvit.defined()) return maxvit::encode(v, pixels);
    if (v.hierarchical()) return swin::encode(v, pixels);
    at::Tensor x = embedTokens(v, pixels);
    for (const Block& b : v.encoder.blocks) x = runBlock(b, v.encoder, x, at::Tensor(), nullptr);
    return finish(v, x);
}

Decomposition decomposeImages(const Model& model, const at::Tensor& pixels, const DecomposeOptions& options) {
    const VisionTower& v = model.vision;
    // The reference's SigLIP decomposition uses the raw terms (no final norm to share, no
    // division by the output's norm): both conventions give the exact terms there.
    if (options.convention == Convention::VitDecompose) {
        if (!v.hierarchical())
            throw InputError("--convention vit-decompose", "is built for Swin and MaxViT only; this is a " + model.info.family + " model");
        if (options.tokens) throw InputError("--tokens", "per-token terms are not built under --convention vit-decompose");
        return v.maxvit.defined() ? maxvit::decomposeReference(v, pixels, options) : swin::decomposeReference(v, pixels, options);
    }
    if (options.fromStage != 0 || options.fromBlock != 0)
        throw InputError("--from-block", "is vit-decompose's detach block: it needs --convention vit-decompose");
    if (v.pool.defined()) return decomposePooled(v, decompositionMaps(model, Convention::Exact), pixels, options);
    if (v.maxvit.defined()) return maxvit::decompose(v, decompositionMaps(model, Convention::Exact), pixels, options);
    if (v.hierarchical()) return swin::decompose(v, decompositionMaps(model, Convention::Exact), pixels, options);
    at::Tensor x = embedTokens(v, pixels);
    const at::Tensor embedCls = x.select(1, 0);
    std::vector<LayerRecord> records(v.encoder.blocks.size());
    for (std::size_t l = 0; l < v.encoder.blocks.size(); ++l)
        x = runBlock(v.encoder.blocks[l], v.encoder, x, at::Tensor(), &records[l]);
    const VisionResult result = finish(v, x);

    const int64_t batch = x.size(0), n = x.size(1), L = v.layers(), H = v.heads();
    const at::Tensor z = x.select(1, 0);  // [B, D] final class-token residual
    const at::Tensor sigma = at::sqrt(z.var(1, false) + v.normEps).unsqueeze(1);  // [B, 1], frozen
    const bool exact = options.convention == Convention::Exact;
    const DecompositionMaps& maps = decompositionMaps(model, options.convention);
    const at::Tensor& P = maps.P;
    const at::Tensor& G = maps.G;
    const int64_t e = P.size(1);
    const at::Tensor invSigma = 1.0 / sigma;  // [B, 1]

    Decomposition dec;
    dec.output = result.output;
    dec.logits = result.logits;
    // Textspan: the final norm's mean and offset, shared over the 2L+1 layer-level terms.
    at::Tensor share = at::zeros({batch, e}, P.options());
    if (!exact) {
        const at::Tensor meanTerm = (-z.mean(1, true) * invSigma) * v.normW.unsqueeze(0) + v.normB.unsqueeze(0);
        share = at::matmul(meanTerm, P) / static_cast<double>(2 * L + 1);
    }
    dec.embed = at::matmul(embedCls, G) * invSigma + share;
    dec.heads = options.tokens ? at::empty({batch, L, H, n, e}, P.options()) : at::empty({batch, L, H, e}, P.options());
    dec.attnBias = at::empty({batch, L, e}, P.options());
    dec.mlps = at::empty({batch, L, e}, P.options());
    // Sum of the head terms, accumulated while each block is still in cache (the sum identity
    // check must not read the whole per-token tensor again).
    at::Tensor headSum = at::zeros({batch, e}, P.options());
    for (int64_t l = 0; l < L; ++l) {
        const at::Tensor& F = maps.headMaps[static_cast<std::size_t>(l)];  // [H, dh, E]
        const LayerRecord& rec = records[static_cast<std::size_t>(l)];
        at::Tensor biasTerm = maps.biasTerms[static_cast<std::size_t>(l)].unsqueeze(0) * invSigma;  // [B, E]
        at::Tensor headShare;                                             // textspan: per head(-token) share
        if (!exact) headShare = (share + biasTerm) / static_cast<double>(options.tokens ? H * n : H);
        if (options.tokens) {
            // [B, H, N, dh] scaled by A / sigma, then through F per head: [H, N, E] per image.
            const at::Tensor scaled = rec.values * (rec.attnRow * invSigma.view({batch, 1, 1})).unsqueeze(-1);
            for (int64_t i = 0; i < batch; ++i) {
                at::Tensor out = dec.heads.select(0, i).select(0, l);  // [H, N, E], contiguous
                at::bmm_out(out, scaled.select(0, i), F);
                if (!exact) out.add_(headShare.select(0, i));
                headSum.select(0, i).add_(out.sum(at::IntArrayRef{0, 1}));
            }
        } else {
            const at::Tensor pooled = at::matmul(rec.attnRow.unsqueeze(2), rec.values);  // [B, H, 1, dh]
            at::Tensor terms = at::matmul(pooled, F).squeeze(2) * invSigma.unsqueeze(2);  // [B, H, E]
            if (!exact) terms = terms + headShare.unsqueeze(1);
            dec.heads.select(1, l).copy_(terms);
            headSum.add_(terms.sum(1));
        }
        dec.attnBias.select(1, l).copy_(exact ? biasTerm : at::zeros_like(biasTerm));
        dec.mlps.select(1, l).copy_(at::matmul(rec.mlpCls, G) * invSigma + share);
    }
    dec.postBias = exact ? at::matmul(v.normB, P).unsqueeze(0).expand({batch, e}).contiguous() : at::zeros({batch, e}, P.options());
    if (!exact) {
        const at::Tensor norm = result.output.norm(2, 1, true);  // [B, 1]
        dec.output = result.output / norm;
        dec.embed /= norm;
        dec.mlps /= norm.unsqueeze(1);
        dec.heads /= options.tokens ? norm.view({batch, 1, 1, 1, 1}) : norm.view({batch, 1, 1, 1});
        headSum /= norm;
    }
    const at::Tensor total = dec.embed + headSum + dec.attnBias.sum(1) + dec.mlps.sum(1) + dec.postBias;
    dec.maxAbsError = (total - dec.output).abs().max().item<double>();
    return dec;
}

NeuronTrace traceNeurons(const Model& model, const at::Tensor& pixels, int layer) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError(model.info.weightsPath, "second-order neuron effects need a plain ViT with a class token (not Swin, MaxViT or SigLIP)");
    if (layer < 0 || layer >= v.layers())
        throw InputError("--layer " + std::to_string(layer), "is not a layer of this model (0.." + std::to_string(v.layers() - 1) + ")");
    NeuronTrace t;
    t.layer = layer;
    at::Tensor x = embedTokens(v, pixels);
    const int64_t d = v.width;
    for (int l = 0; l < v.layers(); ++l) {
        LayerRecord rec;
        rec.keepHidden = l == layer;
        if (l > layer) {
            // ln_1's statistics at every token, as the forward computes them (biased variance).
            t.lnMean.push_back(x.mean(2));
            t.lnSigma.push_back(at::sqrt(x.var(2, false) + v.encoder.eps));
        }
        x = runBlock(v.encoder.blocks[static_cast<std::size_t>(l)], v.encoder, x, at::Tensor(), l >= layer ? &rec : nullptr);
        if (l == layer) t.hidden = rec.hidden;
        if (l > layer) t.attnRow.push_back(rec.attnRow);
    }
    t.cls = x.select(1, 0).contiguous();
    t.result = finish(v, x);
    return t;
}

std::vector<at::Tensor> mlpActivations(const Model& model, const at::Tensor& pixels, const std::vector<int>& layers) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined())
        throw InputError(model.info.weightsPath, "MLP activations per token are read from plain ViTs (not Swin, MaxViT or SigLIP)");
    int last = -1;
    for (int l : layers) {
        if (l < 0 || l >= v.layers())
            throw InputError("--layer " + std::to_string(l), "is not a layer of this model (0.." + std::to_string(v.layers() - 1) + ")");
        last = std::max(last, l);
    }
    std::vector<at::Tensor> out(layers.size());
    at::Tensor x = embedTokens(v, pixels);
    for (int l = 0; l <= last; ++l) {  // the blocks after the last asked for are not run
        LayerRecord rec;
        rec.keepHidden = std::find(layers.begin(), layers.end(), l) != layers.end();
        x = runBlock(v.encoder.blocks[static_cast<std::size_t>(l)], v.encoder, x, at::Tensor(), rec.keepHidden ? &rec : nullptr);
        for (std::size_t i = 0; i < layers.size(); ++i)
            if (layers[i] == l) out[i] = rec.hidden;
    }
    return out;
}

ImageTrace traceImages(const Model& model, const at::Tensor& pixels, bool keepHidden) {
    const VisionTower& v = model.vision;
    if (v.hierarchical())
        throw InputError(model.info.weightsPath, "attention traces of windowed attention (Swin, MaxViT) are not available");
    ImageTrace t;
    at::Tensor x = embedTokens(v, pixels);
    t.gridH = static_cast<int>(pixels.size(2)) / v.patchSize;
    t.gridW = static_cast<int>(pixels.size(3)) / v.patchSize;
    t.suffix = v.suffixTokens();
    t.prefix = static_cast<int>(x.size(1)) - t.gridH * t.gridW - t.suffix;
    t.residuals.push_back(x);
    for (const Block& b : v.encoder.blocks) {
        at::Tensor attn;
        LayerRecord rec;
        rec.keepHidden = keepHidden;
        x = runBlock(b, v.encoder, x, at::Tensor(), keepHidden ? &rec : nullptr, &attn);
        t.residuals.push_back(x);
        t.attention.push_back(attn);
        if (keepHidden) t.hidden.push_back(rec.hidden);
    }
    if (v.pool.defined()) t.poolAttention = runPool(v, x).attn;
    return t;
}

at::Tensor finalTokens(const Model& model, const at::Tensor& residual) {
    const VisionTower& v = model.vision;
    if (v.hierarchical()) return at::layer_norm(residual, {v.width}, v.normW, v.normB, v.normEps);
    const at::Tensor y = at::layer_norm(residual, {v.width}, v.normW, v.normB, v.normEps);
    if (v.pool.defined()) {
        const int64_t d = v.width;
        const at::Tensor values = at::linear(y, v.pool.qkvW.narrow(0, 2 * d, d), v.pool.qkvB.narrow(0, 2 * d, d));
        const at::Tensor a = at::linear(values, v.pool.outW, v.pool.outB);
        return a + poolMlp(v, a);
    }
    return v.proj.defined() ? at::matmul(y, v.proj) : y;
}

at::Tensor pooledTokenScores(const Model& model, const Decomposition& dec, int64_t index, int layer, int head,
                             const at::Tensor& direction) {
    const VisionTower& v = model.vision;
    if (!v.pool.defined() || dec.poolTokenMix.empty())
        throw InputError("decomposition", "per-token scores need an attention-pooled model decomposed with tokenFactors");
    if (layer < 0 || layer >= v.layers() || head < 0 || head >= v.heads())
        throw InputError("head " + std::to_string(layer) + "." + std::to_string(head), "is not a head of this model");
    const int64_t d = v.width, P = v.pool.heads, dp = d / P;
    const at::Tensor& q = decompositionMaps(model, Convention::Exact).poolQ[static_cast<std::size_t>(layer)][head];  // [P, dh, dp]
    // <concat_p(r[p, s] v_s Q[p]) W_O^T, t> = sum_p r[p, s] v_s Q[p] u_p with u = W_O^T t split per pooling head.
    const at::Tensor u = at::matmul(v.pool.outW.t(), direction.to(v.pool.outW.device(), at::kFloat)).view({P, dp, 1});
    const at::Tensor qu = at::matmul(q, u).squeeze(-1);                                   // [P, dh]
    const at::Tensor vals = dec.poolTokenValues[static_cast<std::size_t>(layer)][index][head];  // [N, dh]
    const at::Tensor r = dec.poolTokenMix[static_cast<std::size_t>(layer)][index].select(1, head);  // [P, N]
    return (at::matmul(vals, qu.t()) * r.t()).sum(1);                                      // [N]
}

at::Tensor embedImageTokens(const Model& model, const at::Tensor& pixels) {
    if (model.vision.hierarchical()) throw InputError(model.info.weightsPath, "token embeddings of windowed models (Swin, MaxViT) are not available");
    return embedTokens(model.vision, pixels);
}

at::Tensor runVisionBlock(const Model& model, int layer, const at::Tensor& x, BlockTaps* taps) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || layer < 0 || layer >= v.layers()) throw InputError("layer " + std::to_string(layer), "is not a block of this ViT");
    return runBlock(v.encoder.blocks[static_cast<std::size_t>(layer)], v.encoder, x, at::Tensor(), nullptr, nullptr, false, taps);
}

VisionResult outputsFromResidual(const Model& model, const at::Tensor& residual) {
    if (model.vision.hierarchical()) throw InputError(model.info.weightsPath, "not a plain ViT");
    return finish(model.vision, residual);
}

at::Tensor pooledWithAttention(const Model& model, const at::Tensor& residual, bool attentionLeaf, bool finalNorm, at::Tensor* attention) {
    const VisionTower& v = model.vision;
    if (!v.pool.defined()) throw InputError(model.info.weightsPath, "has no attention pool");
    PoolPass r = runPool(v, residual, attentionLeaf, finalNorm);
    if (attention) *attention = r.attn;
    return r.output;
}

at::Tensor pooledOutput(const Model& model, const at::Tensor& residual) {
    const VisionTower& v = model.vision;
    if (v.maxvit.defined()) return at::layer_norm(residual.mean(1), {v.width}, v.normW, v.normB, v.normEps);
    if (v.hierarchical()) return at::layer_norm(residual, {v.width}, v.normW, v.normB, v.normEps).mean(1);
    if (v.pool.defined()) return runPool(v, residual).output;
    return finish(v, residual).output;
}

at::Tensor activateOnRegisters(const at::Tensor& hidden, const at::Tensor& neurons, const TestTimeRegisters& r) {
    const int64_t batch = hidden.size(0), n = hidden.size(1), K = r.count;
    if (K < 1 || n < K + 2) throw InputError("--test-time-registers " + std::to_string(K), "needs at least one register token after the patches");
    const at::Tensor index = neurons.to(hidden.device());
    at::Tensor sub = hidden.index_select(2, index);  // [B, N, k], a copy
    const int64_t k = sub.size(2);
    // sign_max over every token and every chosen neuron of the layer: one value per image.
    const at::Tensor hi = sub.amax({1, 2}), lo = sub.amin({1, 2});
    const at::Tensor top = at::where(hi.abs() > lo.abs(), hi, lo) * r.scale;  // [B]
    at::Tensor patches = sub.narrow(1, 1, n - 1 - K);                         // every token after the first, before the registers
    switch (r.normalValues) {
    case RegisterNormalValues::Zero: patches.zero_(); break;
    case RegisterNormalValues::Mean: patches.copy_(patches.mean(1, true).expand_as(patches)); break;
    case RegisterNormalValues::OnlyOutliers: {
        const at::Tensor mean = patches.mean(1, true), spread = patches.std(1, /*unbiased=*/true, true);
        patches.copy_(at::where(patches > mean + spread, mean.expand_as(patches), patches));
        break;
    }
    case RegisterNormalValues::Same: break;
    }
    sub.narrow(1, n - K, K).copy_(top.view({batch, 1, 1}).expand({batch, K, k}));
    return hidden.index_copy(2, index, sub);
}

at::Tensor encodeTexts(const Model& model, const at::Tensor& tokens) {
    if (!model.text) throw InputError(model.info.weightsPath, "model has no text tower");
    const TextTower& t = *model.text;
    if (tokens.dim() != 2 || tokens.scalar_type() != at::kLong)
        throw InputError("tokens", "expected int64 [T, S]");
    if (tokens.size(1) > t.contextLength || tokens.size(1) == 0)
        throw InputError("tokens", "sequence length " + std::to_string(tokens.size(1)) + " outside 1.." +
                                       std::to_string(t.contextLength));
    const int64_t vocab = t.tokenEmbedding.size(0);
    if (tokens.numel() > 0 && (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= vocab))
        throw InputError("tokens", "token id outside the vocabulary of " + std::to_string(vocab));
    const at::Tensor ids = tokens.to(t.tokenEmbedding.device());
    const int64_t count = ids.size(0), s = ids.size(1), d = t.width;
    at::Tensor x = t.tokenEmbedding.index_select(0, ids.reshape({-1})).view({count, s, d}) + t.pos.narrow(0, 0, s);
    const at::Tensor mask =
        t.causal ? at::full({s, s}, -std::numeric_limits<float>::infinity(), x.options()).triu(1) : at::Tensor();
    for (const Block& b : t.encoder.blocks) x = runBlock(b, t.encoder, x, mask, nullptr);
    x = at::layer_norm(x, {d}, t.lnFinalW, t.lnFinalB, t.lnEps);
    if (t.poolLast) {
        const at::Tensor last = at::matmul(x.select(1, s - 1), t.proj);
        return t.projB.defined() ? last + t.projB : last;
    }
    // Pool at the first end token (the largest id for CLIP's vocabulary).
    const at::Tensor isEnd = ids.eq(t.endToken);
    at::Tensor where = at::where(isEnd.any(1), isEnd.to(at::kInt).argmax(1), ids.argmax(1));
    at::Tensor pooled = x.gather(1, where.to(at::kLong).view({count, 1, 1}).expand({count, 1, d})).squeeze(1);
    return at::matmul(pooled, t.proj);
}

DecomposeOptions imageDecomposeOptions(const Model& model) {
    DecomposeOptions o;
    o.tokens = !model.vision.pool.defined() && !model.vision.hierarchical();
    o.tokenFactors = !o.tokens;
    return o;
}

}  // namespace vitscope
