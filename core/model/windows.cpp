#include "model/windows.h"

#include "parallel.h"
#include "runtime.h"

#include <ATen/record_function.h>

#include <cmath>

namespace vitscope::windows {

namespace {

int region(int i, int n, int w, int shift) { return i < n - w ? 0 : (i < n - shift ? 1 : 2); }

}  // namespace

at::Tensor activate(const at::Tensor& x, Activation act) {
    if (act == Activation::QuickGelu) {
        if (x.requires_grad() && at::GradMode::is_enabled()) return x * at::sigmoid(1.702 * x);  // gradient maps
        // One temporary instead of three (the same products, so the same bits).
        at::Tensor s = x * 1.702;
        s.sigmoid_();
        return s.mul_(x);
    }
    if (act == Activation::GeluTanh) return at::gelu(x, "tanh");
    return at::gelu(x);
}

// Below this many hidden values a split costs more than it saves (one CLIP text: 77 x 2048).
constexpr int64_t kSplitMinElements = int64_t(1) << 18;

// GELU's tanh form in place as x sigmoid(2a), a = sqrt(2 / pi) (x + 0.044715 x^3): the same
// function (0.5 (1 + tanh a) = sigmoid(2a)) through ATen's sigmoid, whose kernel is far cheaper
// than its tanh here, over blocks of 32 rows that stay in cache between the five passes.
void geluTanhInPlace(const at::Tensor& rows) {
    const double c = std::sqrt(2.0 / M_PI), k1 = 2.0 * c, k3 = 2.0 * c * 0.044715;
    for (int64_t r = 0; r < rows.size(0); r += 32) {
        at::Tensor x = rows.narrow(0, r, std::min<int64_t>(32, rows.size(0) - r));
        at::Tensor t = x.square();
        t.mul_(k3).add_(k1).mul_(x).sigmoid_();  // sigmoid(2a)
        x.mul_(t);
    }
}

at::Tensor mlp(const at::Tensor& x, const at::Tensor& fc1W, const at::Tensor& fc1B, const at::Tensor& fc2W,
               const at::Tensor& fc2B, Activation act, bool split) {
    const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || fc1W.requires_grad());
    if (grad || !x.is_cpu() || !fc1B.defined() || !fc2B.defined())
        return at::linear(activate(at::linear(x, fc1W, fc1B), act), fc2W, fc2B);
    // The elementwise pass in place (over row ranges split across the cores when asked).
    constexpr double k = 1.702;
    const bool quick = act == Activation::QuickGelu;
    const int64_t d = x.size(-1);
    at::Tensor hidden = quick ? at::addmm(fc1B * k, x.reshape({-1, d}), fc1W.t(), 1.0, k)  // 1.702 fc1(x)
                              : at::addmm(fc1B, x.reshape({-1, d}), fc1W.t());
    {
        RECORD_FUNCTION("vitscope::activation", std::vector<c10::IValue>());  // one step in bench_decompose's breakdown
        auto pass = [&](int64_t begin, int64_t end) {
            at::Tensor rows = hidden.narrow(0, begin, end - begin);
            if (quick)
                at::silu_(rows);  // 1.702 QuickGELU(fc1(x))
            else if (act == Activation::GeluTanh)
                geluTanhInPlace(rows);
            else
                at::gelu_out(rows, rows);
        };
        if (split && hidden.numel() >= kSplitMinElements)
            splitAcrossCores(hidden.size(0), pass);
        else
            pass(0, hidden.size(0));
    }
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = fc2W.size(0);
    return at::addmm(fc2B, hidden, fc2W.t(), 1.0, quick ? 1.0 / k : 1.0).view(shape);
}

at::Tensor reducedLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    const ReducedPrecisionThreads threads;
    return at::linear(x.to(w.scalar_type()), w, b);
}

