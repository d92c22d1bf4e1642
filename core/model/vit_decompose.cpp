// vit-decompose's convention for Swin and MaxViT (vit_decompose.h says what its walker computes).
#include "model/vit_decompose.h"

namespace vitscope::vitdecompose {

namespace {

constexpr double kReferenceEps = 1e-5;  // linear_decompose.py's LayerNorm, whatever the model's eps

// The reference's LayerNorm coefficients of x [B, N, C]: coeff = gamma / sqrt(unbiased var + 1e-5)
// and konst = beta - coeff * mean, per token.
void normCoefficients(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor* coeff, at::Tensor* konst) {
    const at::Tensor mu = x.mean(-1, true);
    const at::Tensor var = x.var(-1, /*unbiased=*/true, true);
    *coeff = w / at::sqrt(var + kReferenceEps);
    *konst = b - *coeff * mu;
}

}  // namespace

void Fields::add(const at::Tensor& fields) {
    m_parts.push_back(fields);
    m_count += fields.size(1);
}

void Fields::map(const std::function<at::Tensor(const at::Tensor&)>& f) {
    for (at::Tensor& p : m_parts) p = f(p);
}

void Fields::layerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    at::Tensor coeff, konst;
    normCoefficients(x, w, b, &coeff, &konst);
    const at::Tensor share = (konst / static_cast<double>(m_count)).unsqueeze(1);  // [B, 1, N, C]
    for (at::Tensor& p : m_parts) p = p * coeff.unsqueeze(1) + share;
}

void Fields::linear(const at::Tensor& w, const at::Tensor& bias) {
    const at::Tensor share = bias.defined() ? bias / static_cast<double>(m_count) : at::Tensor();
    for (at::Tensor& p : m_parts) p = at::linear(p, w, share);
}

at::Tensor Fields::sum() const {
    at::Tensor s;
    for (const at::Tensor& p : m_parts) s = s.defined() ? s + p.sum(1) : p.sum(1);
    return s;
}

at::Tensor Fields::meanOverTokens() const {
    std::vector<at::Tensor> means;
    for (const at::Tensor& p : m_parts) means.push_back(p.mean(2));
    return at::cat(means, 1);
}

at::Tensor headFields(const Block& b, const windows::BlockRecord& rec, const windows::Geometry& g, int64_t heads) {
    const at::Tensor& x = rec.input;  // [B, N, C] the block's (detached) input
    const int64_t batch = x.size(0), c = x.size(2), dh = c / heads, ww = static_cast<int64_t>(g.w) * g.w;
    at::Tensor coeff, konst;
    normCoefficients(x, b.ln1W, b.ln1B, &coeff, &konst);
    const at::Tensor y = (coeff * x + konst).index_select(1, g.pos);  // window layout [B, W * w^2, C]
    const at::Tensor v = at::linear(y, b.qkvW.narrow(0, 2 * c, c), b.qkvB.defined() ? b.qkvB.narrow(0, 2 * c, c) : at::Tensor());
    const at::Tensor vh = v.view({batch, g.windows, ww, heads, dh}).permute({0, 1, 3, 2, 4});  // [B, W, H, w^2, dh]
    const at::Tensor o = at::matmul(rec.attn, vh);                                              // [B, W, H, w^2, dh]
    at::Tensor t = at::einsum("bwhid,chd->bhwic", {o, b.outW.view({c, heads, dh})}).reshape({batch, heads, g.windows * ww, c});
    if (b.outB.defined()) t = t + b.outB / static_cast<double>(heads);
    return t.index_select(2, g.inv);  // back to the token grid
}

void fill(Decomposition& dec, const at::Tensor& terms, const TermIndex& index, const at::Tensor& walker, int64_t heads) {
    const int64_t batch = terms.size(0), e = terms.size(2), L = static_cast<int64_t>(index.mlps.size());
    const auto opts = terms.options();
    dec.convention = Convention::VitDecompose;
    dec.embed = terms.select(1, 0).contiguous();
    dec.heads = at::zeros({batch, L, heads, e}, opts);
    dec.attnBias = at::zeros({batch, L, e}, opts);
    dec.mlps = at::zeros({batch, L, e}, opts);
    dec.postBias = at::zeros({batch, e}, opts);
    dec.firstLayer = static_cast<int>(L);
    for (int64_t l = L - 1; l >= 0; --l) {
        const auto li = static_cast<std::size_t>(l);
        if (index.mlps[li] < 0) break;
        dec.firstLayer = static_cast<int>(l);
        dec.heads.select(1, l).narrow(1, 0, dec.headsIn(l)).copy_(terms.narrow(1, index.heads[li], dec.headsIn(l)));
        dec.mlps.select(1, l).copy_(terms.select(1, index.mlps[li]));
    }
    if (!index.convs.empty()) {
        dec.convs = at::zeros({batch, static_cast<int64_t>(index.convs.size()), e}, opts);
        dec.firstConv = static_cast<int>(index.convs.size());
        for (int64_t k = static_cast<int64_t>(index.convs.size()) - 1; k >= 0; --k) {
            if (index.convs[static_cast<std::size_t>(k)] < 0) break;
            dec.firstConv = static_cast<int>(k);
            dec.convs.select(1, k).copy_(terms.select(1, index.convs[static_cast<std::size_t>(k)]));
        }
    }
    const at::Tensor total = terms.sum(1);
    dec.maxAbsError = (total - walker).abs().max().item<double>();
    dec.outputMiss = ((total - dec.output).norm(2, {1}) / dec.output.norm(2, {1})).max().item<double>();
}

}  // namespace vitscope::vitdecompose
