#include "analysis/components.h"

#include "error.h"

namespace vitscope {

std::string Component::name() const {
    switch (kind) {
    case Kind::Head: return std::to_string(layer) + "." + std::to_string(head);
    case Kind::Mlp: return "mlp." + std::to_string(layer);
    case Kind::Embed: return "embed";
    case Kind::PoolHead: return "pool.h" + std::to_string(head);
    case Kind::PoolMlp: return "pool.mlp";
    case Kind::Conv: return "conv." + std::to_string(layer);
    }
    return "?";
}

at::Tensor stackedTerms(const Decomposition& dec, std::vector<std::string>* names) {
    if (dec.heads.dim() != 4) throw InputError("decomposition", "per-head terms [B, L, H, E] are needed, not per-token ones");
    const int64_t b = dec.heads.size(0), L = dec.heads.size(1), H = dec.heads.size(2);
    if (names) {
        names->clear();
        for (int64_t l = 0; l < L; ++l)
            for (int64_t h = 0; h < dec.headsIn(l); ++h) names->push_back(std::to_string(l) + "." + std::to_string(h));
        for (int64_t l = 0; l < L; ++l) names->push_back("mlp." + std::to_string(l));
        if (dec.convs.defined())
            for (int64_t k = 0; k < dec.convs.size(1); ++k) names->push_back("conv." + std::to_string(k));
        for (const char* n : {"embed", "attn_bias", "post_bias"}) names->push_back(n);
        if (dec.pooled()) names->push_back("pool.mlp");
    }
    const at::Tensor biases = dec.stageBias.defined() ? dec.attnBias.sum(1, true) + dec.stageBias.sum(1, true) : dec.attnBias.sum(1, true);
    at::Tensor heads = dec.heads.reshape({b, L * H, -1});
    if (!dec.headCounts.empty()) {  // only the heads each layer has
        std::vector<at::Tensor> kept;
        for (int64_t l = 0; l < L; ++l) kept.push_back(dec.heads.select(1, l).narrow(1, 0, dec.headsIn(l)));
        heads = at::cat(kept, 1);
    }
    const at::Tensor mlps = dec.convs.defined() ? at::cat({dec.mlps, dec.convs}, 1) : dec.mlps;
    at::Tensor out = at::cat({heads, mlps, dec.embed.unsqueeze(1), biases, dec.postBias.unsqueeze(1)}, 1);
    return dec.pooled() ? at::cat({out, dec.poolMlp.unsqueeze(1)}, 1) : out;
}

CacheView::CacheView(const DatasetCache& cache, const Aligner* aligner) : m_cache(cache), m_aligner(aligner) {
    if (aligner && aligner->perComponent() && static_cast<int>(cache.cachedLayers().size()) != cache.numLayers())
        throw InputError("--aligner", "has per-component maps; it needs a cache of all layers (cache build --layers all)");
    if (aligner && aligner->weight.size(0) != cache.embedDim())
        throw InputError("--aligner", "maps " + std::to_string(aligner->weight.size(0)) + "-dimensional features, but the cache holds " +
                                          std::to_string(cache.embedDim()) + "-dimensional terms (made for another model?)");
}

int64_t CacheView::embedDim() const { return m_aligner ? m_aligner->weight.size(1) : m_cache.embedDim(); }

Component CacheView::parse(const std::string& name) const {
    const std::string shape = "the model has " + std::to_string(m_cache.numLayers()) + " layers x " + std::to_string(m_cache.numHeads()) +
                              " heads; cached layers " + std::to_string(m_cache.cachedLayers().front()) + ".." +
                              std::to_string(m_cache.cachedLayers().back()) + "; names are L.H, mlp.L or embed" +
                              (m_cache.numPoolHeads() > 0 ? ", pool.hK or pool.mlp" : "") + ", zero-based";
    auto number = [&](const std::string& s) {
        if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos)
            throw InputError("component '" + name + "'", "unknown name: " + shape);
        return std::stoi(s);
    };
    Component c;
    if (name.rfind("pool.", 0) == 0) {
        const int P = m_cache.numPoolHeads();
        if (P == 0) throw InputError("component '" + name + "'", "the model has no attention-pooling head");
        if (name == "pool.mlp") {
            c.kind = Component::Kind::PoolMlp;
            return c;
        }
        if (name.rfind("pool.h", 0) != 0)
            throw InputError("component '" + name + "'", "unknown name: pooling components are pool.h0..pool.h" + std::to_string(P - 1) + " and pool.mlp");
        c.kind = Component::Kind::PoolHead;
        c.head = number(name.substr(6));
        if (c.head >= P) throw InputError("component '" + name + "'", "no such pooling head: the model has " + std::to_string(P));
        return c;
    }
    if (name == "embed") {
        c.kind = Component::Kind::Embed;
        return c;
    }
    if (name.rfind("conv.", 0) == 0) {
        c.kind = Component::Kind::Conv;
        c.layer = number(name.substr(5));
        if (c.layer >= m_cache.numConvs())
            throw InputError("component '" + name + "'", m_cache.numConvs() == 0 ? std::string("the model has no MBConv blocks")
                                                                                : "no such block: the model has conv.0..conv." + std::to_string(m_cache.numConvs() - 1));
        return c;
    }
    if (name.rfind("mlp.", 0) == 0) {
        c.kind = Component::Kind::Mlp;
        c.layer = number(name.substr(4));
        if (c.layer >= m_cache.numLayers()) throw InputError("component '" + name + "'", "no such layer: " + shape);
        return c;
    }
    const std::size_t dot = name.find('.');
    if (dot == std::string::npos) throw InputError("component '" + name + "'", "unknown name: " + shape);
    c.layer = number(name.substr(0, dot));
    c.head = number(name.substr(dot + 1));
    if (c.layer >= m_cache.numLayers() || c.head >= m_cache.numHeads()) throw InputError("head '" + name + "'", "no such head: " + shape);
    if (c.head >= m_cache.headsIn(c.layer))
        throw InputError("head '" + name + "'", "no such head: layer " + std::to_string(c.layer) + " has " +
                                                    std::to_string(m_cache.headsIn(c.layer)) + " heads");
    m_cache.cachedIndex(c.layer);  // throws when the layer is not cached
    return c;
}