at::Tensor blockMlp(const Block& b, const at::Tensor& x, Activation act, bool split) {
    if (!b.reduced()) return mlp(x, b.fc1W, b.fc1B, b.fc2W, b.fc2B, act, split);
    const ReducedPrecisionThreads threads;
    const at::Tensor hidden = activate(reducedLinear(x, b.fc1Wr, b.fc1Br), act);
    return at::linear(hidden, b.fc2Wr, b.fc2Br).to(at::kFloat);
}

Geometry shiftedWindows(int gh, int gw, int w, bool shifted, const at::Device& device) {
    Geometry g;
    g.gh = gh;
    g.gw = gw;
    g.w = w;
    g.windows = (gh / w) * (gw / w);
    // No shift along a side the window already covers (timm and torchvision alike).
    const int sh = shifted && gh > w ? w / 2 : 0, sw = shifted && gw > w ? w / 2 : 0;
    const int64_t n = static_cast<int64_t>(gh) * gw, ww = static_cast<int64_t>(w) * w;
    std::vector<int64_t> pos(static_cast<std::size_t>(n)), label(static_cast<std::size_t>(n));
    int64_t i = 0;
    for (int wy = 0; wy < gh / w; ++wy)
        for (int wx = 0; wx < gw / w; ++wx)
            for (int a = 0; a < w; ++a)
                for (int b = 0; b < w; ++b, ++i) {
                    const int y = wy * w + a, x = wx * w + b;  // in the rolled grid
                    pos[static_cast<std::size_t>(i)] = static_cast<int64_t>((y + sh) % gh) * gw + (x + sw) % gw;
                    label[static_cast<std::size_t>(i)] = (sh ? region(y, gh, w, sh) * 3 : 0) + (sw ? region(x, gw, w, sw) : 0);
                }
    const auto cpuLong = at::TensorOptions().dtype(at::kLong);
    const at::Tensor p = at::tensor(pos, cpuLong);
    g.pos = p.to(device);
    g.inv = at::empty_like(p).index_copy_(0, p, at::arange(n, cpuLong)).to(device);
    if (sh || sw) {
        const at::Tensor lab = at::tensor(label, cpuLong).view({g.windows, ww});
        g.mask = (lab.unsqueeze(2) != lab.unsqueeze(1)).to(at::kFloat).mul_(-100.0).unsqueeze(1).to(device);
    }
    std::vector<int64_t> rel(static_cast<std::size_t>(ww * ww));
    for (int64_t p1 = 0; p1 < ww; ++p1)
        for (int64_t p2 = 0; p2 < ww; ++p2)
            rel[static_cast<std::size_t>(p1 * ww + p2)] = (p1 / w - p2 / w + w - 1) * (2 * w - 1) + (p1 % w - p2 % w + w - 1);
    g.rel = at::tensor(rel, cpuLong).view({ww, ww}).to(device);
    return g;
}

at::Tensor runBlock(const Block& b, const at::Tensor& bias, int heads, const Geometry& g, const Encoder& enc, double scale,
                    const at::Tensor& x, BlockRecord* rec) {
    const int64_t batch = x.size(0), c = x.size(2), h = heads, dh = c / h, ww = static_cast<int64_t>(g.w) * g.w;
    const at::Tensor y = at::layer_norm(x, {c}, b.ln1W, b.ln1B, enc.eps).index_select(1, g.pos);  // window layout
    // Reduced precision (model/precision.h): the q/k/v and MLP products in the reduced type; the
    // attention and its output projection in fp32 from the rounded values and weights (every
    // token's attention output is split over heads by the decomposition).
    const at::Tensor qkvOut = b.reduced() ? reducedLinear(y, b.qkvWr, b.qkvBr).to(at::kFloat) : at::linear(y, b.qkvW, b.qkvB);
    const at::Tensor qkv = qkvOut.view({batch, g.windows, ww, 3, h, dh}).permute({3, 0, 1, 4, 2, 5});
    const at::Tensor q = qkv[0] * scale;
    const at::Tensor v = qkv[2].contiguous();  // [B, W, H, w^2, dh]
    at::Tensor scores = at::matmul(q, qkv[1].transpose(-2, -1));  // [B, W, H, w^2, w^2]
    scores = scores + (g.rel.defined() ? bias.index_select(0, g.rel.reshape({-1})).view({ww, ww, h}).permute({2, 0, 1}) : bias);
    if (g.mask.defined()) scores = scores + g.mask;
    const at::Tensor attn = at::softmax(scores, -1);
    const at::Tensor o = at::matmul(attn, v).permute({0, 1, 3, 2, 4}).reshape({batch, g.windows * ww, c});
    const at::Tensor a = at::linear(o, b.outW, b.outB).index_select(1, g.inv);  // back to the token grid
    const at::Tensor x1 = x + a;
    const at::Tensor m = blockMlp(b, at::layer_norm(x1, {c}, b.ln2W, b.ln2B, enc.eps), enc.activation, false);
    if (rec) {
        rec->attn = attn;
        rec->values = v;
        rec->o = o;
        rec->mlp = m;
        rec->input = x;
    }
    return x1 + m;
}


