// The decomposition's sum identity on configurations the test builds (every family, several
// patch sizes, resolutions, depths and head counts, a DINOv2 layout with LayerScale and
// registers), both conventions, and an independent naive forward for the timm / DINOv2 layout.
#include "analysis/ledger.h"
#include "analysis/session.h"
#include "error.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "parallel.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <atomic>
#include <map>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

using namespace vitscope;
using vitscope::test::maxAbsDiff;

namespace {

using Case = vitscope::test::RandomCase;

std::vector<Case> cases() {
    std::vector<Case> out;
    RandomVitSpec s;
    s = {};
    s.layout = RandomLayout::OpenAiClip, s.imageSize = 96, s.patchSize = 16, s.width = 128, s.layers = 3, s.seed = 1;
    out.push_back({"openai-clip-p16-4heads", s, {{"model_cfg", {{"vision_cfg", {{"head_width", 32}}}, {"text_cfg", {{"heads", 1}}}, {"quick_gelu", true}}}}});
    s = {};
    s.layout = RandomLayout::OpenAiClip, s.imageSize = 64, s.patchSize = 32, s.width = 64, s.layers = 1, s.seed = 2;
    out.push_back({"open_clip-gelu-1layer", s, {{"model_cfg", {{"quick_gelu", false}, {"text_cfg", {{"heads", 2}}}}}}});
    s = {};
    s.layout = RandomLayout::HfClip, s.imageSize = 48, s.patchSize = 8, s.width = 96, s.layers = 2, s.embedDim = 24, s.seed = 3;
    out.push_back({"hf-clip-p8-3heads", s,
                   {{"vision_config", {{"num_attention_heads", 3}, {"hidden_act", "gelu"}}},
                    {"text_config", {{"num_attention_heads", 1}}}}});
    s = {};
    s.layout = RandomLayout::Timm, s.imageSize = 64, s.patchSize = 16, s.width = 64, s.layers = 4, s.seed = 4;
    out.push_back({"timm-vit-4heads-4layers", s, {{"num_heads", 4}}});
    s = {};
    s.layout = RandomLayout::Dinov2, s.imageSize = 56, s.patchSize = 14, s.width = 96, s.layers = 3, s.registers = 4;
    s.layerScale = true, s.seed = 5;
    out.push_back({"dinov2-layerscale-4registers", s, {{"num_heads", 3}}});
    s = {};
    s.layout = RandomLayout::Torchvision, s.imageSize = 32, s.patchSize = 8, s.width = 128, s.layers = 2, s.seed = 6;
    out.push_back({"torchvision-p8", s, nlohmann::json()});
    return out;
}

// A deliberately plain forward of the timm / DINOv2 layout straight from the state dict: token
// by token, head by head, with its own softmax. Independent of core/model/forward.cpp.
at::Tensor naiveTimmFeatures(const StateDict& sd, int heads, const at::Tensor& image /* [3, S, S] */) {
    const at::Tensor w = sd.at("patch_embed.proj.weight");
    const int64_t d = w.size(0), p = w.size(2), g = image.size(1) / p;
    std::vector<at::Tensor> tokens{sd.at("cls_token").view({d}) + sd.at("pos_embed")[0][0]};
    for (int64_t i = 0; i < g; ++i)
        for (int64_t j = 0; j < g; ++j) {
            const at::Tensor patch = image.narrow(1, i * p, p).narrow(2, j * p, p);
            tokens.push_back((w * patch.unsqueeze(0)).sum({1, 2, 3}) + sd.at("patch_embed.proj.bias") +
                             sd.at("pos_embed")[0][1 + i * g + j]);
        }
    if (sd.count("register_tokens")) {
        const at::Tensor r = sd.at("register_tokens")[0];
        for (int64_t k = r.size(0) - 1; k >= 0; --k) tokens.insert(tokens.begin() + 1, r[k]);
    }
    auto ln = [](const at::Tensor& x, const at::Tensor& gain, const at::Tensor& bias) {
        const at::Tensor mu = x.mean();
        const at::Tensor var = ((x - mu) * (x - mu)).mean();
        return (x - mu) / at::sqrt(var + 1e-6) * gain + bias;
    };
    const int64_t n = static_cast<int64_t>(tokens.size()), dh = d / heads;
    for (int l = 0; sd.count("blocks." + std::to_string(l) + ".norm1.weight"); ++l) {
        const std::string b = "blocks." + std::to_string(l) + ".";
        std::vector<at::Tensor> q, k, v;
        for (const auto& x : tokens) {
            const at::Tensor qkv = at::matmul(sd.at(b + "attn.qkv.weight"), ln(x, sd.at(b + "norm1.weight"), sd.at(b + "norm1.bias"))) +
                                   sd.at(b + "attn.qkv.bias");
            q.push_back(qkv.narrow(0, 0, d));
            k.push_back(qkv.narrow(0, d, d));
            v.push_back(qkv.narrow(0, 2 * d, d));
        }
        std::vector<at::Tensor> next;
        for (int64_t i = 0; i < n; ++i) {
            at::Tensor concat = at::zeros({d});
            for (int h = 0; h < heads; ++h) {
                std::vector<double> logits;
                double top = -1e300;
                for (int64_t j = 0; j < n; ++j) {
                    logits.push_back((q[i].narrow(0, h * dh, dh) * k[j].narrow(0, h * dh, dh)).sum().item<double>() /
                                     std::sqrt(double(dh)));
                    top = std::max(top, logits.back());
                }
                double total = 0;
                for (double& x : logits) total += (x = std::exp(x - top));
                for (int64_t j = 0; j < n; ++j)
                    concat.narrow(0, h * dh, dh) += v[j].narrow(0, h * dh, dh) * (logits[j] / total);
            }
            at::Tensor a = at::matmul(sd.at(b + "attn.proj.weight"), concat) + sd.at(b + "attn.proj.bias");
            if (sd.count(b + "ls1.gamma")) a = a * sd.at(b + "ls1.gamma");
            const at::Tensor x1 = tokens[i] + a;
            at::Tensor hdn = at::matmul(sd.at(b + "mlp.fc1.weight"), ln(x1, sd.at(b + "norm2.weight"), sd.at(b + "norm2.bias"))) +
                             sd.at(b + "mlp.fc1.bias");
            hdn = 0.5 * hdn * (1.0 + at::erf(hdn / std::sqrt(2.0)));
            at::Tensor m = at::matmul(sd.at(b + "mlp.fc2.weight"), hdn) + sd.at(b + "mlp.fc2.bias");
            if (sd.count(b + "ls2.gamma")) m = m * sd.at(b + "ls2.gamma");
            next.push_back(x1 + m);
        }
        tokens = next;
    }
    return ln(tokens[0], sd.at("norm.weight"), sd.at("norm.bias"));
}

using SiglipCase = vitscope::test::RandomCase;

std::vector<SiglipCase> siglipCases() {
    std::vector<SiglipCase> out;
    RandomVitSpec s;
    s.layout = RandomLayout::HfSiglip, s.imageSize = 48, s.patchSize = 8, s.width = 96, s.layers = 2, s.textWidth = 48;
    s.textLayers = 2, s.contextLength = 16, s.vocabSize = 300, s.seed = 21;
    out.push_back({"hf-siglip-p8-3heads", s,
                   {{"model_type", "siglip"},
                    {"vision_config", {{"num_attention_heads", 3}, {"hidden_act", "gelu_pytorch_tanh"}}},
                    {"text_config", {{"num_attention_heads", 2}}}}});
    s = {};
    s.layout = RandomLayout::TimmSiglip, s.imageSize = 64, s.patchSize = 16, s.width = 64, s.layers = 4, s.seed = 22;
    out.push_back({"timm-siglip-4heads-4layers", s, {{"model_args", {{"num_heads", 4}, {"act_layer", "gelu_tanh"}}}}});
    s = {};
    s.layout = RandomLayout::OpenClipSiglip, s.imageSize = 28, s.patchSize = 14, s.width = 128, s.layers = 1, s.textWidth = 64;
    s.contextLength = 12, s.vocabSize = 200, s.seed = 23;
    out.push_back({"open_clip-siglip-p14-2heads", s, {{"model_cfg", {{"text_cfg", {{"heads", 2}}}}}}});
    return out;
}

at::Tensor layerNormRow(const at::Tensor& x, const at::Tensor& gain, const at::Tensor& bias, double eps) {
    const at::Tensor mu = x.mean();
    const at::Tensor var = ((x - mu) * (x - mu)).mean();
    return (x - mu) / at::sqrt(var + eps) * gain + bias;
}

// An independent Swin written from timm's names, token by token: dense per-head attention built
// window by window (roll, shifted-window mask, relative position bias), 2x2 gathers for the
// patch mergings, and every residual write carried as its own field through the mergings and
// the final norm with the stream's statistics frozen (the reference's rule for LayerNorm).
class NaiveSwin {
public:
    NaiveSwin(const StateDict& sd, int window, std::vector<int> depths, std::vector<int> heads)
        : m_sd(sd), m_w(window), m_depths(std::move(depths)), m_heads(std::move(heads)) {}

