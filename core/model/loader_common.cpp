#include "model/loader_common.h"

#include "error.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vitscope::loader {

std::string shapeText(at::IntArrayRef shape) {
    std::ostringstream s;
    s << "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << "]";
    return s.str();
}

at::Tensor Tensors::get(const std::string& name) const {
    auto it = m_sd.find(name);
    if (it == m_sd.end()) throw ModelError(m_where, "missing tensor '" + name + "'");
    if (!at::isFloatingType(it->second.scalar_type())) throw ModelError(m_where, "tensor '" + name + "' is not floating point");
    return it->second;
}

at::Tensor Tensors::get(const std::string& name, std::vector<int64_t> shape) const {
    at::Tensor t = get(name);
    if (t.sizes().vec() != shape)
        throw ModelError(m_where, "tensor '" + name + "' has shape " + shapeText(t.sizes()) + ", expected " + shapeText(shape));
    return t;
}

int64_t Tensors::dim(const std::string& name, int d) const {
    at::Tensor t = get(name);
    if (t.dim() <= d) throw ModelError(m_where, "tensor '" + name + "' has shape " + shapeText(t.sizes()));
    return t.size(d);
}

int headsFor(int width, int configured, int headWidth, const std::string& where, const char* tower) {
    if (configured > 0) {
        if (width % configured != 0)
            throw ModelError(where, std::string(tower) + " width " + std::to_string(width) + " is not divisible by " +
                                        std::to_string(configured) + " heads");
        return configured;
    }
    if (headWidth <= 0) headWidth = 64;
    if (width % headWidth != 0)
        throw ModelError(where, std::string(tower) + " width " + std::to_string(width) + " is not a multiple of head dim " +
                                    std::to_string(headWidth) + "; give num_heads in a config file");
    return width / headWidth;
}

int gridFromPositions(int64_t positions, int prefix, const std::string& where) {
    const int64_t patches = positions - prefix;
    const auto g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0)))));
    if (patches <= 0 || g * g != patches)
        throw ModelError(where, "position embedding has " + std::to_string(positions) + " rows, not " +
                                    (prefix > 0 ? "a class token plus " : "") + "a square patch grid");
    return static_cast<int>(g);
}

Block readBlock(const Tensors& t, const BlockNames& n, int64_t d) {
    Block b;
    readNorm(t, n.ln1, d, b.ln1W, b.ln1B);
    if (!n.qkvW.empty()) {
        b.qkvW = t.get(n.qkvW, {3 * d, d});
        b.qkvB = t.has(n.qkvB) ? t.get(n.qkvB, {3 * d}) : at::zeros({3 * d});
    } else {
        b.qkvW = at::cat({t.get(n.q + ".weight", {d, d}), t.get(n.k + ".weight", {d, d}), t.get(n.v + ".weight", {d, d})});
        auto bias = [&](const std::string& p) { return t.has(p + ".bias") ? t.get(p + ".bias", {d}) : at::zeros({d}); };
        b.qkvB = at::cat({bias(n.q), bias(n.k), bias(n.v)});
    }
    b.outW = t.get(n.out + ".weight", {d, d});
    b.outB = t.has(n.out + ".bias") ? t.get(n.out + ".bias", {d}) : at::zeros({d});
    readNorm(t, n.ln2, d, b.ln2W, b.ln2B);
    const bool alt = !n.fc1Alt.empty() && !t.has(n.fc1 + ".weight") && t.has(n.fc1Alt + ".weight");
    const std::string fc1 = alt ? n.fc1Alt : n.fc1;
    const std::string fc2 = alt ? n.fc2Alt : n.fc2;
    const int64_t m = t.dim(fc1 + ".weight", 0);
    b.fc1W = t.get(fc1 + ".weight", {m, d});
    b.fc1B = t.get(fc1 + ".bias", {m});
    b.fc2W = t.get(fc2 + ".weight", {d, m});
    b.fc2B = t.get(fc2 + ".bias", {d});
    if (!n.ls1.empty() && t.has(n.ls1)) b.ls1 = t.get(n.ls1, {d});
    if (!n.ls2.empty() && t.has(n.ls2)) b.ls2 = t.get(n.ls2, {d});
    return b;
}

int countBlocks(const Tensors& t, const LayoutTable& table, const std::string& pattern) {
    int n = 0;
    while (t.has(blockNames(table, pattern, n).ln1 + ".weight")) ++n;
    return n;
}

