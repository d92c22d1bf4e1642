#include "explore/concepts.h"

#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/grid_values.h"
#include "analysis/heatmap.h"
#include "analysis/splice.h"
#include "analysis/text_embed.h"
#include "error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>

namespace vitscope {

namespace {

// "L.H" -> a head; "mlp.L" -> an MLP (head -1); anything else: layer -1.
ComponentValue componentValue(const std::string& name, double value) {
    static const std::regex head(R"((\d+)\.(\d+))"), mlp(R"(mlp\.(\d+))");
    std::smatch m;
    ComponentValue v{name, -1, -1, value};
    if (std::regex_match(name, m, head)) {
        v.layer = std::stoi(m[1]);
        v.head = std::stoi(m[2]);
    } else if (std::regex_match(name, m, mlp)) {
        v.layer = std::stoi(m[1]);
    }
    return v;
}

// The latent's share per image token (the heads' part of its pre-activation), as a heatmap.
HeatmapResult latentMap(const ConceptContext& c, const SparseAutoencoder& s, int64_t latent) {
    const auto start = std::chrono::steady_clock::now();
    HeatmapResult r;
    r.method = "sae-latent";
    r.text = "latent " + std::to_string(latent);
    try {
        const at::Tensor scores = saeLatentTokenMap(c.model, s, c.pixels, latent)[0];
        const Heatmap map = heatmapFromTokenScores(scores, c.prefix, c.gridH, c.gridW, c.pixels.size(2), c.pixels.size(3));
        r.patches = toFloatGrid(map.patches);
        r.pixels = toFloatGrid(map.pixels);
    } catch (const InputError& e) {
        r.warning = e.what();  // a family without per-token head terms: the split still stands
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace

SpliceView ConceptDictionaries::splice(const ConceptContext& c, const std::string& vocabFile, double l1, const std::string& component,
                                       const JobContext& job) {
    if (!c.text) throw InputError(c.summary.spec, "has no text side for SpLiCE's vocabulary (open a CLIP model, or an aligner beside the model)");
    if (!c.view) throw InputError("SpLiCE", "needs the image mean of a dataset: open one (File > Open image folder as dataset)");
    SpliceParams params;
    params.l1 = l1;
    params.validate();
    if (vocabFile != m_vocabFile) {
        std::vector<std::string> texts = readTextList(vocabFile);
        if (texts.empty()) throw InputError(vocabFile, "holds no concepts (one per line)");
        at::Tensor vocab = c.text->encode(texts);
        m_vocabTexts = std::move(texts);
        m_vocab = vocab;
        m_vocabFile = vocabFile;
    }
    const std::string meanOf = c.cache->dir() + "#" + component;
    if (meanOf != m_meanOf) {
        if (!component.empty() && c.cache->convention() != Convention::Exact)
            throw InputError(c.cache->dir(), "holds terms of the textspan convention; a component's SpLiCE reads exact-convention terms "
                                             "(Analysis > TextSpan settings: convention exact)");
        m_mean = spliceMean(component.empty() ? c.view->output() : c.view->terms(c.view->parse(component)));
        m_meanOf = meanOf;
    }
    const at::Tensor target = spliceTargetsFor(c.model, c.aligner, c.pixels, component);
    const SpliceResult r = runSplice(m_vocab, m_mean, target, params, job);
    SpliceView out;
    for (const SpliceConcept& k : spliceConcepts(r.weights[0], m_vocabTexts, static_cast<int>(m_vocabTexts.size())))
        out.concepts.push_back({k.index, k.text, k.weight});
    out.cosine = r.cosine[0].item<double>();
    out.l1 = l1;
    out.vocabulary = static_cast<int64_t>(m_vocabTexts.size());
    out.meanImages = c.view->size();
    out.vocabFile = vocabFile;
    out.settings = params.toString();
    out.component = component;
    return out;
}

SaeSummary ConceptDictionaries::openSae(const Model& model, const ModelSummary& summary, const std::string& path) {
    SparseAutoencoder sae = loadSae(path);
    checkSaeFitsModel(model, sae);  // throws naming the file: the new SAE is refused, the old one stays
    m_sae = std::move(sae);
    m_attributed.clear();
    m_pool.clear();
    m_similarity = at::Tensor();
    SaeSummary s;
    s.path = path;
    s.layout = m_sae->layout;
    s.site = m_sae->site();
    s.description = m_sae->describe();
    s.dIn = m_sae->dIn();
    s.dSae = m_sae->dSae();
    s.named = m_sae->atOutput() && summary.clip;
    return s;
}

void ConceptDictionaries::close() {
    m_sae.reset();
    m_attributed.clear();
    m_attribution = {};
    m_terms = {};
    m_pool.clear();
    m_poolTexts.clear();
    m_similarity = at::Tensor();
    m_vocabFile.clear();
    m_vocab = at::Tensor();
    m_meanOf.clear();
    m_mean = at::Tensor();
}

const SparseAutoencoder& ConceptDictionaries::sae() const {
    if (!m_sae) throw InputError("sparse autoencoder", "none is open (Concepts > Open SAE...)");
    return *m_sae;
}

const SaeAttribution& ConceptDictionaries::attribution(const ConceptContext& c) {
    const SparseAutoencoder& s = sae();
    if (m_attributed != c.imagePath || !m_attribution.pre.defined()) {
        m_terms = saeSiteTerms(c.model, s, c.pixels);
        m_attribution = attributeSae(s, m_terms.terms, m_terms.names, m_terms.x);
        m_attributed = c.imagePath;
    }
    return m_attribution;
}

bool ConceptDictionaries::nameable(const ConceptContext& c) const {
    return m_sae && m_sae->atOutput() && c.summary.clip && c.text != nullptr;
}

void ConceptDictionaries::nameRows(std::vector<SaeLatentRow>& rows) const {
    if (!m_similarity.defined() || m_similarity.size(0) == 0) return;
    for (SaeLatentRow& r : rows) {
        const at::Tensor column = m_similarity.select(1, r.latent);
        const int64_t best = column.argmax().item<int64_t>();
        r.name = m_poolTexts[static_cast<std::size_t>(best)];
        r.nameScore = column[best].item<double>();
    }
}

SaeImageLatents ConceptDictionaries::latents(const ConceptContext& c, const std::string& poolFile) {
    const SaeAttribution& a = attribution(c);
    if (nameable(c) && !poolFile.empty() && poolFile != m_pool) {
        m_poolTexts = readTextList(poolFile);
        m_similarity = saeConceptSimilarity(sae(), c.text->encode(m_poolTexts));
        m_pool = poolFile;
    }
    SaeImageLatents out;
    const at::Tensor active = a.active[0];
    for (int64_t r = 0; r < active.size(0); ++r) {
        const int64_t j = active[r].item<int64_t>();
        if (j < 0) break;
        out.active.push_back({j, a.latents[0][j].item<double>(), a.pre[0][j].item<double>(), {}, 0});
    }
    if (nameable(c)) {
        nameRows(out.active);
        out.namingPool = m_pool;
    }
    out.maxAbsError = a.maxAbsError;
    return out;
}

SaeLatentDetail ConceptDictionaries::latent(const ConceptContext& c, int64_t latent, int topImages) {
    const SparseAutoencoder& s = sae();
    if (latent < 0 || latent >= s.dSae())
        throw InputError("latent " + std::to_string(latent), "is not a latent of " + s.path + " (0.." + std::to_string(s.dSae() - 1) + ")");
    const SaeAttribution& a = attribution(c);
    SaeLatentDetail d;
    d.row = {latent, a.latents[0][latent].item<double>(), a.pre[0][latent].item<double>(), {}, 0};
    if (nameable(c)) {
        std::vector<SaeLatentRow> one{d.row};
        nameRows(one);
        d.row = one.front();
    }
    // Its pre-activation split over the components (active or not, the split is exact): the
    // linear form with the SAE's normalisation frozen at this image, each term centred like x.
    const SaeSiteTerms& t = m_terms;  // (attribution() above decomposed this image)
    const SaeLinearForm form = linearizeSae(s, t.x);
    at::Tensor terms = t.terms[0].to(at::kCPU, at::kFloat);  // [C, D]
    if (form.centre) terms = terms - terms.mean(1, true);
    const at::Tensor column = s.W_enc.select(1, latent).to(at::kCPU, at::kFloat);
    const at::Tensor split = terms.matmul(column) * form.scale[0].item<double>();  // [C]
    std::vector<ComponentValue> placed;
    for (std::size_t k = 0; k < t.names.size(); ++k) {
        const ComponentValue v = componentValue(t.names[k], split[static_cast<int64_t>(k)].item<double>());
        (v.layer >= 0 ? placed : d.others).push_back(v);
    }
    d.others.push_back({"sae_bias", -1, -1, form.bias[0][latent].item<double>()});
    d.grid = componentGrid(c.summary, placed);
    if (!c.cache) {
        d.topNote = "open a dataset for the latent's top images";
    } else {
        try {
            const SaeTopImages top = topSaeImages(*c.cache, s, latent, topImages);
            for (std::size_t i = 0; i < top.rows.size(); ++i) d.topImages.push_back({top.rows[i], top.paths[i], top.values[i]});
        } catch (const InputError& e) {
            d.topNote = e.what();
        }
    }
    return d;
}

HeatmapResult ConceptDictionaries::latentHeatmap(const ConceptContext& c, int64_t latent) {
    const SparseAutoencoder& s = sae();
    if (latent < 0 || latent >= s.dSae())
        throw InputError("latent " + std::to_string(latent), "is not a latent of " + s.path + " (0.." + std::to_string(s.dSae() - 1) + ")");
    return latentMap(c, s, latent);
}

std::vector<SaeLatentRow> ConceptDictionaries::search(const ConceptContext& c, const std::string& text, int count) {
    const SparseAutoencoder& s = sae();
    if (!nameable(c)) throw InputError(s.path, "is searched by text when it reads a CLIP model's output (site " + s.site() + ")");
    const at::Tensor sim = saeConceptSimilarity(s, c.text->encode({text}))[0];  // [S]
    const int64_t k = std::min<int64_t>(count, sim.size(0));
    const auto top = sim.topk(k);
    const SaeAttribution* a = c.pixels.defined() ? &attribution(c) : nullptr;
    std::vector<SaeLatentRow> out;
    for (int64_t i = 0; i < k; ++i) {
        const int64_t j = std::get<1>(top)[i].item<int64_t>();
        SaeLatentRow r{j, a ? a->latents[0][j].item<double>() : 0.0, a ? a->pre[0][j].item<double>() : 0.0, {}, 0,
                       std::get<0>(top)[i].item<double>()};
        out.push_back(r);
    }
    nameRows(out);  // by the naming pool, when the image's latents were named
    return out;
}

}  // namespace vitscope