    // Terms of one image [3, H, W] by name; `tokenLayer` / `tokenHead` also split that head by
    // source token ("tok.T", T on its stage grid).
    std::map<std::string, at::Tensor> run(const at::Tensor& image, int tokenLayer, int tokenHead, at::Tensor* features) {
        const at::Tensor conv = at::conv2d(image.unsqueeze(0), m_sd.at("patch_embed.proj.weight"), m_sd.at("patch_embed.proj.bias"),
                                           {4, 4})[0];  // [C, gh, gw]
        m_gh = static_cast<int>(conv.size(1));
        m_gw = static_cast<int>(conv.size(2));
        at::Tensor x = rows(conv.flatten(1).t(), "patch_embed.norm");
        m_fields.clear();
        m_fields.emplace_back("embed", x);
        int layer = 0;
        for (std::size_t s = 0; s < m_depths.size(); ++s) {
            if (s > 0) x = merge(x, "layers." + std::to_string(s) + ".downsample", static_cast<int>(s));
            for (int i = 0; i < m_depths[s]; ++i, ++layer)
                x = block(x, "layers." + std::to_string(s) + ".blocks." + std::to_string(i) + ".", m_heads[s], i % 2 == 1, layer,
                          layer == tokenLayer ? tokenHead : -1);
        }
        const at::Tensor gamma = m_sd.at("norm.weight"), beta = m_sd.at("norm.bias");
        const int64_t n = x.size(0);
        *features = rows(x, "norm").mean(0);
        std::map<std::string, at::Tensor> out;
        for (const auto& [name, f] : m_fields) {
            at::Tensor term = at::zeros({x.size(1)});
            for (int64_t t = 0; t < n; ++t) term += gamma * (f[t] - f[t].mean()) / sigma(x[t]) / double(n);
            out[name] = out.count(name) ? out[name] + term : term;
        }
        out["post_bias"] = beta;
        return out;
    }

private:
    at::Tensor rows(const at::Tensor& x, const std::string& p) const {
        return at::layer_norm(x, {x.size(1)}, m_sd.at(p + ".weight"), m_sd.at(p + ".bias"), 1e-5);
    }
    static at::Tensor sigma(const at::Tensor& v) { return at::sqrt(((v - v.mean()) * (v - v.mean())).mean() + 1e-5); }

    // Children of parent (py, px) in the order (0,0), (1,0), (0,1), (1,1) (row, column offsets).
    at::Tensor gather(const at::Tensor& f, int py, int px) const {
        std::vector<at::Tensor> parts;
        for (int k = 0; k < 4; ++k) parts.push_back(f[(2 * py + k % 2) * m_gw + 2 * px + k / 2]);
        return at::cat(parts);
    }

    at::Tensor merge(const at::Tensor& x, const std::string& p, int stage) {
        const at::Tensor gamma = m_sd.at(p + ".norm.weight"), beta = m_sd.at(p + ".norm.bias"), w = m_sd.at(p + ".reduction.weight");
        const int gh = m_gh / 2, gw = m_gw / 2;
        std::vector<at::Tensor> sig, next;
        for (int py = 0; py < gh; ++py)
            for (int px = 0; px < gw; ++px) {
                const at::Tensor u = gather(x, py, px);
                sig.push_back(sigma(u));
                next.push_back(at::matmul(w, gamma * (u - u.mean()) / sig.back() + beta));
            }
        for (auto& [name, f] : m_fields) {
            std::vector<at::Tensor> out;
            for (int py = 0, j = 0; py < gh; ++py)
                for (int px = 0; px < gw; ++px, ++j) {
                    const at::Tensor u = gather(f, py, px);
                    out.push_back(at::matmul(w, gamma * (u - u.mean()) / sig[static_cast<std::size_t>(j)]));
                }
            f = at::stack(out);
        }
        m_gh = gh;
        m_gw = gw;
        m_fields.emplace_back("merge_bias." + std::to_string(stage), at::matmul(w, beta).unsqueeze(0).expand({gh * gw, w.size(0)}));
        return at::stack(next);
    }

    static int region(int i, int n, int w, int shift) { return shift == 0 ? 0 : (i < n - w ? 0 : (i < n - shift ? 1 : 2)); }

    at::Tensor block(const at::Tensor& x, const std::string& p, int heads, bool shifted, int layer, int tokenHead) {
        const int64_t n = x.size(0), c = x.size(1), dh = c / heads;
        const int w = m_w, sh = shifted && m_gh > w ? w / 2 : 0, sw = shifted && m_gw > w ? w / 2 : 0;
        const at::Tensor y = rows(x, p + "norm1");
        const at::Tensor qkv = at::linear(y, m_sd.at(p + "attn.qkv.weight"), m_sd.at(p + "attn.qkv.bias"));  // [N, 3C]
        const at::Tensor table = m_sd.at(p + "attn.relative_position_bias_table");
        const at::Tensor wo = m_sd.at(p + "attn.proj.weight"), bo = m_sd.at(p + "attn.proj.bias");
        auto q = qkv.accessor<float, 2>();
        auto tab = table.accessor<float, 2>();
        at::Tensor x1 = x + bo;
        for (int h = 0; h < heads; ++h) {
            at::Tensor A = at::zeros({n, n});
            auto a = A.accessor<float, 2>();
            for (int wy = 0; wy < m_gh / w; ++wy)
                for (int wx = 0; wx < m_gw / w; ++wx) {
                    // Rolled coordinates (ry, rx) -> token ((ry + sh) % gh, (rx + sw) % gw).
                    std::vector<int> tok, lab, ly, lx;
                    for (int i = 0; i < w; ++i)
                        for (int j = 0; j < w; ++j) {
                            const int ry = wy * w + i, rx = wx * w + j;
                            tok.push_back(((ry + sh) % m_gh) * m_gw + (rx + sw) % m_gw);
                            lab.push_back(region(ry, m_gh, w, sh) * 3 + region(rx, m_gw, w, sw));
                            ly.push_back(i);
                            lx.push_back(j);
                        }
                    for (std::size_t i = 0; i < tok.size(); ++i) {
                        std::vector<double> sc;
                        double top = -1e300, total = 0;
                        for (std::size_t j = 0; j < tok.size(); ++j) {
                            double dot = 0;
                            for (int64_t k = 0; k < dh; ++k) dot += double(q[tok[i]][h * dh + k]) * q[tok[j]][c + h * dh + k];
                            dot = dot / std::sqrt(double(dh)) + tab[(ly[i] - ly[j] + w - 1) * (2 * w - 1) + lx[i] - lx[j] + w - 1][h];
                            if (lab[i] != lab[j]) dot -= 100.0;
                            sc.push_back(dot);
                            top = std::max(top, dot);
                        }
                        for (double& v : sc) total += (v = std::exp(v - top));
                        for (std::size_t j = 0; j < tok.size(); ++j) a[tok[i]][tok[j]] = float(sc[j] / total);
                    }
                }
            const at::Tensor v = qkv.narrow(1, 2 * c + h * dh, dh);          // [N, dh]
            const at::Tensor write = at::matmul(v, wo.narrow(1, h * dh, dh).t());  // value of every token in the residual
            const at::Tensor field = at::matmul(A, write);
            x1 = x1 + field;
            m_fields.emplace_back(std::to_string(layer) + "." + std::to_string(h), field);
            if (h == tokenHead)
                for (int64_t t = 0; t < n; ++t)
                    m_fields.emplace_back("tok." + std::to_string(t), A.select(1, t).unsqueeze(1) * write[t].unsqueeze(0));
        }
        m_fields.emplace_back("attn_bias." + std::to_string(layer), bo.unsqueeze(0).expand({n, c}));
        const at::Tensor m = at::linear(at::gelu(at::linear(rows(x1, p + "norm2"), m_sd.at(p + "mlp.fc1.weight"), m_sd.at(p + "mlp.fc1.bias"))),
                                        m_sd.at(p + "mlp.fc2.weight"), m_sd.at(p + "mlp.fc2.bias"));
        m_fields.emplace_back("mlp." + std::to_string(layer), m);
        return x1 + m;
    }