Geometry partition(int gh, int gw, int p, bool grid, const at::Device& device) {
    Geometry g;
    g.gh = gh;
    g.gw = gw;
    g.w = p;
    g.windows = (gh / p) * (gw / p);
    const int64_t n = static_cast<int64_t>(gh) * gw;
    std::vector<int64_t> pos;
    pos.reserve(static_cast<std::size_t>(n));
    const int sy = gh / p, sx = gw / p;  // grid: the spacing of a window's tokens
    for (int wy = 0; wy < sy; ++wy)
        for (int wx = 0; wx < sx; ++wx)
            for (int a = 0; a < p; ++a)
                for (int b = 0; b < p; ++b)
                    pos.push_back(grid ? static_cast<int64_t>(a * sy + wy) * gw + b * sx + wx : static_cast<int64_t>(wy * p + a) * gw + wx * p + b);
    const auto cpuLong = at::TensorOptions().dtype(at::kLong);
    const at::Tensor t = at::tensor(pos, cpuLong);
    g.pos = t.to(device);
    g.inv = at::empty_like(t).index_copy_(0, t, at::arange(n, cpuLong)).to(device);
    return g;
}

// sum over tokens t of weight[b, t] * field[b, t] grouped by class: [B, K, C].
at::Tensor classPool(const at::Tensor& field, const at::Tensor& weight, const at::Tensor& cls, int64_t classes) {
    return at::zeros({field.size(0), classes, field.size(2)}, field.options()).index_add_(1, cls, field * weight.unsqueeze(2));
}

// [B, K] per-class readout weight sums (a constant write at every token).
at::Tensor classWeights(const at::Tensor& weight, const at::Tensor& cls, int64_t classes) {
    return at::zeros({weight.size(0), classes}, weight.options()).index_add_(1, cls, weight);
}

// Class-pooled fields of one stage, [B, n, K, C] each, sent through the stage's readout maps in
// one product (the maps are read once per stage, not once per term).
int64_t StageTerms::add(const at::Tensor& pooled) {
    m_parts.push_back(pooled);
    const int64_t at = m_count;
    m_count += pooled.size(1);
    return at;
}

at::Tensor StageTerms::through(const at::Tensor& G) const {
    if (m_parts.empty()) return {};
    const at::Tensor all = at::cat(m_parts, 1);  // [B, F, K, C]
    const int64_t b = all.size(0), f = all.size(1);
    return at::matmul(all.reshape({b * f, -1}), G.reshape({-1, G.size(2)})).view({b, f, G.size(2)});
}

// A stage-s per-token field on the stage grid [B, H, N_s, E] spread evenly over the first
// stage's patches: [B, H, N_0, E].
at::Tensor spread(const at::Tensor& t, int gh, int gw, int factor) {
    if (factor == 1) return t;
    const int64_t batch = t.size(0), h = t.size(1), e = t.size(3);
    at::Tensor g = t.view({batch, h, gh, 1, gw, 1, e}).expand({batch, h, gh, factor, gw, factor, e});
    return g.reshape({batch, h, static_cast<int64_t>(gh) * factor * gw * factor, e}) / static_cast<double>(factor * factor);
}