Encoder readEncoder(const Tensors& t, const LayoutTable& table, const std::string& pattern, int64_t d, const char* tower) {
    const int layers = countBlocks(t, table, pattern);
    if (layers == 0)
        throw ModelError(t.where(), std::string("no ") + tower + " transformer blocks ('" + indexed(pattern, 0) + "...')");
    Encoder enc;
    for (int i = 0; i < layers; ++i) enc.blocks.push_back(readBlock(t, blockNames(table, pattern, i), d));
    return enc;
}

void readPatchEmbed(const Tensors& t, const LayoutTable& table, VisionTower& v) {
    const std::string name = table.patch + ".weight";
    const at::Tensor conv = t.get(name);
    if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
        throw ModelError(t.where(), "tensor '" + name + "' has shape " + shapeText(conv.sizes()) + ", expected [D, 3, p, p]");
    const int64_t d = conv.size(0);
    v.width = static_cast<int>(d);
    v.patchSize = static_cast<int>(conv.size(2));
    v.patchW = conv;
    v.patchB = t.opt(table.patch + ".bias", {d});
}

void readClsAndPositions(const Tensors& t, const LayoutTable& table, VisionTower& v) {
    const int64_t d = v.width;
    if (table.batchedTokens) {
        v.cls = t.get(table.cls, {1, 1, d}).reshape({d});
        const int64_t positions = t.dim(table.pos, 1);
        v.pos = t.get(table.pos, {1, positions, d}).reshape({positions, d});
    } else {
        v.cls = t.get(table.cls, {d});
        const int64_t positions = t.dim(table.pos, 0);
        v.pos = t.get(table.pos, {positions, d});
    }
}

TextTower readTextBody(const Tensors& t, const LayoutTable& table) {
    TextTower text;
    const at::Tensor tok = t.get(table.tokenEmbedding);
    if (tok.dim() != 2) throw ModelError(t.where(), "tensor '" + table.tokenEmbedding + "' is not 2-D");
    const int64_t dt = tok.size(1);
    text.width = static_cast<int>(dt);
    text.tokenEmbedding = tok;
    text.contextLength = static_cast<int>(t.dim(table.textPos, 0));
    text.pos = t.get(table.textPos, {text.contextLength, dt});
    text.encoder = readEncoder(t, table, table.textBlocks, dt, "text");
    readNorm(t, table.lnFinal, dt, text.lnFinalW, text.lnFinalB);
    return text;
}

void readNorm(const Tensors& t, const std::string& prefix, int64_t d, at::Tensor& w, at::Tensor& b) {
    w = t.get(prefix + ".weight", {d});
    b = t.get(prefix + ".bias", {d});
}

const nlohmann::json& sub(const nlohmann::json& j, const char* key) {
    static const nlohmann::json kNull;
    if (j.is_object()) {
        auto it = j.find(key);
        if (it != j.end()) return *it;
    }
    return kNull;
}

int intOr(const nlohmann::json& j, const char* key, int fallback) {
    const auto& v = sub(j, key);
    return v.is_number_integer() ? v.get<int>() : fallback;
}

double numberOr(const nlohmann::json& j, const char* key, double fallback) {
    const auto& v = sub(j, key);
    return v.is_number() ? v.get<double>() : fallback;
}

void readMeanStd(const nlohmann::json& j, const char* meanKey, const char* stdKey, ImagePreprocess& p) {
    const auto& m = sub(j, meanKey);
    const auto& s = sub(j, stdKey);
    if (m.is_array() && m.size() == 3 && s.is_array() && s.size() == 3) {
        for (int c = 0; c < 3; ++c) {
            if (!m[c].is_number() || !s[c].is_number() || s[c].get<double>() <= 0) return;
        }
        for (int c = 0; c < 3; ++c) {
            p.mean[c] = m[c].get<float>();
            p.std[c] = s[c].get<float>();
        }
    }
}


// ImageNet-style evaluation preprocessing: resize the short side to size / crop_pct, crop `size`.
void setImageNetPreprocess(Model& model, const nlohmann::json& cfg, int imageSize) {
    model.preprocess.imageSize = imageSize;
    model.preprocess.mean = {0.485f, 0.456f, 0.406f};
    model.preprocess.std = {0.229f, 0.224f, 0.225f};
    const auto& pre = sub(cfg, "pretrained_cfg").is_object() ? sub(cfg, "pretrained_cfg") : cfg;
    readMeanStd(pre, "mean", "std", model.preprocess);
    const double cropPct = numberOr(pre, "crop_pct", 0.875);
    model.preprocess.resizeShortest = static_cast<int>(std::floor(imageSize / std::max(cropPct, 0.1)));
}

}  // namespace vitscope::loader