    const StateDict& m_sd;
    int m_w;
    std::vector<int> m_depths, m_heads;
    int m_gh = 0, m_gw = 0;
    std::vector<std::pair<std::string, at::Tensor>> m_fields;
};


// An independent MaxViT written from timm's names (TF-ported settings), token by token: block
// and grid partitions built index by index, TF's relative position bias read as its formula
// says, the downsampling shortcut (2x2 average, 1x1 conv) applied to every residual write, and
// the head's LayerNorm frozen on the pooled vector. The MBConv branch is one component (it is
// not decomposed), computed with plain convolutions.
class NaiveMaxVit {
public:
    NaiveMaxVit(const StateDict& sd, int partition, std::vector<int> depths, int headDim)
        : m_sd(sd), m_p(partition), m_depths(std::move(depths)), m_headDim(headDim) {}

    std::map<std::string, at::Tensor> run(const at::Tensor& image, int tokenLayer, int tokenHead, at::Tensor* pooled) {
        at::Tensor x = image.unsqueeze(0);
        x = gelu(bn(conv(x, "stem.conv1", 2), "stem.norm1"));
        x = conv(x, "stem.conv2", 1);
        m_gh = static_cast<int>(x.size(2));
        m_gw = static_cast<int>(x.size(3));
        at::Tensor X = x[0].flatten(1).t();  // [N, C]
        m_fields.clear();
        m_fields.emplace_back("embed", X);
        int layer = 0, block = 0;
        for (std::size_t s = 0; s < m_depths.size(); ++s)
            for (int b = 0; b < m_depths[s]; ++b, ++block) {
                const std::string p = "stages." + std::to_string(s) + ".blocks." + std::to_string(b) + ".";
                const at::Tensor br = branch(x, p + "conv.", b == 0 ? 2 : 1);
                if (b == 0) X = downsample(X, p + "conv.shortcut.expand", static_cast<int>(s));
                const at::Tensor bt = br[0].flatten(1).t();
                X = X + bt;
                m_fields.emplace_back("conv." + std::to_string(block), bt);
                for (bool grid : {false, true}) {
                    X = unit(X, p + (grid ? "attn_grid." : "attn_block."), grid, layer, layer == tokenLayer ? tokenHead : -1);
                    ++layer;
                }
                x = X.t().reshape({1, X.size(1), m_gh, m_gw});
            }
        const at::Tensor gamma = m_sd.at("head.norm.weight"), beta = m_sd.at("head.norm.bias");
        const at::Tensor mean = X.mean(0);
        *pooled = at::layer_norm(mean, {mean.size(0)}, gamma, beta, 1e-5);
        const at::Tensor sigma = at::sqrt(((mean - mean.mean()) * (mean - mean.mean())).mean() + 1e-5);
        std::map<std::string, at::Tensor> out;
        for (const auto& [name, f] : m_fields) {
            const at::Tensor m = f.mean(0);
            const at::Tensor term = gamma * (m - m.mean()) / sigma;
            out[name] = out.count(name) ? out[name] + term : term;
        }
        out["post_bias"] = beta;
        return out;
    }

private:
    static at::Tensor gelu(const at::Tensor& x) { return at::gelu(x, "tanh"); }
    at::Tensor bn(const at::Tensor& x, const std::string& p) const {
        const auto v = [&](const char* k) { return m_sd.at(p + k).view({1, -1, 1, 1}); };
        return (x - v(".running_mean")) / at::sqrt(v(".running_var") + 1e-3) * v(".weight") + v(".bias");
    }
    // TF "same": a stride-2 3x3 conv pads one row and column at the end, a stride-1 one both sides.
    at::Tensor conv(const at::Tensor& x, const std::string& p, int stride, int64_t groups = 1) const {
        const at::Tensor w = m_sd.at(p + ".weight");
        const at::Tensor b = m_sd.count(p + ".bias") ? m_sd.at(p + ".bias") : at::Tensor();
        if (w.size(2) == 1) return at::conv2d(x, w, b);
        const at::Tensor padded = stride == 2 ? at::constant_pad_nd(x, {0, 1, 0, 1}) : at::constant_pad_nd(x, {1, 1, 1, 1});
        const std::vector<int64_t> st{stride, stride}, zero{0, 0}, one{1, 1};
        return at::conv2d(padded, w, b, st, zero, one, groups);
    }
    at::Tensor branch(const at::Tensor& x, const std::string& c, int stride) const {
        at::Tensor y = gelu(bn(conv(bn(x, c + "pre_norm"), c + "conv1_1x1", 1), c + "norm1"));
        y = gelu(bn(conv(y, c + "conv2_kxk", stride, y.size(1)), c + "norm2"));
        const at::Tensor g = at::sigmoid(conv(at::silu(conv(y.mean({2, 3}, true), c + "se.fc1", 1)), c + "se.fc2", 1));
        return conv(y * g, c + "conv3_1x1", 1);
    }
    // 2x2 average of every field, then the shortcut conv's matrix; its bias a new field.
    at::Tensor downsample(const at::Tensor& X, const std::string& p, int stage) {
        const bool expand = m_sd.count(p + ".weight") != 0;
        const at::Tensor w = expand ? m_sd.at(p + ".weight").flatten(1) : at::Tensor();
        const int gh = m_gh / 2, gw = m_gw / 2;
        auto down = [&](const at::Tensor& f) {
            std::vector<at::Tensor> rows;
            for (int py = 0; py < gh; ++py)
                for (int px = 0; px < gw; ++px) {
                    at::Tensor a = at::zeros({f.size(1)});
                    for (int dy = 0; dy < 2; ++dy)
                        for (int dx = 0; dx < 2; ++dx) a += f[(2 * py + dy) * m_gw + 2 * px + dx] / 4.0;
                    rows.push_back(expand ? at::matmul(w, a) : a);
                }
            return at::stack(rows);
        };
        at::Tensor next = down(X);
        for (auto& [name, f] : m_fields) f = down(f);
        m_gh = gh;
        m_gw = gw;
        if (expand) {
            const at::Tensor bias = m_sd.at(p + ".bias").unsqueeze(0).expand({gh * gw, w.size(0)});
            next = next + bias;
            m_fields.emplace_back("shortcut_bias." + std::to_string(stage), bias);
        }
        return next;
    }
    at::Tensor unit(const at::Tensor& X, const std::string& p, bool grid, int layer, int tokenHead) {
        const int64_t n = X.size(0), c = X.size(1), heads = c / m_headDim, dh = m_headDim;
        const auto ln = [&](const at::Tensor& t, const std::string& k) { return at::layer_norm(t, {c}, m_sd.at(p + k + ".weight"), m_sd.at(p + k + ".bias"), 1e-5); };
        const at::Tensor qkv = at::linear(ln(X, "norm1"), m_sd.at(p + "attn.qkv.weight"), m_sd.at(p + "attn.qkv.bias"));
        const at::Tensor table = m_sd.at(p + "attn.rel_pos.relative_position_bias_table");  // [H, 2P-1, 2P-1]
        const at::Tensor wo = m_sd.at(p + "attn.proj.weight"), bo = m_sd.at(p + "attn.proj.bias");
        const int P = m_p, sy = m_gh / P, sx = m_gw / P;
        at::Tensor X1 = X + bo;
        for (int64_t h = 0; h < heads; ++h) {
            at::Tensor A = at::zeros({n, n});
            for (int wy = 0; wy < sy; ++wy)
                for (int wx = 0; wx < sx; ++wx) {
                    std::vector<int64_t> tok;
                    std::vector<int> ry, rx;
                    for (int a = 0; a < P; ++a)
                        for (int b = 0; b < P; ++b) {
                            tok.push_back(grid ? int64_t(a * sy + wy) * m_gw + b * sx + wx : int64_t(wy * P + a) * m_gw + wx * P + b);
                            ry.push_back(a);
                            rx.push_back(b);
                        }
                    for (std::size_t i = 0; i < tok.size(); ++i) {
                        std::vector<double> sc;
                        double top = -1e300, total = 0;
                        for (std::size_t j = 0; j < tok.size(); ++j) {
                            const double dot = (qkv[tok[i]].narrow(0, h * dh, dh) * qkv[tok[j]].narrow(0, c + h * dh, dh)).sum().item<double>() /
                                                   std::sqrt(double(dh)) +
                                               table[h][ry[j] - ry[i] + P - 1][rx[j] - rx[i] + P - 1].item<double>();
                            sc.push_back(dot);
                            top = std::max(top, dot);
                        }
                        for (double& v : sc) total += (v = std::exp(v - top));
                        for (std::size_t j = 0; j < tok.size(); ++j) A[tok[i]][tok[j]] = sc[j] / total;
                    }
                }
            const at::Tensor write = at::matmul(qkv.narrow(1, 2 * c + h * dh, dh), wo.narrow(1, h * dh, dh).t());
            const at::Tensor field = at::matmul(A, write);
            X1 = X1 + field;
            m_fields.emplace_back(std::to_string(layer) + "." + std::to_string(h), field);
            if (h == tokenHead)
                for (int64_t t = 0; t < n; ++t) m_fields.emplace_back("tok." + std::to_string(t), A.select(1, t).unsqueeze(1) * write[t].unsqueeze(0));
        }
        m_fields.emplace_back("attn_bias." + std::to_string(layer), bo.unsqueeze(0).expand({n, c}));
        const at::Tensor m = at::linear(gelu(at::linear(ln(X1, "norm2"), m_sd.at(p + "mlp.fc1.weight"), m_sd.at(p + "mlp.fc1.bias"))),
                                        m_sd.at(p + "mlp.fc2.weight"), m_sd.at(p + "mlp.fc2.bias"));
        m_fields.emplace_back("mlp." + std::to_string(layer), m);
        return X1 + m;
    }