std::vector<Component> CacheView::parseList(const std::string& list) const {
    std::vector<Component> out;
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        std::string item = list.substr(start, end - start);
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) {
            const Component c = parse(item);
            if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
        }
        start = end + 1;
    }
    if (out.empty()) throw InputError("component list '" + list + "'", "names no component");
    return out;
}

std::vector<Component> CacheView::heads() const {
    std::vector<Component> out;
    for (int l : m_cache.cachedLayers())
        for (int h = 0; h < m_cache.headsIn(l); ++h) out.push_back({Component::Kind::Head, l, h});
    return out;
}

std::vector<Component> CacheView::allComponents() const {
    std::vector<Component> out = heads();
    for (int l = 0; l < m_cache.numLayers(); ++l) out.push_back({Component::Kind::Mlp, l, -1});
    for (int k = 0; k < m_cache.numConvs(); ++k) out.push_back({Component::Kind::Conv, k, -1});
    out.push_back({Component::Kind::Embed, -1, -1});
    if (m_cache.numPoolHeads() > 0) out.push_back({Component::Kind::PoolMlp, -1, -1});
    return out;
}

std::vector<Component> CacheView::poolHeads() const {
    std::vector<Component> out;
    for (int p = 0; p < m_cache.numPoolHeads(); ++p) out.push_back({Component::Kind::PoolHead, -1, p});
    return out;
}

at::Tensor CacheView::align(const at::Tensor& x, bool withBias) const {
    if (!m_aligner) return x;
    at::Tensor y = at::matmul(x, m_aligner->weight);
    return withBias ? y + m_aligner->bias : y;
}

at::Tensor CacheView::alignComponent(const at::Tensor& x, const std::string& name) const {
    if (!m_aligner) return x;
    const at::Tensor y = at::matmul(x, m_aligner->weightFor(name));
    return m_aligner->biasSharedBy.empty() ? y : y + m_aligner->biasShare(name);  // the reference procedure's b / C
}

at::Tensor CacheView::storedTerms(const Component& c, int64_t start, int64_t count) const {
    if (count < 0) count = size() - start;
    switch (c.kind) {
    case Component::Kind::Head: return m_cache.heads().narrow(0, start, count).select(1, m_cache.cachedIndex(c.layer)).select(1, c.head);
    case Component::Kind::Mlp: return m_cache.mlps().narrow(0, start, count).select(1, c.layer);
    case Component::Kind::Embed: return m_cache.other().narrow(0, start, count).select(1, 0);
    case Component::Kind::PoolHead: return m_cache.pool().narrow(0, start, count).select(1, c.head);
    case Component::Kind::PoolMlp: return m_cache.pool().narrow(0, start, count).select(1, m_cache.numPoolHeads() + 1);
    case Component::Kind::Conv: return m_cache.convs().narrow(0, start, count).select(1, c.layer);
    }
    return {};
}

at::Tensor CacheView::pullBack(const Component& c, const at::Tensor& t) const {
    if (!m_aligner) return t.to(at::kFloat).contiguous();
    return at::matmul(m_aligner->weightFor(c.name()), t.to(at::kFloat)).contiguous();
}

at::Tensor CacheView::terms(const Component& c, int64_t start, int64_t count) const {
    return alignComponent(storedTerms(c, start, count).to(at::kFloat), c.name());
}

at::Tensor CacheView::output(int64_t start, int64_t count) const {
    if (count < 0) count = size() - start;
    if (!m_aligner || !m_aligner->perComponent()) return align(m_cache.output().narrow(0, start, count).to(at::kFloat), true);
    // Per-component maps: the aligned output is the sum of the aligned terms and what of the
    // bias they do not carry.
    std::vector<std::string> names{"attn_bias", "post_bias"};
    for (const Component& c : allComponents()) names.push_back(c.name());
    at::Tensor sum = m_aligner->biasLeft(names).unsqueeze(0).expand({count, embedDim()}).clone();
    for (const Component& c : allComponents()) sum += terms(c, start, count);
    const at::Tensor other = m_cache.other().narrow(0, start, count).to(at::kFloat);
    sum += alignComponent(other.select(1, 1), "attn_bias") + alignComponent(other.select(1, 2), "post_bias");
    return sum;
}

}  // namespace vitscope