at::Tensor headTokenTerms(const BlockRecord& rec, const Geometry& g, const at::Tensor& wWin, const at::Tensor& cWin, const at::Tensor& G,
                          const at::Tensor& outW, int64_t heads, int factor) {
    const int64_t batch = rec.attn.size(0), K = G.size(0), c = G.size(1), e = G.size(2), h = heads, dh = c / h;
    const int64_t ww = static_cast<int64_t>(g.w) * g.w;
    const at::Tensor onehot = at::zeros({K, cWin.size(0)}, G.options()).scatter_(0, cWin.view({1, -1}), 1.0);
    const at::Tensor r = at::einsum("kni,bni,bnhij->bkhnj", {onehot.view({K, g.windows, ww}), wWin.view({batch, g.windows, ww}), rec.attn});
    const at::Tensor y = at::einsum("bnhjd,chd->bhnjc", {rec.values, outW.view({c, h, dh})});  // [B, H, W, w^2, C]
    at::Tensor win = at::zeros({batch, h, g.windows, ww, e}, G.options());
    for (int64_t k = 0; k < K; ++k) win.add_(r.select(1, k).unsqueeze(-1) * at::matmul(y, G[k]));
    const at::Tensor grid = win.view({batch, h, g.windows * ww, e}).index_select(2, g.inv);  // token grid order
    return spread(grid, g.gh, g.gw, factor);
}

BlockTerms addBlockTerms(StageTerms& stage, const Block& b, const BlockRecord& rec, const Geometry& g, const at::Tensor& rho,
                         const at::Tensor& cls, const at::Tensor& G, int64_t heads, int stageIndex, at::Tensor tokens,
                         std::vector<SwinLayerFactors>* factors) {
    const int64_t batch = rho.size(0), K = G.size(0), c = G.size(1), h = heads, dh = c / h;
    const at::Tensor wWin = rho.index_select(1, g.pos);  // [B, W * w^2]
    const at::Tensor cWin = cls.index_select(0, g.pos);
    BlockTerms out;
    // Head h: sum_t rho_t o_t^h W_O[:, h]^T G[k(t)].
    const at::Tensor pooled = classPool(rec.o, wWin, cWin, K).view({batch, K, h, dh});
    out.heads = stage.add(at::einsum("bkhd,chd->bhkc", {pooled, b.outW.view({c, h, dh})}));  // [B, H, K, C]
    out.bias = stage.add((classWeights(rho, cls, K).unsqueeze(2) * b.outB).unsqueeze(1));
    out.mlp = stage.add(classPool(rec.mlp, rho, cls, K).unsqueeze(1));
    if (tokens.defined()) tokens.copy_(headTokenTerms(rec, g, wWin, cWin, G, b.outW, h, 1 << stageIndex));
    if (factors) {
        SwinLayerFactors f;
        f.attn = rec.attn;
        f.values = rec.values;
        f.weight = wWin;
        f.cls = cWin;
        f.pos = g.pos;
        f.stage = stageIndex;
        f.gridH = g.gh;
        f.gridW = g.gw;
        factors->push_back(std::move(f));
    }
    return out;
}

double sumIdentityError(const Decomposition& dec, const at::Tensor& headSum, bool tokens) {
    at::Tensor total = dec.embed + headSum + dec.attnBias.sum(1) + dec.mlps.sum(1) + dec.stageBias.sum(1) + dec.postBias;
    if (dec.convs.defined()) total = total + dec.convs.sum(1);
    double err = (total - dec.output).abs().max().item<double>();
    if (tokens) err = std::max(err, (dec.heads.sum(at::IntArrayRef{1, 2, 3}) - headSum).abs().max().item<double>());
    return err;
}

}  // namespace vitscope::windows