    const StateDict& m_sd;
    int m_p;
    std::vector<int> m_depths;
    int m_headDim;
    int m_gh = 0, m_gw = 0;
    std::vector<std::pair<std::string, at::Tensor>> m_fields;
};

// The naive per-source-token terms ("tok.T" on a stage grid gwS wide) against one head's terms
// over the first stage's patches [N0, E] (gw0 wide, f x f patches per stage token, each 1/f^2 of
// it) and against its per-token scores for `direction`: the largest differences.
void tokenErrors(const std::map<std::string, at::Tensor>& ref, const at::Tensor& head, const at::Tensor& scores, const at::Tensor& direction,
                 int gw0, int gwS, int f, double* worstToken, double* worstScore) {
    for (const auto& [name, term] : ref) {
        if (name.rfind("tok.", 0) != 0) continue;
        const int t = std::stoi(name.substr(4)), ty = t / gwS, tx = t % gwS;
        for (int dy = 0; dy < f; ++dy)
            for (int dx = 0; dx < f; ++dx) {
                const int64_t patch = int64_t(ty * f + dy) * gw0 + tx * f + dx;
                const at::Tensor mine = head[patch];
                *worstToken = std::max(*worstToken, maxAbsDiff(mine * double(f * f), term));
                *worstScore = std::max(*worstScore, std::abs(scores[patch].item<double>() - at::dot(mine, direction).item<double>()));
            }
    }
}

}  // namespace

class TestDecompose : public QObject {
    Q_OBJECT

private slots:

    // The completeness ledger (analysis/ledger.h, shared by the GUI and `vitscope-cli ledger`),
    // headless: on every plain and SigLIP layout the terms sum to <output, text>, and each head's
    // row is its term from the per-head decomposition (another path through the forward than the
    // per-token terms the ledger reads).
    void ledgerSumsToTheScoreAndMatchesEachTerm() {
        at::NoGradGuard guard;
        std::vector<std::pair<std::string, Model>> models;
        for (const Case& c : cases()) models.emplace_back(c.name, buildModel(randomVitStateDict(c.spec), c.config, c.name));
        for (const SiglipCase& c : siglipCases()) models.emplace_back(c.name, buildModel(randomVitStateDict(c.spec), c.config, c.name));
        at::manual_seed(11);
        for (const auto& [name, model] : models) {
            const int S = model.preprocess.imageSize > 0 ? model.preprocess.imageSize : 64;
            const at::Tensor pixels = at::randn({1, 3, S, S});
            const Decomposition dec = decomposeImages(model, pixels, imageDecomposeOptions(model));
            const Decomposition perHead = decomposeImages(model, pixels, {false, Convention::Exact});
            at::Tensor text = at::randn({model.vision.embedDim()});
            text = text / text.norm();
            const Ledger g = computeLedger(model, dec, text, nullptr);
            const double score = at::dot(encodeImages(model, pixels).output[0], text).item<double>();
            const double tol = 1e-4 * std::max(1.0, std::abs(score));
            QVERIFY2(std::abs(g.total - score) <= tol, name.c_str());
            QVERIFY2(std::abs(g.residual) <= tol, qPrintable(QString("%1: residual %2").arg(name.c_str()).arg(g.residual)));
            int heads = 0;
            for (const LedgerRow& r : g.rows) {
                if (r.head < 0) continue;
                ++heads;
                const double expected = at::dot(perHead.heads[0][r.layer][r.head], text).item<double>();
                QVERIFY2(std::abs(r.score - expected) <= tol, qPrintable(QString("%1 %2: %3 vs %4").arg(name.c_str(), r.name.c_str()).arg(r.score).arg(expected)));
                QCOMPARE(double(g.headScores.at(r.layer, r.head)), double(float(r.score)));
            }
            QCOMPARE(heads, model.vision.layers() * model.vision.heads());
        }
    }

    // A non-CLIP model read through the aligner beside it (the bundled shapes-vit): the aligned
    // terms and the aligner's bias sum to the aligned output's score.
    void ledgerThroughTheAlignerBesideTheModel() {
        at::NoGradGuard guard;
        const std::string spec = VITSCOPE_SOURCE_DIR "/models/shapes-vit";
        HeatmapSessionOptions o;
        o.model = spec;
        o.device = "cpu";
        o.alignerIfNotClip = alignerBesideModel(spec);
        QVERIFY(QString::fromStdString(o.alignerIfNotClip).endsWith("aligner.safetensors"));
        const HeatmapSession session = openHeatmapSession(o);
        QVERIFY(session.aligner.has_value());
        const Model& model = *session.model;
        at::manual_seed(12);
        const at::Tensor pixels = at::rand({1, 3, model.preprocess.imageSize, model.preprocess.imageSize});
        const at::Tensor text = session.text->encode({"a red circle"})[0];
        const Ledger g = computeLedger(model, decomposeImages(model, pixels, imageDecomposeOptions(model)), text, &*session.aligner);
        QVERIFY(std::any_of(g.rows.begin(), g.rows.end(), [](const LedgerRow& r) { return r.name == "aligner_bias"; }));
        QVERIFY2(std::abs(g.residual) <= 1e-4 * std::max(1.0, std::abs(g.total)), qPrintable(QString::number(g.residual)));
        QVERIFY(std::abs(g.total) > 1e-3);
        QVERIFY(alignerBesideModel(VITSCOPE_SOURCE_DIR "/models/shapes-clip").empty());
    }
    void sumIdentity_data() {
        QTest::addColumn<int>("index");
        QTest::addColumn<int>("sizeFactor");  // 1: native resolution; 2: interpolated position grid
        const auto all = cases();
        for (int i = 0; i < int(all.size()); ++i) {
            QTest::newRow((std::string(all[i].name) + "@native").c_str()) << i << 1;
            QTest::newRow((std::string(all[i].name) + "@2x").c_str()) << i << 2;
        }
    }

    void sumIdentity() {
        at::manual_seed(9100);  // the draws below are part of the test: fixed
        QFETCH(int, index);
        QFETCH(int, sizeFactor);
        const Case c = cases()[index];
        at::NoGradGuard guard;
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        const int size = c.spec.imageSize * sizeFactor;
        const at::Tensor pixels = at::randn({3, 3, size, size}, at::TensorOptions().dtype(at::kFloat));
        const VisionResult plain = encodeImages(model, pixels);
        const int L = model.vision.layers(), H = model.vision.heads(), N = model.vision.tokensFor(size);
        const int E = model.vision.embedDim();
        for (Convention conv : {Convention::Exact, Convention::TextSpan}) {
            const Decomposition tok = decomposeImages(model, pixels, {true, conv});
            const Decomposition pooled = decomposeImages(model, pixels, {false, conv});
            QCOMPARE(tok.heads.sizes().vec(), (std::vector<int64_t>{3, L, H, N, E}));
            QCOMPARE(pooled.heads.sizes().vec(), (std::vector<int64_t>{3, L, H, E}));
            qInfo("%s %s max abs error %.3g", c.name, conventionName(conv), tok.maxAbsError);
            QVERIFY(tok.maxAbsError < 1e-4);
            QVERIFY(pooled.maxAbsError < 1e-4);
            // The identity recomputed here from the returned terms, not trusted from the struct.
            const at::Tensor sum = tok.heads.sum({1, 2, 3}) + tok.attnBias.sum(1) + tok.mlps.sum(1) + tok.embed + tok.postBias;
            QVERIFY(maxAbsDiff(sum, tok.output) < 1e-4);
            QVERIFY(maxAbsDiff(pooled.heads, tok.heads.sum(3)) < 1e-4);
            if (conv == Convention::Exact) {
                QVERIFY(maxAbsDiff(tok.output, plain.output) < 1e-6);
                // Exact: each head term is centred before the final norm, so no term carries the
                // shared offset; the bias terms are non-trivial.
                QVERIFY(tok.attnBias.abs().max().item<double>() > 1e-4);
                QVERIFY(tok.postBias.abs().max().item<double>() > 1e-4);
            } else {
                QVERIFY(maxAbsDiff(tok.output, plain.output / plain.output.norm(2, 1, true)) < 1e-6);
                QCOMPARE(tok.attnBias.abs().max().item<double>(), 0.0);
                QCOMPARE(tok.postBias.abs().max().item<double>(), 0.0);
            }
        }
    }

    void naiveReferenceForTimmLayouts_data() {
        QTest::addColumn<int>("index");
        const auto all = cases();
        for (int i = 0; i < int(all.size()); ++i)
            if (all[i].spec.layout == RandomLayout::Timm || all[i].spec.layout == RandomLayout::Dinov2)
                QTest::newRow(all[i].name) << i;
    }

    void naiveReferenceForTimmLayouts() {
        at::manual_seed(9101);  // the draws below are part of the test: fixed
        QFETCH(int, index);
        const Case c = cases()[index];
        at::NoGradGuard guard;
        const StateDict sd = randomVitStateDict(c.spec);
        const Model model = buildModel(sd, c.config, c.name);
        QCOMPARE(model.vision.numRegisters(), c.spec.registers);
        QCOMPARE(model.vision.encoder.blocks[0].ls1.defined(), c.spec.layerScale);
        const at::Tensor pixels = at::randn({1, 3, c.spec.imageSize, c.spec.imageSize});
        const at::Tensor ours = encodeImages(model, pixels).output[0];
        const at::Tensor reference = naiveTimmFeatures(sd, c.config["num_heads"].get<int>(), pixels[0]);
        const double err = maxAbsDiff(ours, reference);
        qInfo("%s vs naive forward: %.3g", c.name, err);
        QVERIFY(err < 1e-4);
    }

    void siglipSumIdentity_data() {
        QTest::addColumn<int>("index");
        QTest::addColumn<int>("sizeFactor");
        const auto all = siglipCases();
        for (int i = 0; i < int(all.size()); ++i) {
            QTest::newRow((std::string(all[i].name) + "@native").c_str()) << i << 1;
            QTest::newRow((std::string(all[i].name) + "@2x").c_str()) << i << 2;
        }
    }

    // Both decompositions of an attention-pooled output sum to it, recomputed here from the
    // returned terms; per-token terms sum to the per-head ones; the split is non-trivial.
    void siglipSumIdentity() {
        at::manual_seed(9110);  // the draws below are part of the test: fixed
        QFETCH(int, index);
        QFETCH(int, sizeFactor);
        const SiglipCase c = siglipCases()[index];
        at::NoGradGuard guard;
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        QCOMPARE(model.info.family, std::string("siglip"));
        QCOMPARE(model.vision.prefixTokens(), 0);
        const int size = c.spec.imageSize * sizeFactor;
        const at::Tensor pixels = at::randn({2, 3, size, size});
        const VisionResult plain = encodeImages(model, pixels);
        const int64_t L = model.vision.layers(), H = model.vision.heads(), P = model.vision.pool.heads;
        const int64_t N = model.vision.tokensFor(size), E = model.vision.width;
        QCOMPARE(N, int64_t(size / c.spec.patchSize) * (size / c.spec.patchSize));
        for (Convention conv : {Convention::Exact, Convention::TextSpan}) {
            const Decomposition tok = decomposeImages(model, pixels, {true, conv});
            const Decomposition pooled = decomposeImages(model, pixels, {false, conv});
            QCOMPARE(tok.heads.sizes().vec(), (std::vector<int64_t>{2, L, H, N, E}));
            QCOMPARE(tok.poolHeads.sizes().vec(), (std::vector<int64_t>{2, P, N, E}));
            QCOMPARE(pooled.poolHeads.sizes().vec(), (std::vector<int64_t>{2, P, E}));
            const double scale = plain.output.abs().max().item<double>();
            const at::Tensor level2 = tok.heads.sum({1, 2, 3}) + tok.attnBias.sum(1) + tok.mlps.sum(1) + tok.embed +
                                      tok.postBias + tok.poolMlp;
            const at::Tensor level1 = tok.poolHeads.sum({1, 2}) + tok.poolBias + tok.poolMlp;
            const double e2 = maxAbsDiff(level2, plain.output) / scale, e1 = maxAbsDiff(level1, plain.output) / scale;
            qInfo("%s %s: through the encoder %.3g, at the pool %.3g (relative)", c.name, conventionName(conv), e2, e1);
            QVERIFY(e2 < 1e-5);
            QVERIFY(e1 < 1e-5);
            QVERIFY(maxAbsDiff(pooled.heads, tok.heads.sum(3)) < 1e-5 * scale);
            QVERIFY(maxAbsDiff(pooled.poolHeads, tok.poolHeads.sum(2)) < 1e-5 * scale);
            QVERIFY(maxAbsDiff(tok.output, plain.output) < 1e-6 * scale);  // the reference's raw terms
            for (const at::Tensor* t : {&tok.attnBias, &tok.postBias, &tok.poolMlp, &tok.embed, &tok.mlps})
                QVERIFY(t->abs().max().item<double>() > 1e-4);
        }
    }

    // An independent per-token reimplementation of the reference's formula (clip_text_span's
    // SigLIP head: out.post = attention probability x value, through the head's slice of the
    // output projection), and of the encoder-level terms through the frozen pool, written
    // token by token from the Hugging Face state dict and the traced residual stream.
    void siglipNaiveReference() {
        at::manual_seed(9111);  // the draws below are part of the test: fixed
        const SiglipCase c = siglipCases()[0];
        at::NoGradGuard guard;
        const StateDict sd = randomVitStateDict(c.spec);
        const Model model = buildModel(sd, c.config, c.name);
        const at::Tensor pixels = at::randn({1, 3, 48, 48});
        const Decomposition dec = decomposeImages(model, pixels, {true, Convention::Exact});
        const ImageTrace trace = traceImages(model, pixels);
        const int64_t d = 96, heads = 3, dh = d / heads, n = 36;
        const std::string hp = "vision_model.head.attention.";
        const at::Tensor inW = sd.at(hp + "in_proj_weight"), inB = sd.at(hp + "in_proj_bias");
        const at::Tensor outW = sd.at(hp + "out_proj.weight"), outB = sd.at(hp + "out_proj.bias");
        const at::Tensor gamma = sd.at("vision_model.post_layernorm.weight"), beta = sd.at("vision_model.post_layernorm.bias");
        const at::Tensor xL = trace.residuals.back()[0];  // [N, D]
        std::vector<at::Tensor> y, sigma;
        for (int64_t t = 0; t < n; ++t) {
            y.push_back(layerNormRow(xL[t], gamma, beta, 1e-6));
            const at::Tensor mu = xL[t].mean();
            sigma.push_back(at::sqrt(((xL[t] - mu) * (xL[t] - mu)).mean() + 1e-6));
        }
        const at::Tensor probe = sd.at("vision_model.head.probe").view({d});
        const at::Tensor q = at::matmul(inW.narrow(0, 0, d), probe) + inB.narrow(0, 0, d);
        double worst1 = 0, worst2 = 0;
        const double scale = dec.output.abs().max().item<double>();
        std::map<std::pair<int64_t, int64_t>, at::Tensor> acc;
        for (int64_t h = 0; h < heads; ++h) {
            // The probe's attention over the tokens, with its own softmax.
            std::vector<double> a;
            double top = -1e300, total = 0;
            for (int64_t t = 0; t < n; ++t) {
                const at::Tensor k = at::matmul(inW.narrow(0, d + h * dh, dh), y[t]) + inB.narrow(0, d + h * dh, dh);
                a.push_back((q.narrow(0, h * dh, dh) * k).sum().item<double>() / std::sqrt(double(dh)));
                top = std::max(top, a.back());
            }
            for (double& x : a) total += (x = std::exp(x - top));
            for (double& x : a) x /= total;
            const at::Tensor wv = inW.narrow(0, 2 * d + h * dh, dh), bv = inB.narrow(0, 2 * d + h * dh, dh);
            const at::Tensor woH = outW.narrow(1, h * dh, dh);  // [D, dh]
            for (int64_t t = 0; t < n; ++t) {
                const at::Tensor term = a[t] * at::matmul(woH, at::matmul(wv, y[t]) + bv);
                worst1 = std::max(worst1, maxAbsDiff(term, dec.poolHeads[0][h][t]));
            }
            // Encoder level: head (l, g) of layer 1 through this pooling head, source token s.
            const int l = 1;
            const std::string b = "vision_model.encoder.layers.1.";
            for (int64_t g = 0; g < heads; ++g) {
                const at::Tensor woL = sd.at(b + "self_attn.out_proj.weight").narrow(1, g * dh, dh);
                const at::Tensor xl = trace.residuals[l][0];
                for (int64_t s = 0; s < n; s += 7) {
                    const at::Tensor vs = at::matmul(sd.at(b + "self_attn.v_proj.weight").narrow(0, g * dh, dh),
                                                     layerNormRow(xl[s], sd.at(b + "layer_norm1.weight"), sd.at(b + "layer_norm1.bias"), 1e-6)) +
                                          sd.at(b + "self_attn.v_proj.bias").narrow(0, g * dh, dh);
                    const at::Tensor write = at::matmul(woL, vs);  // head g's value of s, in the residual
                    at::Tensor term = at::zeros({d});
                    for (int64_t t = 0; t < n; ++t) {
                        const at::Tensor c = trace.attention[l][0][g][t][s].item<double>() * write;
                        const at::Tensor centred = gamma * (c - c.mean()) / sigma[t];
                        term += a[t] * at::matmul(woH, at::matmul(wv, centred));
                    }
                    // Summed over pooling heads in the decomposition: accumulate per (g, s).
                    auto& slot = acc[{g, s}];
                    slot = slot.defined() ? slot + term : term;
                    if (h == heads - 1) worst2 = std::max(worst2, maxAbsDiff(slot, dec.heads[0][l][g][s]));
                }
            }
        }
        qInfo("pool heads per token vs naive: %.3g; encoder heads per token vs naive: %.3g (scale %.3g)", worst1, worst2, scale);
        QVERIFY(worst1 < 1e-5 * scale);
        QVERIFY(worst2 < 1e-5 * scale);
    }

    // SigLIP's text tower against a plain per-position reimplementation of Hugging Face's
    // SiglipTextModel written here (pre-norm blocks with no causal mask, tanh GELU, final
    // LayerNorm, the last position through the Linear head), on both layouts with a text tower.
    void siglipTextTower_data() {
        QTest::addColumn<int>("index");
        QTest::newRow("hf") << 0;
        QTest::newRow("open_clip") << 2;
    }

    void siglipTextTower() {
        at::manual_seed(9112);  // the draws below are part of the test: fixed
        QFETCH(int, index);
        const SiglipCase c = siglipCases()[index];
        at::NoGradGuard guard;
        const StateDict sd = randomVitStateDict(c.spec);
        const Model model = buildModel(sd, c.config, c.name);
        QVERIFY(model.text.has_value());
        QVERIFY(model.sigmoidScores);
        QVERIFY(std::abs(model.logitScale - 10.0) < 1e-4);
        QVERIFY(std::abs(model.logitBias + 10.0) < 1e-6);
        const bool hf = index == 0;
        const int64_t s = c.spec.contextLength, dt = c.spec.textWidth;
        const int heads = 2;  // both configs say so
        QCOMPARE(model.text->encoder.heads, heads);
        const at::Tensor tokens = at::randint(c.spec.vocabSize, {3, s}, at::kLong);
        const at::Tensor ours = encodeTexts(model, tokens);
        auto get = [&](const std::string& name) { return sd.at(name); };
        const std::string tokName = hf ? "text_model.embeddings.token_embedding.weight" : "text.token_embedding.weight";
        const std::string posName = hf ? "text_model.embeddings.position_embedding.weight" : "text.positional_embedding";
        double worst = 0;
        for (int64_t i = 0; i < 3; ++i) {
            std::vector<at::Tensor> x;
            for (int64_t p = 0; p < s; ++p) x.push_back(get(tokName)[tokens[i][p].item<int64_t>()] + get(posName)[p]);
            for (int l = 0; l < c.spec.textLayers; ++l) {
                const std::string b = hf ? "text_model.encoder.layers." + std::to_string(l) + "."
                                         : "text.transformer.resblocks." + std::to_string(l) + ".";
                const at::Tensor g1 = get(b + (hf ? "layer_norm1.weight" : "ln_1.weight")), b1 = get(b + (hf ? "layer_norm1.bias" : "ln_1.bias"));
                const at::Tensor g2 = get(b + (hf ? "layer_norm2.weight" : "ln_2.weight")), b2 = get(b + (hf ? "layer_norm2.bias" : "ln_2.bias"));
                at::Tensor wq, wk, wv, bq, bk, bvv;
                if (hf) {
                    wq = get(b + "self_attn.q_proj.weight"), wk = get(b + "self_attn.k_proj.weight"), wv = get(b + "self_attn.v_proj.weight");
                    bq = get(b + "self_attn.q_proj.bias"), bk = get(b + "self_attn.k_proj.bias"), bvv = get(b + "self_attn.v_proj.bias");
                } else {
                    const at::Tensor w = get(b + "attn.in_proj_weight"), bb = get(b + "attn.in_proj_bias");
                    wq = w.narrow(0, 0, dt), wk = w.narrow(0, dt, dt), wv = w.narrow(0, 2 * dt, dt);
                    bq = bb.narrow(0, 0, dt), bk = bb.narrow(0, dt, dt), bvv = bb.narrow(0, 2 * dt, dt);
                }
                const std::string out = hf ? "self_attn.out_proj" : "attn.out_proj";
                const std::string fc1 = hf ? "mlp.fc1" : "mlp.c_fc", fc2 = hf ? "mlp.fc2" : "mlp.c_proj";
                const int64_t dh = dt / heads;
                std::vector<at::Tensor> q, k, v;
                for (const auto& t : x) {
                    const at::Tensor y = layerNormRow(t, g1, b1, 1e-6);
                    q.push_back(at::matmul(wq, y) + bq);
                    k.push_back(at::matmul(wk, y) + bk);
                    v.push_back(at::matmul(wv, y) + bvv);
                }
                std::vector<at::Tensor> next;
                for (int64_t p = 0; p < s; ++p) {
                    at::Tensor concat = at::zeros({dt});
                    for (int h = 0; h < heads; ++h) {
                        std::vector<double> a;  // every position, no causal mask
                        double top = -1e300, total = 0;
                        for (int64_t j = 0; j < s; ++j) {
                            a.push_back((q[p].narrow(0, h * dh, dh) * k[j].narrow(0, h * dh, dh)).sum().item<double>() / std::sqrt(double(dh)));
                            top = std::max(top, a.back());
                        }
                        for (double& z : a) total += (z = std::exp(z - top));
                        for (int64_t j = 0; j < s; ++j) concat.narrow(0, h * dh, dh) += v[j].narrow(0, h * dh, dh) * (a[j] / total);
                    }
                    const at::Tensor x1 = x[p] + at::matmul(get(b + out + ".weight"), concat) + get(b + out + ".bias");
                    at::Tensor hdn = at::matmul(get(b + fc1 + ".weight"), layerNormRow(x1, g2, b2, 1e-6)) + get(b + fc1 + ".bias");
                    hdn = 0.5 * hdn * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (hdn + 0.044715 * hdn * hdn * hdn)));
                    next.push_back(x1 + at::matmul(get(b + fc2 + ".weight"), hdn) + get(b + fc2 + ".bias"));
                }
                x = next;
            }
            const std::string lnf = hf ? "text_model.final_layer_norm" : "text.ln_final";
            const std::string head = hf ? "text_model.head" : "text.text_projection";
            const at::Tensor last = layerNormRow(x[s - 1], get(lnf + ".weight"), get(lnf + ".bias"), 1e-6);
            const at::Tensor expected = at::matmul(get(head + ".weight"), last) + get(head + ".bias");
            worst = std::max(worst, maxAbsDiff(ours[i], expected) / expected.abs().max().item<double>());
        }
        qInfo("%s text tower vs naive: max relative error %.3g", c.name, worst);
        QVERIFY(worst < 1e-5);
    }

    void conventionsAreDifferentSplits() {  // their sums are checked in sumIdentity
        at::manual_seed(9102);  // the draws below are part of the test: fixed
        const Case c = cases()[0];
        at::NoGradGuard guard;
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        const at::Tensor pixels = at::randn({2, 3, 96, 96});
        const Decomposition exact = decomposeImages(model, pixels, {false, Convention::Exact});
        const Decomposition span = decomposeImages(model, pixels, {false, Convention::TextSpan});
        const at::Tensor norm = exact.output.norm(2, 1, true).unsqueeze(1).unsqueeze(1);
        QVERIFY(maxAbsDiff(exact.heads / norm, span.heads) > 1e-4);  // the conventions are different splits
    }

    // Swin against the naive reimplementation above, on a configuration unlike the oracle's
    // (window 3, a 48 x 96 input: shifted windows on a non-square grid, three stages): every
    // term, and one head per source token (materialised and through the score factors).
    void swinNaiveReference_data() {
        QTest::addColumn<int>("tokenLayer");
        QTest::newRow("stage 0, shifted") << 1;
        QTest::newRow("stage 1, shifted") << 3;
    }

    void swinNaiveReference() {
        QFETCH(int, tokenLayer);
        at::manual_seed(9121);  // the draws below are part of the test: fixed
        RandomVitSpec spec;
        spec.layout = RandomLayout::TimmSwin;
        spec.patchSize = 4;
        spec.width = 12;
        spec.swinDepths = {2, 2, 2};
        spec.swinHeads = {1, 2, 4};
        spec.window = 3;
        spec.seed = 17;
        const StateDict sd = randomVitStateDict(spec);
        at::NoGradGuard guard;
        const Model model = buildModel(sd, {{"img_size", 48}}, "random-swin");
        const at::Tensor pixels = at::randn({2, 3, 48, 96});
        NaiveSwin naive(sd, 3, {2, 2, 2}, {1, 2, 4});
        const int tokenHead = tokenLayer == 1 ? 0 : 1;
        const int stage = tokenLayer / 2;
        at::Tensor features;
        const std::map<std::string, at::Tensor> ref = naive.run(pixels[1], tokenLayer, tokenHead, &features);
        const VisionResult r = encodeImages(model, pixels);
        QVERIFY(maxAbsDiff(r.output[1], features) < 1e-5);
        const Decomposition dec = decomposeImages(model, pixels, {true, Convention::Exact});
        QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
        std::vector<std::string> names;
        const at::Tensor terms = termsByComponent(dec, &names);
        const double scale = features.abs().max().item<double>();
        double worst = 0;
        int compared = 0;
        for (std::size_t i = 0; i < names.size(); ++i) {
            QVERIFY2(ref.count(names[i]), names[i].c_str());
            worst = std::max(worst, maxAbsDiff(terms[1][static_cast<int64_t>(i)], ref.at(names[i])));
            ++compared;
        }
        QCOMPARE(compared, 1 + (1 + 2 + 4) * 2 + 2 * 6 + 2 + 1);  // embed, heads, attn_bias + mlp per layer, 2 mergings, post
        // One head per source token: stage-s tokens spread over their 2^s x 2^s first-stage patches.
        const int gw0 = 96 / 4, gwS = gw0 >> stage, f = 1 << stage;
        const at::Tensor direction = at::randn({model.vision.embedDim()});
        DecomposeOptions factors;
        factors.tokenFactors = true;
        const at::Tensor scores = swinTokenScores(model, decomposeImages(model, pixels, factors), 1, tokenLayer, tokenHead, direction);
        double worstToken = 0, worstScore = 0;
        tokenErrors(ref, dec.heads[1][tokenLayer][tokenHead], scores, direction, gw0, gwS, f, &worstToken, &worstScore);
        qInfo("terms vs naive %.3g, per-token %.3g, scores %.3g (scale %.3g)", worst, worstToken, worstScore, scale);
        QVERIFY(worst < 1e-5 * scale);
        QVERIFY(worstToken < 1e-5 * scale);
        QVERIFY(worstScore < 1e-5 * scale * direction.abs().sum().item<double>());
    }

    // Swin on other shapes (torchvision names, four stages, last stage the size of one window,
    // 2-token windows, two layouts): the sum identity, per head and per token, and inputs that do
    // not tile into the windows are refused.
    void swinSumIdentity() {
        at::manual_seed(9122);  // the draws below are part of the test: fixed
        for (RandomLayout layout : {RandomLayout::TorchvisionSwin, RandomLayout::TimmSwin}) {
            RandomVitSpec spec;
            spec.layout = layout;
            spec.patchSize = 2;
            spec.width = 8;
            spec.swinDepths = {2, 1, 2, 2};
            spec.swinHeads = {2, 2, 4, 8};
            spec.window = 2;
            spec.seed = 23;
            at::NoGradGuard guard;
            const Model model = buildModel(randomVitStateDict(spec), nlohmann::json(), "random-swin");
            QCOMPARE(model.vision.layers(), 7);
            QCOMPARE(model.vision.headsIn(2), 2);
            QCOMPARE(model.vision.headsIn(6), 8);
            for (bool tokens : {false, true}) {
                const Decomposition dec = decomposeImages(model, at::randn({3, 3, 32, 32}), {tokens, Convention::Exact});
                QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
            }
            QVERIFY_THROWS_EXCEPTION(InputError, encodeImages(model, at::randn({1, 3, 32, 40})));
            QVERIFY_THROWS_EXCEPTION(InputError, encodeImages(model, at::randn({1, 3, 24, 24})));
        }
    }

    // MaxViT against the naive reimplementation above, on a configuration unlike the oracle's
    // (three stages, one keeping its width so its shortcut has no conv, partition 2, a 64 x 96
    // input): every term, and one grid-attention head per source token (materialised and
    // through the score factors).
    void maxvitNaiveReference() {
        at::manual_seed(9125);  // the draws below are part of the test: fixed
        RandomVitSpec spec;
        spec.layout = RandomLayout::TimmMaxVit;
        spec.stemWidth = 8;
        spec.maxvitWidths = {16, 16, 32};
        spec.maxvitDepths = {1, 1, 2};
        spec.headDim = 8;
        spec.partition = 2;
        spec.seed = 31;
        const StateDict sd = randomVitStateDict(spec);
        at::NoGradGuard guard;
        const Model model = buildModel(sd, nlohmann::json(), "random-maxvit");
        QCOMPARE(model.info.family, std::string("maxvit"));
        QCOMPARE(model.vision.layers(), 8);
        QCOMPARE(headsPerLayer(model.vision), (std::vector<int>{2, 2, 2, 2, 4, 4, 4, 4}));
        const at::Tensor pixels = at::randn({2, 3, 64, 96});
        NaiveMaxVit naive(sd, 2, {1, 1, 2}, 8);
        const int tokenLayer = 3, tokenHead = 1;  // stage 1's grid attention
        at::Tensor pooled;
        const std::map<std::string, at::Tensor> ref = naive.run(pixels[1], tokenLayer, tokenHead, &pooled);
        const VisionResult r = encodeImages(model, pixels);
        QVERIFY(maxAbsDiff(r.output[1], pooled) < 1e-5);
        const Decomposition dec = decomposeImages(model, pixels, {true, Convention::Exact});
        QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
        std::vector<std::string> names;
        const at::Tensor terms = termsByComponent(dec, &names);
        const double scale = pooled.abs().max().item<double>();
        double worst = 0;
        for (std::size_t i = 0; i < names.size(); ++i) {
            // Stage 1 keeps its width: no shortcut conv, a zero term.
            const at::Tensor want = ref.count(names[i]) ? ref.at(names[i]) : at::zeros_like(pooled);
            QVERIFY2(ref.count(names[i]) || names[i] == "shortcut_bias.1", names[i].c_str());
            worst = std::max(worst, maxAbsDiff(terms[1][static_cast<int64_t>(i)], want));
        }
        // embed, 4 convs, 24 heads + 2 x 8 (attn_bias, mlp), 3 shortcut biases, post_bias
        QCOMPARE(int(names.size()), 1 + 4 + 24 + 16 + 3 + 1);
        const int gw0 = 96 / 4, gwS = gw0 / 2, f = 2;  // stage 1 tokens cover 2 x 2 first-stage patches
        const at::Tensor direction = at::randn({model.vision.embedDim()});
        DecomposeOptions factors;
        factors.tokenFactors = true;
        const at::Tensor scores = swinTokenScores(model, decomposeImages(model, pixels, factors), 1, tokenLayer, tokenHead, direction);
        double worstToken = 0, worstScore = 0;
        tokenErrors(ref, dec.heads[1][tokenLayer][tokenHead], scores, direction, gw0, gwS, f, &worstToken, &worstScore);
        qInfo("terms vs naive %.3g, per-token %.3g, scores %.3g (scale %.3g)", worst, worstToken, worstScore, scale);
        QVERIFY(worst < 1e-5 * scale);
        QVERIFY(worstToken < 1e-5 * scale);
        QVERIFY(worstScore < 1e-5 * scale * direction.abs().sum().item<double>());
    }

    // MaxViT's sum identity in both layouts (torchvision's 3x3 stride-2 pool shortcut gives
    // edge tokens other weights), per head and per token, and the torchvision scale by width.
    void maxvitSumIdentity() {
        at::manual_seed(9126);  // the draws below are part of the test: fixed
        for (RandomLayout layout : {RandomLayout::TorchvisionMaxVit, RandomLayout::TimmMaxVit}) {
            RandomVitSpec spec;
            spec.layout = layout;
            spec.stemWidth = 8;
            spec.maxvitWidths = {16, 32};
            spec.maxvitDepths = {2, 1};
            spec.headDim = 8;
            spec.partition = 2;
            spec.seed = 37;
            at::NoGradGuard guard;
            const Model model = buildModel(randomVitStateDict(spec), nlohmann::json(), "random-maxvit");
            QCOMPARE(model.vision.maxvit.poolTwo, layout == RandomLayout::TimmMaxVit);
            for (bool tokens : {false, true}) {
                const Decomposition dec = decomposeImages(model, at::randn({2, 3, 48, 32}), {tokens, Convention::Exact});
                QVERIFY2(dec.maxAbsError < 1e-4, std::to_string(dec.maxAbsError).c_str());
            }
        }
    }

    // The CPU forward splits attention (by image and head range) and the MLP's activation (by
    // rows) over the cores; with splitting off the same forward runs on one thread. Batch 3 at
    // a 20 x 20 patch grid (401 tokens and more: above the sizes where the forward splits), 64
    // texts; 2-4 heads, so parts begin and end inside an image and some images span two parts.
    void splitOverCoresMatchesOneCore_data() {
        QTest::addColumn<int>("index");
        const auto all = cases();
        for (int i = 0; i < int(all.size()); ++i) QTest::newRow(all[i].name) << i;
        const auto siglip = siglipCases();  // attention-pooled: the pool reads every token's attention
        for (int i = 0; i < int(siglip.size()); ++i) QTest::newRow(siglip[i].name) << int(all.size()) + i;
    }

    void splitOverCoresMatchesOneCore() {
        if (splitParts() < 2) QSKIP("OpenBLAS runs one thread here (or another BLAS): nothing to split");
        at::manual_seed(9130);  // the draws below are part of the test: fixed
        QFETCH(int, index);
        const auto all = cases();
        const auto siglip = siglipCases();
        const Case c = index < int(all.size()) ? all[index]
                                               : Case{siglip[index - all.size()].name, siglip[index - all.size()].spec, siglip[index - all.size()].config};
        at::NoGradGuard guard;
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        const at::Tensor pixels = at::randn({3, 3, 20 * c.spec.patchSize, 20 * c.spec.patchSize});
        at::Tensor tokens;
        if (model.text) tokens = at::randint(1, model.text->tokenEmbedding.size(0), {64, model.text->contextLength}, at::kLong);
        struct Run {
            at::Tensor output, heads, mlps, texts;
            int64_t splits = 0;  // splits of the plain forward
        };
        auto run = [&] {
            Run r;
            const int64_t before = splitsRun();
            r.output = encodeImages(model, pixels).output;
            r.splits = splitsRun() - before;
            const Decomposition d = decomposeImages(model, pixels, {true, Convention::Exact});
            r.heads = d.heads;
            r.mlps = d.mlps;
            if (tokens.defined()) r.texts = encodeTexts(model, tokens);
            return r;
        };
        const Run split = run();
        setSplitEnabled(false);
        QCOMPARE(splitParts(), 1);
        const Run one = run();
        setSplitEnabled(true);
        QCOMPARE(split.splits, 2 * int64_t(model.vision.layers()));  // attention and activation in every block
        QCOMPARE(one.splits, int64_t(0));
        const double scale = one.output.abs().max().item<double>();
        QVERIFY(scale > 1e-3);
        QVERIFY(maxAbsDiff(split.output, one.output) <= 1e-5 * scale);
        QVERIFY(maxAbsDiff(split.heads, one.heads) <= 1e-5 * scale);
        QVERIFY(maxAbsDiff(split.mlps, one.mlps) <= 1e-5 * scale);
        if (tokens.defined()) QVERIFY(maxAbsDiff(split.texts, one.texts) <= 1e-5 * split.texts.abs().max().item<double>());
    }

    // splitAcrossCores itself: every index exactly once for ranges shorter and longer than the
    // number of parts, a part's exception reaches the caller (and the pool still works after),
    // a split inside a part runs inline, the caller's autograd mode holds in every part.
    void splitAcrossCoresCoversOnce() {
        if (splitParts() < 2) QSKIP("OpenBLAS runs one thread here (or another BLAS): nothing to split");
        qInfo("parts per split: %d", splitParts());
        for (int64_t n : {1, 2, 3, 7, 1000}) {
            std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
            std::atomic<int> calls{0}, empty{0};
            splitAcrossCores(n, [&](int64_t begin, int64_t end) {
                empty += begin >= end;
                ++calls;
                for (int64_t i = begin; i < end; ++i) ++hits[static_cast<std::size_t>(i)];
            });
            for (const auto& h : hits) QCOMPARE(h.load(), 1);
            QCOMPARE(empty.load(), 0);
            QCOMPARE(calls.load(), static_cast<int>(std::min<int64_t>(n, splitParts())));
        }
        bool thrown = false;
        try {
            splitAcrossCores(100, [](int64_t begin, int64_t) {
                if (begin > 0) throw std::runtime_error("part failed");
            });
        } catch (const std::runtime_error& e) {
            thrown = std::string(e.what()) == "part failed";
        }
        QVERIFY(thrown);
        std::atomic<int> inner{0};
        splitAcrossCores(4, [&](int64_t, int64_t) {
            splitAcrossCores(10, [&](int64_t begin, int64_t end) {
                if (begin == 0 && end == 10) ++inner;  // the whole range at once: inline
            });
        });
        QCOMPARE(inner.load(), splitParts() < 4 ? splitParts() : 4);
        for (bool grad : {false, true}) {
            at::AutoGradMode mode(grad);
            std::atomic<int> same{0};
            splitAcrossCores(2, [&](int64_t, int64_t) { same += at::GradMode::is_enabled() == grad; });
            QCOMPARE(same.load(), 2);
        }
    }

    // A child forked from a process whose pool is running has none of its threads: it splits
    // inline instead of waiting on workers that do not exist (alarm: a hang fails the test).
    void splitInForkedChildRunsInline() {
        if (splitParts() < 2) QSKIP("OpenBLAS runs one thread here (or another BLAS): nothing to split");
        splitAcrossCores(4, [](int64_t, int64_t) {});  // the pool exists and has run
        const pid_t child = fork();
        QVERIFY(child >= 0);
        if (child == 0) {
            alarm(10);
            std::atomic<int> calls{0}, covered{0};
            splitAcrossCores(10, [&](int64_t begin, int64_t end) {
                ++calls;
                covered += static_cast<int>(end - begin);
            });
            _exit(calls == 1 && covered == 10 && splitParts() == 1 ? 0 : 1);
        }
        int status = 0;
        QCOMPARE(waitpid(child, &status, 0), child);
        QVERIFY(WIFEXITED(status));
        QCOMPARE(WEXITSTATUS(status), 0);
        QVERIFY(splitParts() > 1);  // the parent's pool is untouched
    }

    void rejectsBadPixels() {
        at::manual_seed(9103);  // the draws below are part of the test: fixed
        const Case c = cases()[0];
        const Model model = buildModel(randomVitStateDict(c.spec), c.config, c.name);
        QVERIFY_THROWS_EXCEPTION(std::exception, encodeImages(model, at::randn({1, 3, 90, 96})));
        QVERIFY_THROWS_EXCEPTION(std::exception, encodeImages(model, at::randn({1, 4, 96, 96})));
        QVERIFY_THROWS_EXCEPTION(std::exception, encodeImages(model, at::randn({3, 96, 96})));
    }
};

QTEST_GUILESS_MAIN(TestDecompose)
#include "test_decompose.moc"
